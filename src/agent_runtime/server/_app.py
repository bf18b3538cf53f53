"""The Starlette app: chat turns, run event streams, models, health, and the chat page.

Routes: `POST /api/chat` (NDJSON turn), `GET /api/runs/{execution_id}/events?after=N`
(the turn's stream log, NDJSON or SSE, closed by one line saying how the run stands), `GET /api/models`, `GET /healthz`, `/` (static chat page).
Every error is a JSON body `{"error": {"type", "code", "message"}}` with a 4xx/5xx status.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..backends import AgentExecutionBackend
from ..chat import TurnSupervisor
from ..durable import DurableRunStore, open_store
from ..errors import (
    AgentRuntimeError,
    BackendTransportError,
    ConfigurationError,
    DurableRunInputMismatchError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from ..models import get_models
from ..sse import NDJSON_CONTENT_TYPE, SSE_CONTENT_TYPE, encode_ndjson, encode_server_sent_event
from ._config import DEFAULT_STORE_URL, BackendConfig, backend_from_env
from ._request import RequestJSONError, parse_chat_request
from ._turns import TurnRunner

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 4 * 1024 * 1024
STATIC_DIR = Path(__file__).with_name("static")
_STREAM_HEADERS = {"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"}


def _error(status: int, exc: AgentRuntimeError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=status)


def _status_for(exc: AgentRuntimeError) -> int:
    if isinstance(exc, RequestJSONError):
        return 400
    if isinstance(exc, InvalidArgumentError):
        return 422
    if isinstance(exc, DurableRunInputMismatchError):
        return 409
    if isinstance(exc, StoreUnavailableError):
        return 503
    if isinstance(exc, BackendTransportError):
        return 502
    return 500


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InvalidArgumentError(f"body is larger than {MAX_BODY_BYTES} bytes", path="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidArgumentError(f"body is larger than {MAX_BODY_BYTES} bytes", path="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_after(request: Request) -> int | None:
    raw = request.query_params.get("after")
    if raw is None:  # an EventSource reconnecting sends the last id it saw
        raw = request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgumentError(
            "must be an integer event sequence number", path="after"
        ) from None
    if value < -1:
        raise InvalidArgumentError("must be >= -1", path="after")
    return None if value == -1 else value


def _wants_sse(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in ("ndjson", "sse"):
            raise InvalidArgumentError("must be ndjson or sse", path="format")
        return fmt == "sse"
    return SSE_CONTENT_TYPE in request.headers.get("accept", "")


async def _ndjson_records(
    turns: TurnRunner, run_id: str, after: int | None
) -> AsyncIterator[bytes]:
    async for record in turns.tail(run_id, after):
        yield encode_ndjson(
            {"seq": record.seq, "event_id": record.event_id, "payload": record.payload}
        )
    closing = await turns.closing(run_id)
    yield encode_ndjson({"seq": None, "event_id": None, "payload": closing})


def _sse_frame(payload: Any, seq: int | None) -> bytes:
    kind = payload.get("type") if isinstance(payload, dict) else None
    return encode_server_sent_event(
        payload,
        event=kind if isinstance(kind, str) else None,
        id=None if seq is None else str(seq),
    ).encode()


async def _sse_records(turns: TurnRunner, run_id: str, after: int | None) -> AsyncIterator[bytes]:
    async for record in turns.tail(run_id, after):
        yield _sse_frame(record.payload, record.seq)
    yield _sse_frame(await turns.closing(run_id), None)


def create_app(
    store_url: str | None = None,
    backend: AgentExecutionBackend | BackendConfig | None = None,
    *,
    store: DurableRunStore | None = None,
    project_id: str = "chat",
    poll_s: float = 0.1,
    sweep_interval_ms: int | None = 5_000,
) -> Starlette:
    """The chat service. `store_url` (default: SQLite under `./.agent-runtime/`) is opened at
    startup unless an open `store` is given (the caller then closes it); `backend` defaults
    to `OPENAI_BASE_URL`'s endpoint, else echo. `poll_s` bounds how long the events endpoint
    waits between reads of a live run's log (it starts at 10 ms and backs off). Every
    `sweep_interval_ms` (None: never) turns whose worker died are re-driven to completion."""
    if store_url is not None and store is not None:
        raise ConfigurationError("give store_url or store, not both")
    if store_url is not None and not isinstance(store_url, str):
        raise ConfigurationError("store_url must be a string")
    if type(poll_s) not in (int, float) or not 0 < poll_s <= 10:
        raise ConfigurationError("poll_s must be a number of seconds in (0, 10]")
    if sweep_interval_ms is not None and (
        type(sweep_interval_ms) is not int or sweep_interval_ms < 1
    ):
        raise ConfigurationError("sweep_interval_ms must be a positive int or None")
    if backend is None:
        config = backend_from_env()
    elif isinstance(backend, BackendConfig):
        config = backend
    elif callable(getattr(backend, "stream", None)) and isinstance(
        getattr(backend, "kind", None), str
    ):
        model = getattr(backend, "model", None)
        config = BackendConfig(
            backend=backend, model=model if isinstance(model, str) else backend.kind
        )
    else:
        raise ConfigurationError("backend must be an AgentExecutionBackend or a BackendConfig")
    url = store_url or DEFAULT_STORE_URL
    state: dict[str, Any] = {}

    def runner() -> TurnRunner:
        current = state.get("runner")
        if not isinstance(current, TurnRunner):
            raise StoreUnavailableError("the server is not started")
        return current

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(url)
        turns = (config.runner or TurnRunner)(
            opened,
            config.backend,
            project_id=project_id,
            poll_s=poll_s,
            backend_for_model=config.backend_for,
        )
        state["runner"] = turns
        try:
            async with contextlib.AsyncExitStack() as stack:
                if sweep_interval_ms is not None:
                    supervisor = TurnSupervisor(
                        opened, turns.resolve, sweep_interval_ms=sweep_interval_ms
                    )
                    await stack.enter_async_context(supervisor.running())
                yield
        finally:
            state.pop("runner")
            with contextlib.suppress(AgentRuntimeError):  # a store outage: nothing to wait for
                await turns.drain()
            if store is None:
                await opened.close()
            if backend is None:  # the config is ours: release its connections
                await config.aclose()

    async def chat(request: Request) -> Response:
        try:
            parsed = parse_chat_request(await _read_body(request))
            run_id, turn = await runner().run_turn(parsed)
        except AgentRuntimeError as exc:
            return _error(_status_for(exc), exc)
        headers = {**dict(turn.headers), **_STREAM_HEADERS, "x-execution-id": run_id}
        return StreamingResponse(turn.body, media_type=turn.content_type, headers=headers)

    async def events(request: Request) -> Response:
        run_id = request.path_params["execution_id"]
        try:
            if not run_id or len(run_id) > 512 or any(c in run_id for c in "\r\n\x00"):
                raise InvalidArgumentError("is not a valid execution id", path="execution_id")
            after = _parse_after(request)
            sse = _wants_sse(request)
            turns = runner()
            if not await turns.known(run_id):
                return Response(status_code=204)
        except AgentRuntimeError as exc:
            return _error(_status_for(exc), exc)
        if sse:
            return StreamingResponse(
                _sse_records(turns, run_id, after),
                media_type=SSE_CONTENT_TYPE,
                headers=_STREAM_HEADERS,
            )
        return StreamingResponse(
            _ndjson_records(turns, run_id, after),
            media_type=NDJSON_CONTENT_TYPE,
            headers=_STREAM_HEADERS,
        )

    async def models(_request: Request) -> Response:
        if config.base_url is None:
            ids = [config.model]
        else:
            try:
                listed = await get_models(config.base_url, api_key=config.api_key)
            except AgentRuntimeError as exc:
                return _error(_status_for(exc), exc)
            ids = [str(m.get("id")) for m in listed if m.get("id")]
        return JSONResponse(
            {
                "object": "list",
                "default": config.model,
                "data": [{"id": i, "object": "model"} for i in ids],
            }
        )

    async def healthz(_request: Request) -> Response:
        ok = isinstance(state.get("runner"), TurnRunner)
        return JSONResponse(
            {"status": "ok" if ok else "starting", "backend": config.backend.kind},
            status_code=200 if ok else 503,
        )

    return Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/runs/{execution_id:path}/events", events, methods=["GET"]),
            Route("/api/models", models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"),
        ],
        lifespan=lifespan,
    )
