"""The chat-frontend routes: the Vercel AI SDK UI message stream, AG-UI, and stopping a turn.

`POST /api/ui/chat` (`useChat`'s body) and `POST /api/agui` (`RunAgentInput`) start the turn
through the chat service, exactly as `POST /api/chat` does (same admission, same durable run),
and drain its native body in a background task so the turn runs whatever the client does; the
response is the turn's stream log in the dialect, from the cursor in `Last-Event-ID`.
`GET /api/ui/chat/{id}/stream` re-attaches to the session's latest turn (204 when it is not
running and the client's cursor is at its end). `POST /api/runs/{execution_id}/cancel` stops a
turn this process produces (see `_cancel`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..chat import latest_restart_seq
from ..durable import DurableRunStore, RunRecord, StreamEventRecord
from ..errors import AgentRuntimeError, InvalidArgumentError
from ..models import clean_model_id, is_well_formed_model_id
from ..types import AgentMessage
from ._auth import Principal
from ._coalesce import coalesce
from ._errors import HTTPRequestError, RouteNotFoundError
from ._gate import principal_of
from ._ids import TurnRef, parse_execution_id
from ._limits import read_body
from ._redact import scrub_line
from ._request import ChatRequest, is_client_id, parse_chat_request
from ._service import ChatService
from ._settings import ServerSettings
from .dialects import (
    AGUI_HEADERS,
    UI_MESSAGE_STREAM_HEADERS,
    AguiRunInput,
    InterruptRefusal,
    TimelineState,
    agui_body,
    check_resume,
    open_interrupts,
    parse_run_agent_input,
    parse_ui_chat_request,
    refusal_body,
    resume_state,
    vercel_body,
)

__all__ = ["TurnRunningElsewhereError", "dialect_routes"]

_log = logging.getLogger("agent_runtime.server")
_DRAINS: set[asyncio.Task[None]] = set()  # native bodies drained so their turns run
_MAX_CURSOR = 2**63 - 1
_RUN_WAIT_S = 10.0


class TurnRunningElsewhereError(HTTPRequestError):
    """A cancel for a turn another server process is producing (409): ask that process, or
    wait for the turn to end."""

    code = "turn_running_elsewhere"
    status = 409


class _ClientLog:
    """The `TurnLog` the dialect bodies read: the runner's log, payloads scrubbed as the
    events endpoint scrubs them."""

    def __init__(self, service: ChatService) -> None:
        self._service = service

    @property
    def store(self) -> DurableRunStore:
        return self._service.store

    async def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]:
        async for record in self._service.runner.tail(run_id, after):
            clean = scrub_line(record.payload)
            yield record if clean is record.payload else dataclasses.replace(record, payload=clean)

    async def closing(self, run_id: str) -> dict[str, Any]:
        closing: dict[str, Any] = scrub_line(await self._service.runner.closing(run_id))
        return closing


def _cursor(request: Request) -> int | None:
    """The `Last-Event-ID` a reconnecting client sends (None: from the beginning)."""
    raw = request.headers.get("last-event-id")
    if raw is None or raw.strip() in ("", "-1"):
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > _MAX_CURSOR:
        raise InvalidArgumentError("must be an event sequence number", path="Last-Event-ID")
    return int(raw)


async def _reading_from(
    log: _ClientLog, run_id: str, after: int | None
) -> tuple[int | None, TimelineState | None]:
    """Where a dialect body starts and its fold state there: the client's cursor, or for a
    client starting fresh the turn's last restart marker (what came before it is superseded:
    a retried or re-run turn reads as its latest attempt alone)."""
    if after is None:
        after = await latest_restart_seq(log.store, run_id)
    return after, await resume_state(log, run_id, after)


async def _check_interrupts(
    service: ChatService, principal: Principal, thread_id: str, turn: int, parsed: AguiRunInput
) -> None:
    """Refuse (`InterruptRefusal`) a new run on the thread that does not answer exactly the
    interrupts its latest turn left open; a turn already asked (a replay) passes."""
    latest = await _latest(service, principal, thread_id)
    if latest is not None and turn <= latest[0].turn_index:
        return
    open_ids: list[str] = []
    if latest is not None and latest[1].status == "completed":
        open_ids = [str(i["id"]) for i in await open_interrupts(service.store, latest[0].run_id)]
    check_resume(open_ids, parsed.resume)


def _chat_request(
    settings: ServerSettings,
    session_id: str,
    messages: tuple[AgentMessage, ...],
    model: str | None,
) -> ChatRequest:
    """The service's turn request for a dialect's conversation (its rules: no client system
    messages unless allowed, a well-formed model id, a turn index in range)."""
    if not settings.allow_client_system and any(m.role == "system" for m in messages):
        raise InvalidArgumentError(
            "system messages are not accepted from clients (the server sets the prompt)",
            path="messages",
        )
    if model is not None:
        cleaned = clean_model_id(model)
        if cleaned is None or not is_well_formed_model_id(cleaned):
            raise InvalidArgumentError(f"Model id is malformed: {model}", path="model")
        model = cleaned
    turn = sum(1 for m in messages if m.role == "user") - 1
    if not 0 <= turn < 1_000_000:
        raise InvalidArgumentError("at most 999999 user messages", path="messages")
    return ChatRequest(session_id=session_id, turn_index=turn, messages=messages, model=model)


async def _drain(body: AsyncIterator[bytes], execution_id: str) -> None:
    try:
        async for _chunk in body:
            pass
    except Exception as exc:  # the turn's own failure is in its log; this is the relay's
        _log.warning("draining turn %s failed: %s: %s", execution_id, type(exc).__name__, exc)


async def _start(
    service: ChatService, principal: Principal, request: ChatRequest, incoming: int
) -> TurnRef:
    """Start (or re-attach, resume, replay) the turn and keep its native body draining in
    the background; returns once the turn's run is driven by a live worker or over (or its
    body already ended): a reader of its log then never mistakes a turn about to be claimed
    (new, retried, or resumed after its worker died) for one whose worker is gone."""
    ref, body = await service.start_turn(principal, request, incoming)
    task = asyncio.get_running_loop().create_task(_drain(body, ref.execution_id))
    _DRAINS.add(task)
    task.add_done_callback(_DRAINS.discard)
    deadline = asyncio.get_running_loop().time() + _RUN_WAIT_S
    delay = 0.002
    while not task.done() and asyncio.get_running_loop().time() < deadline:
        run = await service.store.load_run(ref.run_id)
        if run is not None and run.status != "failed" and not _lapsed(run):
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return ref


def _lapsed(run: RunRecord) -> bool:
    """A running turn whose worker went silent past its lease (it died)."""
    expires = run.lease_expires_at
    return run.status == "running" and (expires is None or expires < datetime.now(UTC))


async def _redrive(service: ChatService, principal: Principal, run: RunRecord) -> None:
    """Resume a turn whose worker died, from its recorded request (as the sweeper would)."""
    manifest = run.manifest if isinstance(run.manifest, dict) else {}
    recorded = manifest.get("input")
    raw = recorded.get("input") if isinstance(recorded, dict) else None
    try:
        request = parse_chat_request(
            orjson.dumps(raw), max_messages=1_000_000, max_text_chars=1 << 40, allow_system=True
        )
    except AgentRuntimeError as exc:
        _log.warning("cannot resume turn %s: %s", run.run_id, exc.message)
        return
    await _start(service, principal, request, 0)


async def _latest(
    service: ChatService, principal: Principal, session_id: str
) -> tuple[TurnRef, RunRecord] | None:
    """The session's latest turn that has a run, with its run."""
    found: tuple[TurnRef, RunRecord] | None = None
    turn = 0
    while turn < 1_000_000:
        ref = TurnRef(service.project_id, principal, session_id, turn)
        run = await service.store.load_run(ref.run_id)
        if run is None:
            return found
        found = (ref, run)
        turn += 1
    return found


