"""A small ASGI app that serves the fixed logs of `logs.py` through the dialect bodies, so the
real clients can be pointed at the encoders alone (the service's own routes are tested in
test_endpoints.py): `POST /v/{name}` and `GET /v/{name}/{chat_id}/stream` (the AI SDK's
send and reconnect URLs), `POST /agui/{name}`. The cursor is the `Last-Event-ID` header."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agent_runtime.server.dialects import (
    AGUI_HEADERS,
    UI_MESSAGE_STREAM_HEADERS,
    FoldCache,
    agui_body,
    resume_state,
    vercel_body,
)

from .logs import LOGS, StaticLog


def _cursor(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    return None if raw in (None, "", "-1") else int(raw)


async def _vercel(request: Request) -> Response:
    log = StaticLog(*LOGS[request.path_params["name"]])
    after = _cursor(request) if request.method == "GET" else None
    state = await resume_state(log, "r", after, FoldCache())
    body = vercel_body(log, "r", "assistant-1", after, state, FoldCache())
    return StreamingResponse(body, headers=dict(UI_MESSAGE_STREAM_HEADERS))


async def _agui(request: Request) -> Response:
    payload = await request.json()
    log = StaticLog(*LOGS[request.path_params["name"]])
    after = _cursor(request)
    state = await resume_state(log, "r", after, FoldCache())
    body = agui_body(log, "r", payload["threadId"], payload["runId"], after, state, FoldCache())
    return StreamingResponse(body, headers=dict(AGUI_HEADERS))


def static_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v/{name}", _vercel, methods=["POST"]),
            Route("/v/{name}/{chat_id}/stream", _vercel, methods=["GET"]),
            Route("/agui/{name}", _agui, methods=["POST"]),
        ]
    )
