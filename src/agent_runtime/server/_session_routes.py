"""The sessions API over the conversation history, always the caller's own:
`GET /api/sessions?limit=N` (newest first), `GET /api/sessions/{id}` (its turns),
`PATCH /api/sessions/{id}` `{"title"}` and `DELETE /api/sessions/{id}` (204; the session's
finished turns are pruned from the durable store too).

Another tenant's or user's session answers exactly like an unknown one: 404.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ConfigurationError, InvalidArgumentError
from ..retention import prune_runs
from ._conversations import check_title
from ._gate import principal_of
from ._ids import principal_prefix
from ._limits import read_body
from ._request import is_client_id, json_object
from ._service import ChatService
from ._settings import ServerSettings

__all__ = ["MAX_SESSIONS_LISTED", "session_routes"]

MAX_SESSIONS_LISTED = 200
_DEFAULT_LISTED = 50
_PATCH_BYTES = 4096


def _session_id(request: Request) -> str:
    raw = request.path_params["session_id"]
    if not is_client_id(raw):
        raise InvalidArgumentError("is not a session id", path="session_id")
    return raw


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return _DEFAULT_LISTED
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or not 0 < int(raw) <= 200:
        raise InvalidArgumentError(f"must be an int from 1 to {MAX_SESSIONS_LISTED}", path="limit")
    return int(raw)


def session_routes(service: Callable[[], ChatService], settings: ServerSettings) -> list[Route]:
    """The routes of this module, over the app's `service()`."""

    async def list_sessions(request: Request) -> Response:
        principal = principal_of(request)
        limit = _limit(request)
        sessions = await service().history.sessions(principal, limit)
        return JSONResponse({"sessions": sessions})

    async def get_session(request: Request) -> Response:
        principal = principal_of(request)
        session_id = _session_id(request)
        svc = service()
        return JSONResponse(await svc.history.detail(principal, session_id, svc.store))

    async def patch_session(request: Request) -> Response:
        principal = principal_of(request)
        session_id = _session_id(request)
        body = await read_body(request, max_bytes=_PATCH_BYTES, timeout_s=settings.body_timeout_s)
        data = json_object(body)
        unknown = sorted(set(data) - {"title"})
        if unknown:
            raise InvalidArgumentError(f"unknown field(s): {', '.join(unknown)}", path="body")
        if "title" not in data:
            raise InvalidArgumentError("is required", path="title")
        title = check_title(data["title"])
        return JSONResponse(await service().history.rename(principal, session_id, title))

    async def delete_session(request: Request) -> Response:
        principal = principal_of(request)
        session_id = _session_id(request)
        svc = service()
        await svc.history.delete(principal, session_id)
        prefix = principal_prefix(svc.project_id, principal.tenant_id, principal.user_id)
        with contextlib.suppress(ConfigurationError):  # a store retention cannot prune
            await prune_runs(
                svc.store, older_than=timedelta(microseconds=1), prefix=f"{prefix}{session_id}:"
            )
        await svc.quota.recount()
        return Response(status_code=204)

    return [
        Route("/api/sessions", list_sessions, methods=["GET"]),
        Route("/api/sessions/{session_id}", get_session, methods=["GET"]),
        Route("/api/sessions/{session_id}", patch_session, methods=["PATCH"]),
        Route("/api/sessions/{session_id}", delete_session, methods=["DELETE"]),
    ]
