"""`DurableChatTurnEngine`: `handle_chat_turn` on top of `run_durable_turn`.

The turn is a durable run keyed by `derive_execution_id(project, session, turn)`. Its step is
the producer's final text; the persisted assistant message (after `transform_final_text`) is
recorded with the run's end, so a crash between the LLM finishing and the persist loses nothing
and a retried or replayed turn never persists twice. The lines are `handle_chat_turn`'s, with
`session.run.completed` `{sessionId, replayed}`, a replay as one `result` line, and a
`session.run.restarted` line before a re-run attempt that answers differently.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import EllipsisType
from typing import Any

from ..durable._manifest import DurableRunManifest
from ..durable._records import RunRecord
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore, is_durable_store
from ..durable._validate import check_id, check_lease_ms, error_to_dict
from ..errors import DurableValueError
from ..jsoncanon import ensure_json
from ._durable_turn import DurableTurn, restarted_event, run_durable_turn
from ._turn import (
    ChatStreamEvent,
    ChatTurnHooks,
    ChatTurnIdentity,
    ChatTurnLog,
    ChatTurnResult,
    PersistErrors,
    TurnFrame,
    WaitUntil,
    _call,
    _optional,
    _safe_log,
    as_log,
    check_turn_arguments,
    derive_execution_id,
    error_message,
    turn_body,
)

__all__ = ["CHAT_TURN_TASK", "DurableChatTurnEngine"]

CHAT_TURN_TASK = {"id": "chat.turn", "intent": "answer one chat turn", "domain": "chat"}


class _StageError(Exception):
    """A transform or persist failure inside the durable finish step, reported by the
    wrapper hooks at its own stage once the turn's stream has drained."""

    def __init__(self, cause: Exception, stage: str) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.stage = stage

    def to_dict(self) -> dict[str, Any]:
        return error_to_dict(self.cause)


class _DurableProducer:
    def __init__(self, turn: DurableTurn, owner: _DurableHooks) -> None:
        self._turn = turn
        self._owner = owner

    @property
    def stream(self) -> AsyncIterator[ChatStreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ChatStreamEvent]:
        try:
            async for event in self._turn:
                yield event
        except _StageError as exc:
            self._owner.failure = exc

    def final_text(self) -> str:
        finished = self._turn.finish_result
        if isinstance(finished, dict) and isinstance(finished.get("text"), str):
            return str(finished["text"])
        return self._turn.text or ""


class _DurableHooks:
    """The hooks `handle_chat_turn` runs: produce, transform and persist go through the
    durable run (they report a failure of the finish step at its stage); the product's
    observers (`on_event`, `on_turn_complete`, `trace_flush`) pass through."""

    def __init__(self, hooks: Any, turn: DurableTurn) -> None:
        self.turn = turn
        self.failure: _StageError | None = None
        self.on_event = _optional(hooks, "on_event")
        self.on_turn_complete = _optional(hooks, "on_turn_complete")
        self.trace_flush = _optional(hooks, "trace_flush")

    def produce(self) -> _DurableProducer:
        return _DurableProducer(self.turn, self)

    def _raise_at(self, stage: str) -> None:
        if self.failure is not None and self.failure.stage == stage:
            raise self.failure.cause

    def transform_final_text(self, text: str) -> str:
        self._raise_at("transform")  # applied (durably) inside the run
        return text

    def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        self._raise_at("persist")  # attempted (durably) inside the run


def _manifest_input(identity: ChatTurnIdentity, input: Any) -> dict[str, Any]:
    who = {
        "tenant_id": identity.tenant_id,
        "session_id": identity.session_id,
        "user_id": identity.user_id,
        "turn_index": identity.turn_index,
    }
    return {"identity": who, "input": input}


