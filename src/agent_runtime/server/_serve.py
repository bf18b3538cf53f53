"""`agent-runtime serve`: load the keys, refuse an unauthenticated non-loopback bind, bind the
socket, start the app, and only then say where it serves.

With no API keys configured the service binds loopback addresses only and says it runs
unauthenticated. Logging goes to stderr as one line per record (`text` or `json`).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from ..durable import check_store_url
from ..errors import AgentRuntimeError, ConfigurationError
from ._app import create_app
from ._auth import ApiKeys, is_loopback
from ._logging import configure_logging, log_fields
from ._protocol import ACCEPT_BACKLOG, ConnectionGuard, default_max_connections, uvicorn_config
from ._settings import ServerSettings

__all__ = ["ServeOptions", "bind_socket", "run_server"]

_log = logging.getLogger("agent_runtime.server")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What `agent-runtime serve` was asked for (the settings are validated by the app)."""

    host: str = "127.0.0.1"
    port: int = 8000
    store_url: str | None = None
    store_label: str = ""
    api_keys_file: str | None = None
    settings: ServerSettings = field(default_factory=ServerSettings)
    header_timeout_s: float = 10.0
    max_connections: int | None = None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: any free port); `OSError` when the
    address cannot be bound."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(ACCEPT_BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _loopback_host(host: str) -> bool:
    if is_loopback(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(is_loopback(str(info[4][0])) for info in infos)


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the address once the app started and the socket listens."""

    def __init__(self, config: uvicorn.Config, announce: Any) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._announce()


def run_server(options: ServeOptions) -> int:
    """Serve until interrupted; the process exit code (2: bad configuration, 1: cannot bind
    or start)."""
    configure_logging(options.settings.log_format)
    try:
        if options.store_url is not None:
            check_store_url(options.store_url)
        keys = ApiKeys.load(file=options.api_keys_file)
        if not len(keys) and not _loopback_host(options.host):
            raise ConfigurationError(
                f"no API keys are configured: refusing to serve {options.host} without "
                "authentication (set AGENT_RUNTIME_API_KEYS or --api-keys-file, or bind "
                "127.0.0.1)"
            )
        guard = ConnectionGuard(
            header_timeout_s=options.header_timeout_s,
            max_connections=options.max_connections or default_max_connections(),
        )
        app = create_app(store_url=options.store_url, settings=options.settings, api_keys=keys)
    except (AgentRuntimeError, ValueError) as exc:
        message = exc.message if isinstance(exc, AgentRuntimeError) else str(exc)
        log_fields(_log, logging.ERROR, message, code="configuration_error")
        return 2
    try:
        sock = bind_socket(options.host, options.port)
    except OSError as exc:
        log_fields(
            _log,
            logging.ERROR,
            f"cannot bind {options.host}:{options.port}: {exc.strerror or exc}",
            code="bind_failed",
        )
        return 1
    bound = sock.getsockname()
    shown_host = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
    url = f"http://{shown_host}:{bound[1]}"

    def announce() -> None:
        auth = f"{len(keys)} API keys" if len(keys) else "unauthenticated, loopback clients only"
        log_fields(_log, logging.INFO, f"serving on {url}", store=options.store_label, auth=auth)
        if not len(keys):
            log_fields(
                _log,
                logging.WARNING,
                "no API keys configured: this server runs unauthenticated (loopback only)",
            )

    server = _Server(uvicorn_config(app, guard=guard), announce)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        pass
    finally:
        sock.close()
    if not server.started:
        log_fields(_log, logging.ERROR, "the server did not start", code="startup_failed")
        return 1
    return 0
