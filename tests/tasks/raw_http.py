"""A raw HTTP/1.1 server on asyncio streams for byte-exact faults (cuts inside an event,
close-delimited bodies) and for counting the connections a client leaves open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Handler = Callable[[int, bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Each request is answered by `handler(n, body, reader, writer)` (n counts from 0); the connection
    is closed after the handler returns. `open_connections` counts live client sockets."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.open_connections = 0
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.base_url = ""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            n = len(self.requests)
            self.requests.append(body)
            await self.handler(n, body, reader, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.open_connections -= 1
            self.closed.set()


def sse_head(status: str = "200 OK", extra: str = "") -> bytes:
    """Headers of a close-delimited SSE body (no Content-Length, no chunking)."""
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/event-stream\r\nconnection: close\r\n{extra}\r\n"
    ).encode()