def _agui_messages(parsed: AguiRunInput) -> tuple[AgentMessage, ...]:
    """The conversation a run asks: its messages, plus one user message of the answers when
    it resumes interrupts (the next turn of the thread, the same turn on every re-post)."""
    if not parsed.resume:
        return parsed.messages
    answers = []
    for entry in parsed.resume:
        if entry.status != "resolved":
            continue
        payload = entry.payload
        answer = payload.get("answer") if isinstance(payload, dict) else payload
        if answer is None:
            continue
        answers.append(answer if isinstance(answer, str) else orjson.dumps(answer).decode())
    if not answers or not "".join(answers).strip():
        raise InvalidArgumentError("no resolved answer to resume the run with", path="resume")
    return (*parsed.messages, AgentMessage(role="user", content="\n".join(answers)))


def _execution_ref(project_id: str, principal: Principal, raw: str) -> TurnRef:
    if not raw or len(raw) > 512 or any(c in raw for c in "\r\n\x00"):
        raise InvalidArgumentError("is not a valid execution id", path="execution_id")
    return parse_execution_id(project_id, principal, raw)


def dialect_routes(
    service: Callable[[], ChatService], settings: ServerSettings, project_id: str
) -> list[Route]:
    """The routes of this module, over the app's `service()` (raises while the store is not
    open) and its `settings`."""

    async def body_of(request: Request) -> bytes:
        return await read_body(
            request, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
        )

    async def ui_chat(request: Request) -> Response:
        principal = principal_of(request)
        body = await body_of(request)
        parsed = parse_ui_chat_request(
            body, max_messages=settings.max_messages, max_text_chars=settings.max_message_chars
        )
        turn = _chat_request(settings, parsed.chat_id, parsed.messages, parsed.model)
        svc = service()
        ref = await _start(svc, principal, turn, len(body))
        log = _ClientLog(svc)
        after, state = await _reading_from(log, ref.run_id, None)
        stream = vercel_body(log, ref.run_id, ref.execution_id, after, state)
        headers = {**UI_MESSAGE_STREAM_HEADERS, "x-execution-id": ref.execution_id}
        return StreamingResponse(coalesce(stream), headers=headers)

    async def ui_chat_stream(request: Request) -> Response:
        principal = principal_of(request)
        chat_id = request.path_params["chat_id"]
        if not is_client_id(chat_id):
            raise InvalidArgumentError("is not a chat id", path="id")
        after = _cursor(request)
        svc = service()
        latest = await _latest(svc, principal, chat_id)
        if latest is None:
            return Response(status_code=204)
        ref, run = latest
        if run.status != "running":
            length = await svc.store.stream_length(ref.run_id)
            if after is None or after >= length - 1:
                return Response(status_code=204)  # nothing the client has not got
        elif _lapsed(run):
            await _redrive(svc, principal, run)
        log = _ClientLog(svc)
        after, state = await _reading_from(log, ref.run_id, after)
        stream = vercel_body(log, ref.run_id, ref.execution_id, after, state)
        headers = {**UI_MESSAGE_STREAM_HEADERS, "x-execution-id": ref.execution_id}
        return StreamingResponse(coalesce(stream), headers=headers)

    async def agui(request: Request) -> Response:
        principal = principal_of(request)
        after = _cursor(request)
        body = await body_of(request)
        parsed = parse_run_agent_input(
            body,
            max_messages=settings.max_messages,
            max_text_chars=settings.max_message_chars,
            resuming=after is not None,
        )
        turn = _chat_request(settings, parsed.thread_id, _agui_messages(parsed), None)
        svc = service()
        try:
            await _check_interrupts(svc, principal, parsed.thread_id, turn.turn_index, parsed)
        except InterruptRefusal as refusal:
            return Response(refusal_body(refusal), headers=AGUI_HEADERS)
        ref = TurnRef(svc.project_id, principal, turn.session_id, turn.turn_index)
        run = await svc.store.load_run(ref.run_id) if after is not None else None
        if run is None or run.status != "failed":  # re-reading a failed run does not retry it
            ref = await _start(svc, principal, turn, len(body))
        log = _ClientLog(svc)
        after, state = await _reading_from(log, ref.run_id, after)
        stream = agui_body(
            log,
            ref.run_id,
            parsed.thread_id,
            parsed.run_id,
            after,
            state,
            id_prefix=ref.execution_id,  # the stored id names the tenant and user
        )
        headers = {**AGUI_HEADERS, "x-execution-id": ref.execution_id}
        return StreamingResponse(coalesce(stream), headers=headers)

    async def cancel(request: Request) -> Response:
        principal = principal_of(request)
        ref = _execution_ref(project_id, principal, request.path_params["execution_id"])
        svc = service()
        run = await svc.store.load_run(ref.run_id)
        if run is None:
            raise RouteNotFoundError("no turn with this execution id")
        claimed = (  # leased by this process: its producer may not have registered yet
            run.status == "running"
            and run.lease_holder is not None
            and run.lease_holder == svc.runner.worker_id
            and not _lapsed(run)
        )
        if svc.runner.cancels.cancel(ref.run_id, claimed=claimed):
            body = {"executionId": ref.execution_id, "status": "stopping", "stopped": True}
            return JSONResponse(body, status_code=202)
        if run.status == "running" and not _lapsed(run):
            raise TurnRunningElsewhereError(
                "another server process is producing this turn; it cannot be stopped here"
            )
        return JSONResponse(
            {"executionId": ref.execution_id, "status": run.status, "stopped": False}
        )

    return [
        Route("/api/ui/chat", ui_chat, methods=["POST"]),
        Route("/api/ui/chat/{chat_id}/stream", ui_chat_stream, methods=["GET"]),
        Route("/api/agui", agui, methods=["POST"]),
        Route("/api/runs/{execution_id:path}/cancel", cancel, methods=["POST"]),
    ]
