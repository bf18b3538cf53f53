"""Chat turns as durable runs: one run per turn, its NDJSON lines in the run's stream log.

A turn is driven by a background task, not by the HTTP response: a client that disconnects
(a reloaded page) does not stop it, and any client re-attaches by reading the run's stream log
from a cursor (`tail`). The run id is `derive_execution_id(project, session, turn)`, so a
retried request for a finished turn replays its log instead of calling the model again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from ..backends import AgentExecutionBackend
from ..chat import ChatStreamEvent, ChatTurnIdentity, derive_execution_id, handle_chat_turn
from ..durable import DurableRunManifest, DurableRunStore, StreamEventRecord
from ..errors import AgentRuntimeError, DurableRunLeaseHeldError
from ..types import AgentBackendContext, AgentBackendInput, AgentTaskSpec, ErrorEvent
from ._request import ChatRequest

__all__ = ["TERMINAL_EVENT_TYPES", "TurnRunner"]

TERMINAL_EVENT_TYPES = frozenset(("session.run.completed", "session.run.failed"))
LEASE_MS = 15_000
_log = logging.getLogger("agent_runtime.server")


class _BackendProducer:
    """A `ChatTurnProducer` over a backend: its events as dicts, text deltas collected.
    An error event from the backend fails the turn (handle_chat_turn reports it)."""

    def __init__(self, backend: AgentExecutionBackend, input: AgentBackendInput) -> None:
        self._backend = backend
        self._input = input
        self._parts: list[str] = []
        self._stream = self._run()

    @property
    def stream(self) -> AsyncIterator[ChatStreamEvent]:
        return self._stream

    def final_text(self) -> str:
        return "".join(self._parts)

    async def _run(self) -> AsyncIterator[ChatStreamEvent]:
        ctx = AgentBackendContext(
            cancelled=asyncio.Event(),
            run_id=self._input.run_id,
            session_id=self._input.session_id,
        )
        async for event in self._backend.stream(self._input, ctx):
            if isinstance(event, ErrorEvent):
                raise AgentRuntimeError(event.message, code=event.code)
            data = event.to_dict()
            if data["type"] == "text.delta":
                self._parts.append(data["text"])
            yield data


class _Hooks:
    """The turn's hooks: produce from the backend, keep the final text for the run outcome."""

    def __init__(self, producer: _BackendProducer) -> None:
        self._producer = producer
        self.final_text: str | None = None

    def produce(self) -> _BackendProducer:
        return self._producer

    def persist_assistant_message(self, _identity: ChatTurnIdentity, final_text: str) -> None:
        self.final_text = final_text


