"""Connection-level limits uvicorn does not have: a header-read deadline, a header size cap,
and a cap on open connections that sheds slow or idle ones first.

Slow clients cannot starve the server: a connection whose request headers have not all
arrived `header_timeout_s` after its first byte (or after connecting) gets a 408 and is
closed; more than `max_header_bytes` of headers is a 431. When a new connection would exceed
`max_connections` (default: the file-descriptor limit less a reserve for the store, upstream
calls and the accept backlog), the oldest connection that is idle between requests, else
still sending headers, else still sending its body, is dropped to make room, so a legitimate
request keeps being served under a flood of slow connections. Connections busy producing a
response are never dropped. The body-read deadline is the app's (`ServerSettings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from dataclasses import dataclass, field
from typing import Any

from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["ACCEPT_BACKLOG", "ConnectionGuard", "default_max_connections", "uvicorn_config"]

ACCEPT_BACKLOG = 64
"""The listen backlog, which is also how many connections one accept batch may open."""
_FD_RESERVE = 64
_LINGER_S = 0.5


def default_max_connections() -> int:
    """The soft `RLIMIT_NOFILE` less a reserve and the accept backlog (at least 8)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(8, int(soft) - _FD_RESERVE - ACCEPT_BACKLOG)


def _no_delay(transport: asyncio.Transport) -> None:
    """TCP_NODELAY on the connection: asyncio sets it only when the listening socket was made
    with `proto=IPPROTO_TCP`, and without it a response's headers and body (two writes) wait
    for the client's delayed ACK, about 40 ms a request."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _response(status: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )


@dataclass
class ConnectionGuard:
    """The limits of one server and its bookkeeping; `evicted` and `timed_out` count the
    connections it dropped."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = field(default_factory=default_max_connections)
    evicted: int = 0
    timed_out: int = 0
    # oldest first (dicts keep insertion order): the sheddable connections by phase
    refused: dict[Any, None] = field(default_factory=dict)
    idle: dict[Any, None] = field(default_factory=dict)
    waiting: dict[Any, None] = field(default_factory=dict)
    reading: dict[Any, None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.header_timeout_s) not in (int, float) or self.header_timeout_s <= 0:
            raise ValueError("header_timeout_s must be a positive number")
        for name in ("max_header_bytes", "max_connections"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive int")

    def victim(self) -> Any:
        for phase in (self.refused, self.idle, self.waiting, self.reading):
            for conn in phase:
                return conn
        return None

    def protocol(self) -> type[asyncio.Protocol]:
        """An `HttpToolsProtocol` class enforcing this guard (uvicorn's `http=`)."""
        guard = self

        class GuardedHttpToolsProtocol(HttpToolsProtocol):
            _header_timer: asyncio.TimerHandle | None = None
            _header_bytes = 0
            _refused = False

            def _refuse(self, status: bytes) -> None:
                """Answer `status` and close without losing the answer: stop writing, drop
                what the client still sends, close after a moment (closing with unread
                input would reset the connection before the client reads the answer)."""
                self._forget()
                self._refused = True
                guard.refused[self] = None  # answered: the first to go at the cap
                if self.transport.is_closing():
                    return
                self.transport.write(_response(status))
                if self.transport.can_write_eof():
                    self.transport.write_eof()
                self.loop.call_later(_LINGER_S, self.transport.close)

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                _no_delay(transport)
                self._await_headers()
                if len(self.connections) > guard.max_connections:
                    victim = guard.victim()
                    (victim or self)._shed()

            def _await_headers(self) -> None:
                guard.idle.pop(self, None)
                guard.waiting[self] = None
                self._header_bytes = 0
                if self._header_timer is None:
                    self._header_timer = self.loop.call_later(
                        guard.header_timeout_s, self._headers_late
                    )

            def _headers_done(self) -> None:
                guard.waiting.pop(self, None)
                if self._header_timer is not None:
                    self._header_timer.cancel()
                    self._header_timer = None

            def _forget(self) -> None:
                self._headers_done()
                guard.idle.pop(self, None)
                guard.reading.pop(self, None)
                guard.refused.pop(self, None)

            def _shed(self) -> None:
                guard.evicted += 1
                self._forget()
                self.transport.abort()

            def _headers_late(self) -> None:
                self._header_timer = None
                if self in guard.waiting:
                    guard.timed_out += 1
                    self._refuse(b"408 Request Timeout")

            def data_received(self, data: bytes) -> None:
                if self._refused:
                    return  # the answer is sent; what else arrives is dropped
                if self in guard.idle:
                    self._await_headers()  # the next request on a kept-alive connection
                waiting = self in guard.waiting
                super().data_received(data)
                if waiting and self in guard.waiting:
                    self._header_bytes += len(data)
                    if self._header_bytes > guard.max_header_bytes:
                        self._refuse(b"431 Request Header Fields Too Large")

            def on_headers_complete(self) -> None:
                self._headers_done()
                guard.reading[self] = None
                super().on_headers_complete()

            def on_message_complete(self) -> None:
                guard.reading.pop(self, None)
                super().on_message_complete()

            def on_response_complete(self) -> None:
                super().on_response_complete()
                guard.reading.pop(self, None)
                if not self.transport.is_closing() and self not in guard.waiting:
                    guard.idle[self] = None

            def connection_lost(self, exc: Exception | None) -> None:
                self._forget()
                super().connection_lost(exc)

        return GuardedHttpToolsProtocol


def uvicorn_config(
    app: Any,
    *,
    guard: ConnectionGuard | None = None,
    keep_alive_s: int = 5,
    graceful_shutdown_s: int = 5,
    loop: str = "asyncio",
) -> Config:
    """A uvicorn `Config` for the chat service: the guarded protocol, our access log instead
    of uvicorn's, lifespan on, a small accept backlog. Bind the socket yourself and pass it to
    `uvicorn.Server(config).run(sockets=[sock])`."""
    chosen = guard if guard is not None else ConnectionGuard()
    return Config(
        app,
        http=chosen.protocol(),
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_keep_alive=keep_alive_s,
        timeout_graceful_shutdown=graceful_shutdown_s,
        backlog=ACCEPT_BACKLOG,
        loop=loop,
    )
