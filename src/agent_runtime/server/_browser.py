"""Browser safety for every response: the `Host` check (DNS rebinding), the `Origin` check
(CSRF), CORS for allowed origins only, and the security headers.

`Host` must name the address the request arrived on (any loopback name when that address is
loopback) or an allowed host. A request carrying `Origin` must come from the page's own origin
(the origin's `host:port` equals `Host`) or an allowed one; a state-changing request a browser
marks cross-site without an `Origin` is refused too. Only allowed origins get CORS headers,
so no other page can read an answer. Every response carries a strict CSP (same-origin scripts,
styles and fetches, no framing), `nosniff`, `no-referrer` and `X-Frame-Options: DENY`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AgentRuntimeError
from ._auth import is_loopback
from ._errors import HostNotAllowedError, OriginNotAllowedError, error_response

__all__ = ["SECURITY_HEADERS", "BrowserGuard"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
)
_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_CORS_METHODS = "GET, POST, OPTIONS"
_CORS_HEADERS = "authorization, content-type, last-event-id, accept"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_log = logging.getLogger("agent_runtime.server")


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` or `[v6][:port]` as (lowercase name, port); None when malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in " /\\@?#\t"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else ""
    else:
        name, _, port = value.partition(":")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        return None
    return name, int(port) if port else None


def _same_address(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _normal_origin(origin: str) -> str | None:
    """`scheme://host[:port]` lowercased with a default port dropped; None when malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.username is not None or parts.query or parts.fragment:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class BrowserGuard:
    """ASGI middleware applying the module's rules to every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.any_origin = "*" in allowed_origins
        self.origins = frozenset(
            o for o in (_normal_origin(x) for x in allowed_origins if x != "*") if o
        )
        self.any_host = "*" in allowed_hosts
        self.hosts = frozenset(h.lower() for h in allowed_hosts if not h.startswith("*"))
        self.host_suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))

    def _host_ok(self, host: str | None, scope: Scope) -> bool:
        if host is None:
            return False
        parsed = _split_host(host)
        if parsed is None:
            return False
        if self.any_host:
            return True
        name = parsed[0]
        if name in self.hosts or host.strip().lower() in self.hosts:
            return True
        if any(name.endswith(s) for s in self.host_suffixes):
            return True
        server = scope.get("server")
        local = server[0] if server else None
        if local is not None and _same_address(name, local):
            return True
        return (local is None or is_loopback(local)) and is_loopback(name)

    def _origin_kind(self, origin: str, host: str) -> str:
        """`same`, `listed` (an allowed other origin) or `refused`."""
        normal = _normal_origin(origin)
        if normal is None:
            return "refused"
        authority = normal.split("://", 1)[1]
        parsed = _split_host(host)
        if parsed is not None:
            name, port = parsed
            shown = f"[{name}]" if ":" in name else name
            scheme = normal.split("://", 1)[0]
            if port is None or port == _DEFAULT_PORTS[scheme]:
                if authority == shown:
                    return "same"
            elif authority == f"{shown}:{port}":
                return "same"
        if self.any_origin or normal in self.origins:
            return "listed"
        return "refused"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        origin = headers.get("origin")
        method = scope["method"]
        cors: str | None = None
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in out:
                        out[name] = value
                if cors is not None:
                    out["access-control-allow-origin"] = cors
                    out["access-control-expose-headers"] = "x-execution-id"
                    out.add_vary_header("origin")
            await send(message)

        if not self._host_ok(host, scope):
            refused = HostNotAllowedError("the Host header names no address this server serves")
            await error_response(refused)(scope, receive, secured)
            return
        assert host is not None
        kind = "same" if origin is None else self._origin_kind(origin, host)
        site = headers.get("sec-fetch-site")
        if origin is None and method not in _SAFE_METHODS and site in ("cross-site", "same-site"):
            kind = "refused"
        if kind == "refused":
            refused_origin = OriginNotAllowedError("requests from this origin are not allowed")
            await error_response(refused_origin)(scope, receive, secured)
            return
        if kind == "listed":
            cors = origin
            if method == "OPTIONS" and "access-control-request-method" in headers:
                await self._preflight(scope, receive, secured)
                return
        try:
            await self.app(scope, receive, secured)
        except Exception as exc:  # a bug: one JSON 500 with the headers, one log line
            _log.error(
                "unhandled error in a request: %s",
                type(exc).__name__,
                extra={"fields": {"path": scope.get("path"), "code": "internal_error"}},
            )
            if started:
                raise
            failed = AgentRuntimeError(
                "the server failed to answer this request", code="internal_error"
            )
            await error_response(failed)(scope, receive, secured)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-methods", _CORS_METHODS.encode()),
                    (b"access-control-allow-headers", _CORS_HEADERS.encode()),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
