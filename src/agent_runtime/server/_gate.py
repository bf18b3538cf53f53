"""The gate in front of every `/api/` route: authentication, then the JSON-only rule for
POST. A route behind it reads the caller from `request.state.principal` (a `Principal`)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import AgentRuntimeError
from ._auth import Authenticator, Principal
from ._errors import UnsupportedMediaTypeError, error_response

__all__ = ["API_PREFIX", "ApiGate", "principal_of"]

API_PREFIX = "/api/"
_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def principal_of(request: Request) -> Principal:
    """The authenticated caller of a request that passed the gate."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError("the route is not behind ApiGate")
    return principal


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


class ApiGate:
    """ASGI middleware: `/api/` requests are authenticated (401 otherwise) and a write must
    be `Content-Type: application/json` (415 otherwise: a cross-site form or `no-cors` fetch
    cannot send that type without a CORS preflight)."""

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.authenticator(Request(scope))
            if scope["method"] in _WRITES and not _is_json(
                Headers(scope=scope).get("content-type")
            ):
                raise UnsupportedMediaTypeError("requests must be Content-Type: application/json")
        except AgentRuntimeError as exc:
            await error_response(exc)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["tenant_id"] = principal.tenant_id
        await self.app(scope, receive, send)