class DurableChatTurnEngine:
    """Serves chat turns durably: `run_turn` answers like `handle_chat_turn`, but a retried
    turn re-attaches, resumes or replays instead of calling the model again."""

    def __init__(
        self,
        store: DurableRunStore,
        project_id: str = "chat",
        *,
        worker_id: str | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        heartbeat_ms: int | None = None,
        detach_on_close: bool = True,
    ) -> None:
        if not is_durable_store(store):
            raise DurableValueError("store must be a DurableRunStore", path="store")
        check_id(project_id, "project_id")
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        check_lease_ms(lease_ms)
        self.store = store
        self.project_id = project_id
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.heartbeat_ms = heartbeat_ms
        self.detach_on_close = detach_on_close

    def execution_id(self, identity: ChatTurnIdentity) -> str:
        """The run id of a turn: `derive_execution_id(project, session, turn)`."""
        return derive_execution_id(self.project_id, identity.session_id, identity.turn_index)

    def manifest(self, identity: ChatTurnIdentity, input: Any = None) -> DurableRunManifest:
        """What the turn's run is started with; the same turn retried must match it."""
        return DurableRunManifest(self.project_id, CHAT_TURN_TASK, _manifest_input(identity, input))

    def _is_manifest(self, manifest: object, identity: ChatTurnIdentity, input: Any) -> bool:
        """Whether `manifest` is `manifest(identity, input)`, compared without hashing."""
        return (
            isinstance(manifest, DurableRunManifest)
            and manifest.project_id == self.project_id
            and manifest.scenario_id is None
            and manifest.task == CHAT_TURN_TASK
            and manifest.input == _manifest_input(identity, input)
        )

    def run_turn(
        self,
        identity: ChatTurnIdentity,
        hooks: ChatTurnHooks,
        *,
        input: Any = None,
        after_seq: int | None = None,
        wait_until: WaitUntil | None = None,
        log: ChatTurnLog | logging.Logger | None = None,
        persist_errors: PersistErrors = "swallow",
        manifest: DurableRunManifest | None = None,
        loaded: RunRecord | EllipsisType | None = ...,
    ) -> ChatTurnResult:
        """One durable turn as an NDJSON body (see `handle_chat_turn`). `input` (JSON, e.g.
        the user's message) enters the run's manifest: a retry with other input is refused.
        A caller that already built `manifest(identity, input)` and read the run (`loaded`,
        None when there was none) passes them, so neither is done twice per turn.
        Bad arguments raise `InvalidArgumentError` (or `DurableValueError`) here."""
        check_turn_arguments(identity, hooks, wait_until, persist_errors)
        if manifest is None:
            ensure_json(input, root="input")
            manifest = self.manifest(identity, input)
        elif not self._is_manifest(manifest, identity, input):
            raise DurableValueError(
                "manifest must be this engine's manifest(identity, input)", path="manifest"
            )
        turn_log = as_log(log)
        transform = _optional(hooks, "transform_final_text")
        persist = hooks.persist_assistant_message

        async def finish(text: str) -> dict[str, Any]:
            if transform is not None:
                try:
                    text = await _call(transform, text)
                    if not isinstance(text, str):
                        raise DurableValueError(
                            "transform_final_text must return a string",
                            path="transform_final_text",
                        )
                except Exception as exc:
                    raise _StageError(exc, "transform") from exc
            try:
                await _call(persist, identity, text)
            except Exception as exc:
                if persist_errors == "fail":
                    raise _StageError(exc, "persist") from exc
                _safe_log(
                    turn_log,
                    "[chat-engine] persistAssistantMessage threw",
                    {"error": error_message(exc)},
                )
                return {"text": text, "persisted": False}
            return {"text": text, "persisted": True}

        session_id = identity.session_id
        turn = run_durable_turn(
            self.store,
            self.execution_id(identity),
            manifest,
            hooks.produce,
            finish=finish,
            restart_event=lambda attempt: restarted_event(attempt, session_id),
            worker_id=self.worker_id,
            lease_ms=self.lease_ms,
            heartbeat_ms=self.heartbeat_ms,
            after_seq=after_seq,
            detach_on_close=self.detach_on_close,
            loaded=loaded,
        )
        frame = TurnFrame(
            completed=lambda: {"replayed": turn.mode == "replayed"},
            announce=lambda: turn.mode != "replayed",
        )
        wrapped = _DurableHooks(hooks, turn)
        body = turn_body(identity, wrapped, wait_until, turn_log, persist_errors, frame)
        return ChatTurnResult(body=body)
