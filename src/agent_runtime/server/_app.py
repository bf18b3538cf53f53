"""The Starlette app: chat turns, run event streams, models, health, and the chat page.

Routes: `POST /api/chat` (NDJSON turn), `GET /api/runs/{execution_id}/events?after=N`
(the turn's stream log, NDJSON or SSE, closed by one line saying how the run stands),
`GET /api/models`, the caller's conversations (`GET/PATCH/DELETE /api/sessions[/{id}]`,
`_session_routes`), the chat-frontend dialects (`POST /api/ui/chat`, `GET
/api/ui/chat/{id}/stream`, `POST /api/agui`) and `POST /api/runs/{execution_id}/cancel`
(`_dialect_routes`), `GET /healthz` (liveness), `GET /readyz` (store write-and-read, backend
reachability), `/` (static chat page). Every `/api/` route is authenticated (`ApiGate`);
every response passes the browser checks and carries the security headers (`BrowserGuard`)
and is logged once (`AccessLog`). Every error is a JSON body `{"error": {"type", "code",
"message"}}` with a 4xx/5xx status, 404 and 405 included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..backends import AgentExecutionBackend
from ..chat import TurnSupervisor
from ..durable import DurableRunStore, open_store
from ..errors import (
    AgentRuntimeError,
    ConfigurationError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from ..history import ConversationHistoryStore
from ..retention import prune_runs
from ..sse import NDJSON_CONTENT_TYPE, SSE_CONTENT_TYPE, encode_ndjson, encode_server_sent_event
from ._access import AccessLog
from ._auth import ApiKeys, Authenticate, Authenticator
from ._browser import BrowserGuard
from ._coalesce import coalesce
from ._config import DEFAULT_STORE_URL, BackendConfig, backend_from_env
from ._conversations import SessionHistory, history_for
from ._dialect_routes import dialect_routes
from ._errors import (
    HTTPRequestError,
    MethodNotAllowedError,
    RouteNotFoundError,
    error_response,
)
from ._gate import ApiGate, principal_of
from ._health import Readiness
from ._ids import TurnRef, parse_execution_id
from ._limits import read_body
from ._logging import log_fields
from ._redact import TurnRedactor
from ._request import ChatRequest, parse_chat_request
from ._service import ChatService
from ._session_routes import session_routes
from ._settings import ServerSettings
from ._turns import LEASE_MS, TurnRunner

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = ServerSettings().max_body_bytes
MAX_CURSOR = 2**63 - 1
STATIC_DIR = Path(__file__).with_name("static")
_STREAM_HEADERS = {"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"}
_log = logging.getLogger("agent_runtime.server")
_CONNECT_S = 2.0  # each attempt to reach the store; a failed one is retried in the background


def _parse_after(request: Request) -> int | None:
    raw = request.query_params.get("after")
    if raw is None:  # an EventSource reconnecting sends the last id it saw
        raw = request.headers.get("last-event-id")
    if raw is None or raw == "":
        return None
    raw = raw.strip()
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits.isascii() or not digits.isdigit() or len(digits) > 25:
        raise InvalidArgumentError("must be an integer event sequence number", path="after")
    value = int(raw)
    if value < -1:
        raise InvalidArgumentError("must be >= -1", path="after")
    if value > MAX_CURSOR:
        raise InvalidArgumentError(f"must be at most {MAX_CURSOR}", path="after")
    return None if value == -1 else value


def _wants_sse(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in ("ndjson", "sse"):
            raise InvalidArgumentError("must be ndjson or sse", path="format")
        return fmt == "sse"
    return SSE_CONTENT_TYPE in request.headers.get("accept", "")


def _sse_frame(payload: Any, seq: int | None) -> bytes:
    kind = payload.get("type") if isinstance(payload, dict) else None
    return encode_server_sent_event(
        payload,
        event=kind if isinstance(kind, str) else None,
        id=None if seq is None else str(seq),
    ).encode()


async def _ndjson_records(
    service: ChatService, ref: TurnRef, after: int | None
) -> AsyncIterator[bytes]:
    async for seq, event_id, payload in service.records(ref, after):
        yield encode_ndjson({"seq": seq, "eventId": event_id, "payload": payload})


async def _sse_records(
    service: ChatService, ref: TurnRef, after: int | None
) -> AsyncIterator[bytes]:
    async for seq, _event_id, payload in service.records(ref, after):
        yield _sse_frame(payload, seq)


async def _favicon(_request: Request) -> Response:
    """What clients that ask `/favicon.ico` without reading the page's `<link rel=icon>` get:
    the page's SVG icon."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


