"""`DurableChatTurnEngine`: `handle_chat_turn` on top of `run_durable_turn`.

The turn is a durable run keyed by `derive_execution_id(project, session, turn)`. Its two steps
are the producer's final text and the persisted assistant message (after
`transform_final_text`), so a crash between the LLM finishing and the persist loses nothing
and a retried or replayed turn never persists twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..durable._manifest import DurableRunManifest
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore
from ..durable._validate import check_id, check_lease_ms, error_to_dict
from ..errors import DurableValueError, InvalidArgumentError
from ..jsoncanon import ensure_json
from ._durable_turn import DurableTurn, run_durable_turn
from ._turn import (
    ChatStreamEvent,
    ChatTurnHooks,
    ChatTurnIdentity,
    ChatTurnResult,
    WaitUntil,
    _call,
    _optional,
    derive_execution_id,
    handle_chat_turn,
)

__all__ = ["CHAT_TURN_TASK", "DurableChatTurnEngine"]

CHAT_TURN_TASK = {"id": "chat.turn", "intent": "answer one chat turn", "domain": "chat"}


class _PersistError(Exception):
    """A persist failure inside the durable finish step, reported at the `persist` stage."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause

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
        except _PersistError as exc:
            self._owner.persist_error = exc.cause

    def final_text(self) -> str:
        finished = self._turn.finish_result
        if isinstance(finished, dict) and isinstance(finished.get("text"), str):
            return str(finished["text"])
        return self._turn.text or ""


class _DurableHooks:
    """The hooks `handle_chat_turn` sees: produce and persist go through the durable run;
    the product's observers (`on_event`, `on_turn_complete`, `trace_flush`) pass through."""

    def __init__(self, hooks: Any, turn_factory: Any) -> None:
        self._hooks = hooks
        self._turn_factory = turn_factory
        self.turn: DurableTurn | None = None
        self.persist_error: BaseException | None = None
        self.on_event = _optional(hooks, "on_event")
        self.trace_flush = _optional(hooks, "trace_flush")

    def produce(self) -> _DurableProducer:
        self.turn = self._turn_factory()
        return _DurableProducer(self.turn, self)

    async def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        if self.persist_error is not None:
            raise self.persist_error  # already attempted (durably) inside the run

    async def on_turn_complete(self, identity: ChatTurnIdentity, text: str) -> None:
        complete = _optional(self._hooks, "on_turn_complete")
        if complete is not None and (self.turn is None or self.turn.mode != "replayed"):
            await _call(complete, identity, text)


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
        if not isinstance(store, DurableRunStore):
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
        return DurableRunManifest(
            self.project_id, CHAT_TURN_TASK, {"identity": identity.to_dict(), "input": input}
        )

    def run_turn(
        self,
        identity: ChatTurnIdentity,
        hooks: ChatTurnHooks,
        *,
        input: Any = None,
        after_seq: int | None = None,
        wait_until: WaitUntil | None = None,
        log: logging.Logger | None = None,
    ) -> ChatTurnResult:
        """One durable turn as an NDJSON body (see `handle_chat_turn`). `input` (JSON, e.g.
        the user's message) enters the run's manifest: a retry with other input is refused.
        A bad identity or input raises `InvalidArgumentError` here."""
        if not isinstance(identity, ChatTurnIdentity):
            raise InvalidArgumentError("identity must be a ChatTurnIdentity", path="identity")
        ensure_json(input, root="input")
        run_id = self.execution_id(identity)
        manifest = self.manifest(identity, input)
        transform = _optional(hooks, "transform_final_text")

        async def finish(text: str) -> dict[str, Any]:
            try:
                if transform is not None:
                    text = await _call(transform, text)
                    if not isinstance(text, str):
                        raise InvalidArgumentError(
                            "transform_final_text must return a string",
                            path="transform_final_text",
                        )
                await _call(hooks.persist_assistant_message, identity, text)
            except Exception as exc:
                raise _PersistError(exc) from exc
            return {"text": text}

        def turn_factory() -> DurableTurn:
            return run_durable_turn(
                self.store,
                run_id,
                manifest,
                hooks.produce,
                finish=finish,
                worker_id=self.worker_id,
                lease_ms=self.lease_ms,
                heartbeat_ms=self.heartbeat_ms,
                after_seq=after_seq,
                detach_on_close=self.detach_on_close,
            )

        wrapped = _DurableHooks(hooks, turn_factory)
        return handle_chat_turn(identity, wrapped, wait_until=wait_until, log=log)