class _Signal:
    """Wakes in-process tails as soon as a turn appends; other processes poll."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def current(self, run_id: str) -> asyncio.Event:
        return self._events.setdefault(run_id, asyncio.Event())

    def notify(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()


class TurnRunner:
    """Starts turns as background tasks on `store` and tails their stream logs."""

    def __init__(
        self,
        store: DurableRunStore,
        backend: AgentExecutionBackend,
        *,
        project_id: str = "chat",
        poll_s: float = 0.25,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.project_id = project_id
        self.poll_s = poll_s
        self.lease_ms = lease_ms
        self.worker_id = f"server-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._signal = _Signal()
        self._tasks: set[asyncio.Task[None]] = set()

    def execution_id(self, request: ChatRequest) -> str:
        return derive_execution_id(self.project_id, request.session_id, request.turn_index)

    async def start(self, request: ChatRequest) -> str:
        """Start the turn unless its run exists; return the execution id to tail.
        `DurableRunInputMismatchError` when this turn was already asked with other input."""
        run_id = self.execution_id(request)
        manifest = DurableRunManifest(
            project_id=self.project_id,
            task={"id": "chat.turn", "intent": "chat turn", "domain": "chat"},
            input=request.to_input(),
        )
        try:
            claim = await self.store.start_or_resume(
                run_id, manifest, self.worker_id, lease_ms=self.lease_ms
            )
        except DurableRunLeaseHeldError:
            return run_id  # another request or worker drives it: attach to its log
        if claim.run.status != "running" or claim.lease_expires_at is None:
            return run_id  # finished: replay its log
        epoch = claim.run.lease_epoch
        if await self.store.read_stream_events(run_id, limit=1):
            # a worker died mid-turn; its partial log cannot be continued by a new model call
            await self._interrupted(run_id, epoch)
            return run_id
        task = asyncio.create_task(self._drive(request, run_id, epoch), name=f"turn {run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id

    async def _append(self, run_id: str, seq_hint: int, payload: dict[str, Any]) -> None:
        await self.store.append_stream_event(run_id, f"line-{seq_hint}", payload)
        self._signal.notify(run_id)

    async def _interrupted(self, run_id: str, epoch: int) -> None:
        records = await self.store.read_stream_events(run_id)
        n = len(records)
        if not any(r.payload.get("type") in TERMINAL_EVENT_TYPES for r in records):
            message = "the worker driving this turn stopped before it finished"
            await self._append(
                run_id, n, {"type": "error", "code": "chat.interrupted", "message": message}
            )
            await self._append(run_id, n + 1, {"type": "session.run.failed", "stage": "worker"})
        await self.store.end_run(
            run_id, self.worker_id, "failed", {"error": "interrupted"}, lease_epoch=epoch
        )
        self._signal.notify(run_id)

    async def _heartbeat(self, run_id: str, epoch: int) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            ok = await self.store.renew_lease(
                run_id, self.worker_id, lease_ms=self.lease_ms, lease_epoch=epoch
            )
            if not ok:
                return

    async def _drive(self, request: ChatRequest, run_id: str, epoch: int) -> None:
        identity = ChatTurnIdentity(
            tenant_id=request.tenant_id,
            session_id=request.session_id,
            user_id=request.user_id,
            turn_index=request.turn_index,
        )
        backend_input = AgentBackendInput(
            task=AgentTaskSpec(id=run_id, intent=request.prompt, domain="chat"),
            messages=request.messages,
            run_id=run_id,
            model=request.model,
            session_id=request.session_id,
        )
        hooks = _Hooks(_BackendProducer(self.backend, backend_input))
        heartbeat = asyncio.create_task(self._heartbeat(run_id, epoch))
        status: Literal["completed", "failed"] = "failed"
        try:
            n = 0
            async for line in handle_chat_turn(identity, hooks, log=_log).body:
                payload = orjson.loads(line)
                if str(payload.get("type", "")).startswith("session.run."):
                    payload = {**payload, "execution_id": run_id}
                await self._append(run_id, n, payload)
                n += 1
                if payload.get("type") == "session.run.completed":
                    status = "completed"
            outcome = {"text": hooks.final_text} if status == "completed" else None
            await self.store.end_run(
                run_id,
                self.worker_id,
                status,
                outcome,
                lease_epoch=epoch,
            )
        except Exception:
            _log.exception("chat turn %s could not be recorded", run_id)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self._signal.notify(run_id)

    async def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]:
        """The run's log after `after`, then live entries until the turn ends (a terminal
        event, a finished run, or a lease that lapsed with nothing new)."""
        cursor = after
        while True:
            wake = self._signal.current(run_id)
            records = await self.store.read_stream_events(run_id, after_seq=cursor, limit=500)
            for record in records:
                yield record
                cursor = record.seq
                if isinstance(record.payload, dict) and (
                    record.payload.get("type") in TERMINAL_EVENT_TYPES
                ):
                    return
            if records:
                continue
            run = await self.store.load_run(run_id)
            if run is None:
                return
            if run.status != "running" or (
                run.lease_expires_at is not None and run.lease_expires_at < datetime.now(UTC)
            ):
                if not await self.store.read_stream_events(run_id, after_seq=cursor, limit=1):
                    return
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=self.poll_s)

    async def known(self, run_id: str) -> bool:
        """Whether the store has a run or log entries under this id."""
        if await self.store.load_run(run_id) is not None:
            return True
        return bool(await self.store.read_stream_events(run_id, limit=1))

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Let running turns finish for `grace_s`, then cancel them."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