class _PageMount(Mount):
    """The chat page's files, under every path but `/api/`: a known API path asked with
    another method is then a 405 (not the page's 404), an unknown one a JSON 404."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def _backend_config(backend: AgentExecutionBackend | BackendConfig | None) -> BackendConfig:
    if backend is None:
        return backend_from_env()
    if isinstance(backend, BackendConfig):
        return backend
    if isinstance(backend, AgentExecutionBackend):
        model = getattr(backend, "model", None)
        return BackendConfig(
            backend=backend, model=model if isinstance(model, str) else backend.kind
        )
    raise ConfigurationError("backend must be an AgentExecutionBackend or a BackendConfig")


async def _json_http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown routes, missing static files) as JSON errors."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(RouteNotFoundError("no route or file at this path"))
    if exc.status_code == 405:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow")
        error = MethodNotAllowedError("this route does not take this method")
        return error_response(error, headers={"allow": allowed} if allowed else None)
    error_type = HTTPRequestError(exc.detail or "request refused", code="http_error")
    error_type.status = exc.status_code
    return error_response(error_type, headers=exc.headers)


async def _json_agent_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentRuntimeError)
    return error_response(exc)


async def _json_server_error(_request: Request, exc: Exception) -> Response:
    _log.error("unhandled error in a request: %s: %s", type(exc).__name__, exc)
    error = AgentRuntimeError("the server failed to answer this request", code="internal_error")
    return error_response(error)


def create_app(
    store_url: str | None = None,
    backend: AgentExecutionBackend | BackendConfig | None = None,
    *,
    store: DurableRunStore | None = None,
    project_id: str = "chat",
    poll_s: float = 0.1,
    sweep_interval_ms: int | None = 5_000,
    lease_ms: int = LEASE_MS,
    settings: ServerSettings | None = None,
    api_keys: ApiKeys | None = None,
    authenticate: Authenticate | None = None,
    history: ConversationHistoryStore | None = None,
) -> Starlette:
    """The chat service. `store_url` (default: SQLite under `./.agent-runtime/`) is opened at
    startup unless an open `store` is given (the caller then closes it); a store that cannot
    be reached yet is retried in the background while `/readyz` says so. `backend` defaults
    to `OPENAI_BASE_URL`'s endpoint, else echo. `poll_s` bounds how long the events endpoint
    waits between reads of a live run's log. Every `sweep_interval_ms` (None: never) turns
    whose worker died are re-driven to completion; `lease_ms` is how long a turn's worker may
    go silent before another takes the turn over.

    Callers are authenticated by `authenticate(request)` (a product's own: returns a
    `Principal`, or None for 401), else by `api_keys` (default: `AGENT_RUNTIME_API_KEYS`);
    with neither, the service serves loopback clients only, as the `local` tenant.
    `settings` holds the deployment's limits and policies (`ServerSettings`). Conversations
    are kept in `history` (the caller closes it), by default on the store's own database."""
    if store_url is not None and store is not None:
        raise ConfigurationError("give store_url or store, not both")
    if store_url is not None and not isinstance(store_url, str):
        raise ConfigurationError("store_url must be a string")
    if type(lease_ms) is not int or lease_ms < 100:
        raise ConfigurationError("lease_ms must be an int >= 100")
    if type(poll_s) not in (int, float) or not 0 < poll_s <= 10:
        raise ConfigurationError("poll_s must be a number of seconds in (0, 10]")
    if sweep_interval_ms is not None and (
        type(sweep_interval_ms) is not int or sweep_interval_ms < 1
    ):
        raise ConfigurationError("sweep_interval_ms must be a positive int or None")
    chosen = settings if settings is not None else ServerSettings()
    if not isinstance(chosen, ServerSettings):
        raise ConfigurationError("settings must be ServerSettings")
    if history is not None and not isinstance(history, ConversationHistoryStore):
        raise ConfigurationError("history must be a ConversationHistoryStore")
    if api_keys is not None and not isinstance(api_keys, ApiKeys):
        raise ConfigurationError("api_keys must be ApiKeys")
    keys = api_keys if api_keys is not None else ApiKeys.load()
    authenticator = Authenticator(keys, authenticate)
    config = _backend_config(backend)
    url = store_url or DEFAULT_STORE_URL
    readiness = Readiness(config, min_free_bytes=chosen.min_free_bytes)
    state: dict[str, Any] = {"store_error": None}

    def service() -> ChatService:
        current = state.get("service")
        if not isinstance(current, ChatService):
            reason = state.get("store_error") or "the server is starting"
            raise StoreUnavailableError(f"the store is not available: {reason}")
        return current

    async def start(opened: DurableRunStore, stack: contextlib.AsyncExitStack) -> None:
        def redactor() -> TurnRedactor:
            return TurnRedactor(chosen.telemetry, store_raw=chosen.store_raw)

        turns = (config.runner or TurnRunner)(
            opened,
            config.backend,
            project_id=project_id,
            poll_s=poll_s,
            lease_ms=lease_ms,
            backend_for_model=config.backend_for,
            redactor=redactor,
            log=_engine_log,
        )
        conversations = history
        if conversations is None:
            conversations = history_for(opened)
            stack.push_async_callback(conversations.close)
        sessions = SessionHistory(conversations, project_id)
        if isinstance(turns, TurnRunner):

            async def record(
                request: ChatRequest, run_id: str, text: str, lines: list[Any] | None
            ) -> None:
                await sessions.record(opened, request, run_id, text, lines)

            turns.persist = record
        svc = ChatService(
            history=sessions,
            store=opened,
            runner=turns,
            config=config,
            settings=chosen,
            project_id=project_id,
            readiness=readiness,
        )
        if sweep_interval_ms is not None:
            supervisor = TurnSupervisor(opened, turns.resolve, sweep_interval_ms=sweep_interval_ms)
            await stack.enter_async_context(supervisor.running())
        if chosen.retention is not None:
            task = asyncio.get_running_loop().create_task(_retention_loop(svc))
            stack.push_async_callback(_cancel, task)
        state["service"] = svc
        state["store"] = opened
        state["store_error"] = None

    async def open_later(stack: contextlib.AsyncExitStack) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                opened = await open_store(url, connect_timeout_s=_CONNECT_S)
            except AgentRuntimeError as exc:
                state["store_error"] = exc.message
                continue
            state["owned_store"] = opened
            await start(opened, stack)
            log_fields(_log, logging.INFO, "store reachable again; serving turns")
            return

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                if store is not None:
                    await start(store, stack)
                else:
                    try:
                        opened = await open_store(url, connect_timeout_s=_CONNECT_S)
                    except StoreUnavailableError as exc:
                        state["store_error"] = exc.message
                        log_fields(
                            _log,
                            logging.WARNING,
                            "store unreachable; retrying in the background",
                            code=exc.code,
                            detail=exc.message,
                        )
                        retry = asyncio.get_running_loop().create_task(open_later(stack))
                        stack.push_async_callback(_cancel, retry)
                    else:
                        state["owned_store"] = opened
                        await start(opened, stack)
                yield
            finally:
                svc = state.pop("service", None)
                if isinstance(svc, ChatService):
                    await svc.close()
                    with contextlib.suppress(AgentRuntimeError):  # an outage: nothing to wait for
                        await svc.runner.drain()
        owned = state.pop("owned_store", None)
        if owned is not None:
            await owned.close()
        if backend is None:  # the config is ours: release its connections
            await config.aclose()

    async def chat(request: Request) -> Response:
        principal = principal_of(request)
        body = await read_body(
            request, max_bytes=chosen.max_body_bytes, timeout_s=chosen.body_timeout_s
        )
        parsed = parse_chat_request(
            body,
            max_messages=chosen.max_messages,
            max_text_chars=chosen.max_message_chars,
            allow_system=chosen.allow_client_system,
        )
        ref, turn_body = await service().start_turn(principal, parsed, len(body))
        headers = {**_STREAM_HEADERS, "x-execution-id": ref.execution_id}
        return StreamingResponse(
            coalesce(turn_body), media_type=NDJSON_CONTENT_TYPE, headers=headers
        )

    async def events(request: Request) -> Response:
        principal = principal_of(request)
        raw = request.path_params["execution_id"]
        if not raw or len(raw) > 512 or any(c in raw for c in "\r\n\x00"):
            raise InvalidArgumentError("is not a valid execution id", path="execution_id")
        ref = parse_execution_id(project_id, principal, raw)
        after = _parse_after(request)
        sse = _wants_sse(request)
        svc = service()
        if not await svc.known(ref):  # another tenant's or user's run is never looked up
            return Response(status_code=204)
        if sse:
            return StreamingResponse(
                coalesce(_sse_records(svc, ref, after)),
                media_type=SSE_CONTENT_TYPE,
                headers=_STREAM_HEADERS,
            )
        return StreamingResponse(
            coalesce(_ndjson_records(svc, ref, after)),
            media_type=NDJSON_CONTENT_TYPE,
            headers=_STREAM_HEADERS,
        )

    async def models(request: Request) -> Response:
        principal_of(request)
        allowed = chosen.models or (config.model,)
        return JSONResponse(
            {
                "object": "list",
                "default": config.model,
                "data": [{"id": i, "object": "model"} for i in allowed],
            }
        )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "backend": config.backend.kind})

    async def readyz(_request: Request) -> Response:
        store_report = await readiness.store(state.get("store"), state.get("store_error"))
        backend_report = await readiness.backend()
        ready = bool(store_report.get("ok"))
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "store": store_report,
                "backend": backend_report,
            },
            status_code=200 if ready else 503,
        )

    handlers: dict[Any, Callable[..., Any]] = {
        HTTPException: _json_http_error,
        AgentRuntimeError: _json_agent_error,
        Exception: _json_server_error,
    }
    return Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/runs/{execution_id:path}/events", events, methods=["GET"]),
            Route("/api/models", models, methods=["GET"]),
            *dialect_routes(service, chosen, project_id),
            *session_routes(service, chosen),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/favicon.ico", _favicon, methods=["GET", "HEAD"]),
            _PageMount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static"),
        ],
        middleware=[
            Middleware(AccessLog),
            Middleware(
                BrowserGuard,
                allowed_origins=chosen.allowed_origins,
                allowed_hosts=chosen.allowed_hosts,
            ),
            Middleware(ApiGate, authenticator=authenticator),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )


def _engine_log(message: str, meta: Mapping[str, Any]) -> None:
    """The chat engine's reports as one structured line each; a failed turn is logged by the
    service instead (with its execution id, tenant and error code)."""
    if message.endswith("turn failed"):
        return
    _log.warning(message.removeprefix("[chat-engine] "), extra={"fields": dict(meta)})


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _retention_loop(service: ChatService) -> None:
    """Prune this service's runs idle longer than the retention, every interval."""
    settings = service.settings
    assert settings.retention is not None
    while True:
        try:
            result = await prune_runs(
                service.store, older_than=settings.retention, prefix=f"{service.project_id}:"
            )
            await service.quota.recount()
            if result.count:
                log_fields(_log, logging.INFO, "pruned runs", count=result.count)
        except AgentRuntimeError as exc:
            log_fields(
                _log, logging.WARNING, "retention sweep failed", code=exc.code, detail=exc.message
            )
        await asyncio.sleep(settings.retention_interval_s)
