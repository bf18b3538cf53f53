"""Chat turns for the service: `DurableChatTurnEngine` turns over a backend, and readers of a
turn's stream log.

Each turn is the durable run `derive_execution_id(project, session, turn)`. The engine streams
it while logging every producer event; a client that disconnects (a reloaded page) does not
stop it, and any client re-attaches by reading the log from a cursor (`tail`). Asking for a
finished turn again replays it without calling the model; a turn whose worker died is
resumed by the next request for it (after a `session.run.restarted` line when the backend
answers differently the second time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from .._wire import WireRecord
from ..backends import AgentExecutionBackend
from ..chat import (
    CHAT_TURN_TASK,
    ChatStreamEvent,
    ChatTurnIdentity,
    ChatTurnLog,
    ChatTurnResult,
    DurableChatTurnEngine,
    SweepTarget,
    TurnLogCursor,
    restart_failed_turn,
    restarted_event,
)
from ..durable import DurableRunManifest, DurableRunStore, RunRecord, StreamEventRecord
from ..durable._manifest import derive_worker_id
from ..errors import (
    AgentRuntimeError,
    BackendTransportError,
    DurableRunInputMismatchError,
    ValidationError,
)
from ..types import (
    RUNTIME_STREAM_EVENT_TYPES,
    AbortController,
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskSpec,
    BackendErrorEvent,
    FinalEvent,
    RuntimeSession,
    TextDeltaEvent,
)
from ._auth import Principal
from ._cancel import STOP_REASON, TurnCancels
from ._ids import TurnRef
from ._redact import TurnRedactor
from ._request import ChatRequest, parse_chat_request

__all__ = ["CHAT_INTENT", "CLOSING_EVENT_TYPES", "LEASE_MS", "TurnRunner"]

CHAT_INTENT = "Answer the user's chat message."
"""The task intent of every chat turn: a fixed operation description (telemetry shows it
unredacted), never the user's text, which travels in the backend input's `messages`."""

LEASE_MS = 15_000
_log = logging.getLogger("agent_runtime.server")
CLOSING_EVENT_TYPES = frozenset(
    ("session.run.completed", "session.run.failed", "session.run.interrupted")
)
TurnPersist = Callable[[ChatRequest, str, str, "list[ChatStreamEvent] | None"], Awaitable[None]]
"""Records a finished turn: its request, durable run id, final text and the lines of its last
attempt when this process produced them (None: read them from the stream log)."""


class _BackendProducer:
    """A `ChatTurnProducer` over a backend: each event's wire form without its `task` and
    `session` keys (server-internal), `text_delta` text collected as the final text. A
    backend that raises (a `BackendTransportError`) or yields `backend_error` fails the turn
    (handle_chat_turn reports it); a client that leaves aborts the backend's signal and
    closes its stream."""

    def __init__(
        self,
        backend: AgentExecutionBackend,
        input: AgentBackendInput,
        session: RuntimeSession,
        redactor: TurnRedactor | None = None,
        cancels: TurnCancels | None = None,
    ) -> None:
        self._backend = backend
        self._input = input
        self._session = session
        self._redactor = redactor  # the service's: sanitized lines, scrubbed final text
        self._cancels = cancels
        self._parts: list[str] = []
        self.lines: list[ChatStreamEvent] = []  # what the stream yielded (and the turn logged)
        self.finished = False  # the stream ended normally
        self._stream = self._run()

    @property
    def stream(self) -> AsyncIterator[ChatStreamEvent]:
        return self._stream

    def final_text(self) -> str:
        if self._redactor is not None:
            return self._redactor.final_text()
        return "".join(self._parts)

    async def _run(self) -> AsyncIterator[ChatStreamEvent]:
        run_id = self._input.task.id
        cancels = self._cancels
        if cancels is not None and cancels.before_register is not None:
            await cancels.before_register(run_id)  # a test's fault hook
        controller = cancels.register(run_id) if cancels is not None else AbortController()
        ctx = AgentBackendContext(
            task=self._input.task, session=self._session, signal=controller.signal
        )
        kind = self._backend.kind
        events = self._backend.stream(self._input, ctx)
        done = False
        lines = self.lines
        try:
            redactor = self._redactor
            try:
                async for event in _until_aborted(events, controller):
                    line = _wire(event, kind)
                    if redactor is not None:
                        for clean in redactor.lines(event):
                            lines.append(clean)
                            yield clean
                        continue
                    if isinstance(event, TextDeltaEvent):
                        self._parts.append(event.text)
                    lines.append(line)
                    yield line
                if controller.signal.aborted:  # stopped: the partial text is the answer
                    stopped = FinalEvent(
                        task=self._input.task,
                        status="aborted",
                        reason=str(controller.signal.reason or STOP_REASON),
                    )
                    if redactor is not None:
                        for clean in redactor.lines(stopped):
                            lines.append(clean)
                            yield clean
                    else:
                        line = _wire(stopped, kind)
                        lines.append(line)
                        yield line
            except Exception:
                for clean in redactor.flush() if redactor is not None else ():
                    yield clean  # the text held back so far, scrubbed, before the failure
                raise
            for clean in redactor.flush() if redactor is not None else ():
                lines.append(clean)
                yield clean
            done = True
            self.finished = True
        finally:
            if cancels is not None:
                cancels.release(run_id, controller)
            if not done:
                controller.abort("the chat turn ended before the backend finished")
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


async def _until_aborted(
    events: AsyncIterator[Any], controller: AbortController
) -> AsyncIterator[Any]:
    """The backend's events until it ends or `controller` is aborted; an abort cancels the
    pending read (the backend's stream is closed, and with it its upstream request).

    The reads run in the caller's task, no task per event: an abort during a read cancels
    that task and the cancellation is taken back here (`uncancel`), so a cancellation from
    anyone else (a lost lease, a shutdown) still propagates."""
    signal = controller.signal
    if signal.aborted:  # stopped before it started: read nothing
        return
    iterator = aiter(events)
    reading: asyncio.Task[Any] | None = None  # the task blocked in a read, while it is
    ours = False  # the abort cancelled `reading`

    def on_abort() -> None:
        nonlocal ours
        if reading is not None and not ours:
            ours = True
            reading.cancel()

    remove = signal.add_listener(on_abort)
    try:
        while not signal.aborted:
            task = asyncio.current_task()
            reading = task
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if task is None:
                    raise
                if ours:
                    if task.uncancel() == 0:
                        return  # our abort's cancellation, and nobody else's
                elif signal.aborted and task.cancelling() == 0:
                    return  # the backend saw the abort first (an HTTP backend raises)
                raise
            finally:
                reading = None
            if ours:  # the backend swallowed our cancellation and answered: stop anyway
                if task is not None and task.uncancel() > 0:
                    raise asyncio.CancelledError
                return
            yield event
    finally:
        remove()


def _wire(event: Any, kind: str) -> ChatStreamEvent:
    """The chat line of one backend event; `backend_error` and non-events raise."""
    if not isinstance(event, WireRecord) or event.TYPE not in RUNTIME_STREAM_EVENT_TYPES:
        raise ValidationError(
            f"backend {kind!r} yielded {type(event).__name__}, not a RuntimeStreamEvent"
        )
    if isinstance(event, BackendErrorEvent):
        detail = event.error
        if detail is not None and detail.kind == "transport":
            raise BackendTransportError(
                event.backend, event.message, status=detail.status, body=detail.body
            )
        raise AgentRuntimeError(event.message, code="backend_error")
    data = event.to_dict()
    data.pop("task", None)
    data.pop("session", None)
    return data


class _Hooks:
    """The turn's hooks: produce from the backend; the engine checkpoints the final text as
    the run's outcome, which is where this service keeps the assistant message."""

    def __init__(
        self,
        backend: AgentExecutionBackend,
        input: AgentBackendInput,
        session: RuntimeSession,
        redactor: Callable[[], TurnRedactor] | None = None,
        cancels: TurnCancels | None = None,
        persist: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._backend = backend
        self._input = input
        self._session = session
        self._redactor = redactor
        self._cancels = cancels
        self._persist = persist
        self._producer: _BackendProducer | None = None  # the last one this process ran

    def produce(self) -> _BackendProducer:
        redactor = self._redactor() if self._redactor is not None else None
        producer = _BackendProducer(
            self._backend, self._input, self._session, redactor, self._cancels
        )
        self._producer = producer
        return producer

    def lines(self) -> list[ChatStreamEvent] | None:
        """The lines of the attempt this process produced to its end (the ones the turn
        logged), or None: the text was checkpointed elsewhere, read the log."""
        producer = self._producer
        return producer.lines if producer is not None and producer.finished else None

    async def persist_assistant_message(self, _identity: ChatTurnIdentity, final_text: str) -> None:
        if self._persist is not None:
            await self._persist(final_text)


class TurnRunner:
    """Serves turns through `DurableChatTurnEngine` on `store` and tails their stream logs.

    A turn's durable run id names its tenant and user (`TurnRef.run_id`): the engine of a
    turn works in the project `{project}:{tenant}:{user}`. `redactor` (the service's) makes
    each turn's lines and stored text client-safe."""

    def __init__(
        self,
        store: DurableRunStore,
        backend: AgentExecutionBackend,
        *,
        project_id: str = "chat",
        poll_s: float = 0.1,
        lease_ms: int = LEASE_MS,
        backend_for_model: Callable[[str], AgentExecutionBackend] | None = None,
        redactor: Callable[[], TurnRedactor] | None = None,
        log: ChatTurnLog | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.backend_for_model = backend_for_model
        self.project_id = project_id
        self.poll_s = poll_s
        self.lease_ms = lease_ms
        self.redactor = redactor
        self.log = log  # where the engine reports a hook or turn failure (None: its default)
        self.persist: TurnPersist | None = None  # records a finished turn (the history's)
        self.worker_id = derive_worker_id()
        self.cancels = TurnCancels()
        self.engine = DurableChatTurnEngine(
            store, project_id, worker_id=self.worker_id, lease_ms=lease_ms
        )

    def _ref(self, request: ChatRequest) -> TurnRef:
        principal = Principal(request.tenant_id, request.user_id)
        return TurnRef(self.project_id, principal, request.session_id, request.turn_index)

    def _engine(self, request: ChatRequest) -> DurableChatTurnEngine:
        """The engine of the request's principal (its project is the principal's scope)."""
        return DurableChatTurnEngine(
            self.store, self._ref(request).scope, worker_id=self.worker_id, lease_ms=self.lease_ms
        )

    def execution_id(self, request: ChatRequest) -> str:
        """The turn's durable run id: `{project}:{tenant}:{user}:{session}:{turn}`."""
        return self._ref(request).run_id

    def _backend(self, model: str | None) -> AgentExecutionBackend:
        if model is None or self.backend_for_model is None:
            return self.backend
        return self.backend_for_model(model)

    def _hooks(self, request: ChatRequest, run_id: str) -> _Hooks:
        backend = self._backend(request.model)
        backend_input = AgentBackendInput(
            task=AgentTaskSpec(id=run_id, intent=CHAT_INTENT, domain="chat"),
            messages=request.messages,
        )
        session = RuntimeSession.new(backend.kind, request.session_id)
        persist = self.persist

        async def persisted(text: str) -> None:
            if persist is not None:
                await persist(request, run_id, text, hooks.lines())

        hooks = _Hooks(backend, backend_input, session, self.redactor, self.cancels, persisted)
        return hooks

    def resolve(self, run: RunRecord, manifest: DurableRunManifest) -> SweepTarget | None:
        """How the orphan sweeper re-drives one of this service's turns (None for other
        runs): the same producer and the same finish step the engine runs."""
        task = manifest.task
        ours = manifest.project_id == self.project_id or manifest.project_id.startswith(
            f"{self.project_id}:"
        )
        if not ours or not isinstance(task, dict):
            return None
        if task.get("id") != CHAT_TURN_TASK["id"] or not isinstance(manifest.input, dict):
            return None
        try:  # admitted once already: the limits and the system-message rule were applied
            request = parse_chat_request(
                orjson.dumps(manifest.input.get("input")),
                max_messages=1_000_000,
                max_text_chars=1 << 40,
                allow_system=True,
            )
        except AgentRuntimeError as exc:
            _log.warning("cannot re-drive turn %s: %s", run.run_id, exc.message)
            return None

        parts = run.run_id[len(self.project_id) + 1 :].split(":")
        if len(parts) == 4:  # {project}:{tenant}:{user}:{session}:{turn}: whose turn it is
            request = dataclasses.replace(request, tenant_id=parts[0], user_id=parts[1])
        hooks = self._hooks(request, run.run_id)
        identity = request.identity

        async def finish(text: str) -> dict[str, Any]:  # what the engine's finish step records
            try:
                await hooks.persist_assistant_message(identity, text)
            except Exception as exc:
                _log.warning("recording turn %s failed: %s", run.run_id, exc)
                return {"text": text, "persisted": False}
            return {"text": text, "persisted": True}

        session_id = request.session_id
        return SweepTarget(
            produce=hooks.produce,
            finish=finish,
            restart_event=lambda attempt: restarted_event(attempt, session_id),
        )

    async def run_turn(self, request: ChatRequest) -> tuple[str, ChatTurnResult]:
        """The turn's execution id and NDJSON body. A turn whose run failed, asked again with
        the same or other input, is restarted as its next attempt (`restart_failed_turn`);
        `DurableRunInputMismatchError` up front when a completed or running turn was asked
        with other input."""
        identity = request.identity
        run_id = self.execution_id(request)
        engine = self._engine(request)
        run = await self.store.load_run(run_id)
        manifest = engine.manifest(identity, request.to_input())
        if run is not None and run.status == "failed":
            session_id = request.session_id
            await restart_failed_turn(
                self.store, run_id, manifest, lambda a: restarted_event(a, session_id)
            )
            run = await self.store.load_run(run_id)  # ours, or a racing request's restart
        if run is not None and run.manifest_hash != manifest.digest:
            shown = self._ref(request).execution_id  # the stored id names tenant and user
            raise DurableRunInputMismatchError(
                f"turn {shown!r} was already asked with other input", run_id=shown
            )
        hooks = self._hooks(request, run_id)
        body = engine.run_turn(
            identity,
            hooks,
            input=manifest.input["input"],
            log=self.log,
            manifest=manifest,
            loaded=run,
        )
        return run_id, body

    async def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]:
        """The records a client that got the log up to `after` still needs (see
        `TurnLogCursor`: its attempt after `after`, every later attempt from its restart
        marker), then live ones until the run ends (or its lease lapses with nothing new: its
        worker died; the next request for the turn resumes it)."""
        cursor = await TurnLogCursor.resume(self.store, run_id, after)
        read = -1
        delay = 0.01
        while True:
            records = await self.store.read_stream_events(run_id, after_seq=read, limit=500)
            for record in records:
                read = record.seq
                if cursor.admit(record):
                    yield record
            if records:
                delay = 0.01
                continue
            run = await self.store.load_run(run_id)
            if run is None:
                return
            if run.status != "running" or (
                run.lease_expires_at is not None and run.lease_expires_at < datetime.now(UTC)
            ):
                if not await self.store.read_stream_events(run_id, after_seq=read, limit=1):
                    return
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.poll_s)

    async def closing(self, run_id: str) -> dict[str, Any]:
        """How a run stands after its log, as a chat line: `session.run.completed`
        `{sessionId, executionId, finalText}`, `session.run.failed` `{sessionId,
        executionId, message, code}` or `session.run.interrupted` (still open)."""
        run = await self.store.load_run(run_id)
        data: dict[str, Any] = {"sessionId": _session_of(run), "executionId": run_id}
        outcome = run.outcome if run is not None and isinstance(run.outcome, dict) else {}
        if run is not None and run.status == "completed":
            text = outcome.get("text")
            finish = outcome.get("finish")
            if isinstance(finish, dict) and isinstance(finish.get("text"), str):
                text = finish["text"]
            return {"type": "session.run.completed", "data": {**data, "finalText": text}}
        if run is not None and run.status == "failed":
            recorded = outcome.get("error")
            error: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
            failed = {**data, "message": str(error.get("message", "the turn failed"))}
            if isinstance(error.get("code"), str):
                failed["code"] = error["code"]
            return {"type": "session.run.failed", "data": failed}
        message = "the worker driving this turn stopped; asking for the turn again resumes it"
        return {"type": "session.run.interrupted", "data": {**data, "message": message}}

    async def drain(self, grace_s: float = 5.0) -> list[str]:
        """Wait up to `grace_s` for turns this worker still drives (clients gone, running
        headless) to end; returns the ids still running (their lease lapses and the next
        request or the orphan sweeper resumes them)."""
        deadline = asyncio.get_running_loop().time() + grace_s
        while True:
            held = [
                r.run_id
                for r in await self.store.list_runs(limit=1000, status="running")
                if r.lease_holder == self.worker_id
            ]
            if not held or asyncio.get_running_loop().time() >= deadline:
                return held
            await asyncio.sleep(0.05)

    async def known(self, run_id: str) -> bool:
        """Whether the store has a run or log entries under this id."""
        if await self.store.load_run(run_id) is not None:
            return True
        return bool(await self.store.read_stream_events(run_id, limit=1))


def _session_of(run: RunRecord | None) -> str | None:
    """The session id a turn's run was started for (from its stored manifest)."""
    manifest = run.manifest if run is not None else None
    data = manifest.get("input") if isinstance(manifest, dict) else None
    identity = data.get("identity") if isinstance(data, dict) else None
    session = identity.get("session_id") if isinstance(identity, dict) else None
    return session if isinstance(session, str) else None
