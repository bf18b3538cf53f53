"""`run_durable_turn`: one chat turn as a durable run keyed by its execution id.

A fresh turn streams the producer's events live and appends each to the run's stream log
(event id `turn:{position}`, so a retry dedups), then checkpoints the final text as a step. A
completed turn replays as one `turn.replayed` event without calling the producer. A turn whose
run is leased by a live worker is served by tailing the stream log until the run ends; a turn
whose worker died (lease expired) is claimed and resumed: the logged prefix is re-delivered
from the store and only positions past it come from the re-run producer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeAlias

from ..durable._manifest import DurableRunManifest
from ..durable._records import RunRecord, now_ms
from ..durable._run import DurableContext, run_durable
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore
from ..durable._validate import check_id, check_lease_ms
from ..errors import (
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableTurnFailedError,
    DurableValueError,
    InvalidArgumentError,
)
from ._turn import ChatStreamEvent, ChatTurnProducer

__all__ = [
    "FINISH_INTENT",
    "PRODUCE_INTENT",
    "TURN_REPLAYED",
    "DurableTurn",
    "TurnMode",
    "run_durable_turn",
    "turn_event_id",
]

TURN_REPLAYED = "turn.replayed"
"""The one event a completed turn replays as: `{"type": "turn.replayed", "text", "events"}`."""
PRODUCE_INTENT = "chat.turn.produce"
FINISH_INTENT = "chat.turn.finish"

TurnMode: TypeAlias = Literal["fresh", "resumed", "attached", "replayed"]
Produce: TypeAlias = Callable[[], "ChatTurnProducer | Awaitable[ChatTurnProducer]"]
Finish: TypeAlias = Callable[[str], Any]

_log = logging.getLogger("agent_runtime.chat")
# turns whose client went away keep running headless; hold a reference until they end
_HEADLESS: set[asyncio.Task[Any]] = set()


def turn_event_id(position: int) -> str:
    """The stream-log event id of the producer event at `position` (stable across retries)."""
    return f"turn:{position}"


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    value = fn(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


def _check_event(event: Any) -> ChatStreamEvent:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise InvalidArgumentError(
            "producer events must be dicts with a string `type`", path="event"
        )
    return event  # strict JSON is checked by the store when the writer logs it


class DurableTurn:
    """The client-visible events of one durable turn; iterate it once.

    After iteration, `mode` says how the turn was served (`fresh`, `resumed`, `attached` or
    `replayed`), `text` is the checkpointed final text and `finish_result` what the finish
    step returned. If the consumer stops early the turn keeps running headless (unless
    `detach_on_close=False`); `wait()` waits for it.
    """

    def __init__(
        self,
        *,
        store: DurableRunStore,
        run_id: str,
        manifest: DurableRunManifest,
        produce: Produce,
        finish: Finish | None,
        worker_id: str | None,
        lease_ms: int,
        heartbeat_ms: int | None,
        after_seq: int | None,
        batch_size: int,
        poll_ms: int,
        max_poll_ms: int,
        detach_on_close: bool,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.manifest = manifest
        self._produce = produce
        self._finish = finish
        self._worker_id = worker_id
        self._lease_ms = lease_ms
        self._heartbeat_ms = heartbeat_ms
        self._cursor = -1 if after_seq is None else after_seq
        self._batch_size = batch_size
        self._poll = poll_ms / 1000
        self._max_poll = max_poll_ms / 1000
        self._detach_on_close = detach_on_close
        self._iterated = False
        self._task: asyncio.Task[Any] | None = None
        self.mode: TurnMode | None = None
        self.text: str | None = None
        self.events: int | None = None
        self.finish_result: Any = None

    def __aiter__(self) -> AsyncIterator[ChatStreamEvent]:
        if self._iterated:
            raise InvalidArgumentError("a DurableTurn can be iterated once", path="turn")
        self._iterated = True
        return self._serve()

    async def wait(self) -> None:
        """Wait for a turn that went headless (its consumer stopped early) to end."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _done(self, outcome: Any) -> None:
        data = outcome if isinstance(outcome, dict) else {}
        text = data.get("text")
        self.text = text if isinstance(text, str) else ""
        events = data.get("events")
        self.events = events if isinstance(events, int) else None
        self.finish_result = data.get("finish")

    def _replayed_event(self) -> ChatStreamEvent:
        return {"type": TURN_REPLAYED, "text": self.text, "events": self.events}

    async def _load(self) -> RunRecord | None:
        run = await self.store.load_run(self.run_id)
        if run is not None and run.manifest_hash != self.manifest.digest:
            raise DurableRunInputMismatchError(
                f"run {self.run_id!r} was started with another manifest", run_id=self.run_id
            )
        return run

    async def _serve(self) -> AsyncIterator[ChatStreamEvent]:
        run = await self._load()
        if run is not None and run.status == "completed":
            self.mode = "replayed"
            self._done(run.outcome)
            yield self._replayed_event()
            return
        fresh = run is None
        while True:
            if run is not None and _leased_live(run):
                self.mode = "attached"
                async for event in self._tail():
                    yield event
                if self.text is not None:
                    return
            try:
                async for event in self._drive(fresh and self._cursor < 0):
                    yield event
                return
            except _Contended:
                run = await self._load()
                fresh = False

    async def _tail(self) -> AsyncIterator[ChatStreamEvent]:
        """Follow the stream log of a run another worker drives, until it ends or its lease
        lapses (then the caller takes over from the cursor)."""
        delay = self._poll
        while True:
            records = await self.store.read_stream_events(self.run_id, after_seq=self._cursor)
            for rec in records:
                self._cursor = rec.seq
                yield rec.payload
            if records:
                delay = self._poll
                continue
            run = await self._load()
            if run is None:
                return
            if run.status == "completed":
                for rec in await self.store.read_stream_events(self.run_id, after_seq=self._cursor):
                    self._cursor = rec.seq
                    yield rec.payload
                self._done(run.outcome)
                return
            if run.status == "failed":
                error = run.outcome.get("error") if isinstance(run.outcome, dict) else None
                raise DurableTurnFailedError(
                    f"turn {self.run_id!r} failed in another worker",
                    run_id=self.run_id,
                    error=error,
                )
            if not _leased_live(run):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self._max_poll)

    async def _drive(self, fresh: bool) -> AsyncIterator[ChatStreamEvent]:
        """Claim the run and drive it in a task that outlives this consumer, relaying events."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        state = {"detached": False, "started": False}

        def deliver(event: Any, position: int) -> None:
            if position > self._cursor:
                self._cursor = position
                if not state["detached"]:
                    queue.put_nowait(("event", event))

        async def task_fn(ctx: DurableContext) -> Any:
            state["started"] = True
            self.mode = "fresh" if fresh else "resumed"
            if ctx.replaying:  # the producer finished before a crash; its events are logged
                for rec in await self.store.read_stream_events(self.run_id, after_seq=self._cursor):
                    deliver(rec.payload, rec.seq)
            out = await ctx.step(
                PRODUCE_INTENT, lambda: self._produce_step(ctx, deliver), kind="llm"
            )
            text: str = out["text"]
            finish_result = None
            if self._finish is not None:
                finish = self._finish
                finish_result = await ctx.step(FINISH_INTENT, lambda: finish(text), kind="tool")
            return {"text": text, "events": out["events"], "finish": finish_result}

        async def drive() -> None:
            try:
                result = await run_durable(
                    run_id=self.run_id,
                    manifest=self.manifest,
                    store=self.store,
                    task_fn=task_fn,
                    worker_id=self._worker_id,
                    lease_ms=self._lease_ms,
                    heartbeat_ms=self._heartbeat_ms,
                )
            except BaseException as exc:
                queue.put_nowait(("error", exc))
                if not isinstance(exc, Exception):
                    raise
                return
            queue.put_nowait(("done", result))

        task = asyncio.get_running_loop().create_task(drive())
        self._task = task
        _HEADLESS.add(task)
        task.add_done_callback(_HEADLESS.discard)
        task.add_done_callback(_log_headless_failure)
        finished = False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                elif kind == "error":
                    finished = True
                    if isinstance(value, DurableRunLeaseHeldError) and not state["started"]:
                        raise _Contended() from value
                    if isinstance(value, DurableRunLeaseLostError):
                        raise _Contended() from value  # taken over: follow the new driver
                    raise value
                else:
                    finished = True
                    if not state["started"]:
                        self.mode = "replayed"  # completed between our read and the claim
                        self._done(value.result)
                        yield self._replayed_event()
                        return
                    self._done(value.result)
                    return
        finally:
            if not finished:
                state["detached"] = True
                if not self._detach_on_close:
                    task.cancel()

    async def _produce_step(
        self, ctx: DurableContext, deliver: Callable[[Any, int], None]
    ) -> dict[str, Any]:
        """Re-deliver the logged prefix, run the producer, log positions past the prefix in
        batches (a writer task takes whatever has queued up), checkpoint the final text."""
        logged = await self.store.read_stream_events(self.run_id)
        for rec in logged:
            deliver(rec.payload, rec.seq)
        count = len(logged)
        pending: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        writer = asyncio.get_running_loop().create_task(self._write(pending))
        position = 0
        try:
            producer = await _call(self._produce)
            stream = producer.stream
            try:
                async for raw in stream:
                    event = _check_event(raw)
                    if position >= count:
                        pending.put_nowait((turn_event_id(position), event))
                        deliver(event, position)
                    position += 1
                    if writer.done():
                        break  # the store refused a write: stop the producer, report below
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            text = producer.final_text()
            if not isinstance(text, str):
                raise InvalidArgumentError("final_text() must return a string", path="final_text")
        finally:
            pending.put_nowait(None)
            try:
                await writer
            except asyncio.CancelledError:
                writer.cancel()
                raise
        return {"text": text, "events": max(position, count)}

    async def _write(self, pending: asyncio.Queue[tuple[str, Any] | None]) -> None:
        while True:
            item = await pending.get()
            if item is None:
                return
            batch = [item]
            end = False
            while len(batch) < self._batch_size and not pending.empty():
                nxt = pending.get_nowait()
                if nxt is None:
                    end = True
                    break
                batch.append(nxt)
            await self.store.append_stream_events(self.run_id, batch)
            if end:
                return


class _Contended(Exception):
    """Another worker claimed the run between our read and our claim, or took it over from
    us: follow its log from our cursor instead."""


def _leased_live(run: RunRecord) -> bool:
    """Another driver holds a live lease: follow its log. This holds for a driver under our own
    worker id too (a second request to the same host): claiming again would fence it."""
    if run.status != "running" or run.lease_expires_at is None:
        return False
    return run.lease_expires_at.timestamp() * 1000 > now_ms()


def _log_headless_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.debug("durable turn task ended with %r", task.exception())


def run_durable_turn(
    store: DurableRunStore,
    run_id: str,
    manifest: DurableRunManifest,
    produce: Produce,
    *,
    finish: Finish | None = None,
    worker_id: str | None = None,
    lease_ms: int = DEFAULT_LEASE_MS,
    heartbeat_ms: int | None = None,
    after_seq: int | None = None,
    batch_size: int = 64,
    poll_ms: int = 10,
    max_poll_ms: int = 200,
    detach_on_close: bool = True,
) -> DurableTurn:
    """Serve the turn `run_id` durably: fresh, resumed, attached to a live worker, or replayed.

    `produce()` returns a `ChatTurnProducer` (called only when this worker drives the run).
    `finish(text)`, when given, runs as a second durable step after the text is checkpointed
    (the engine persists the assistant message there); its JSON result is `finish_result`.
    `after_seq` skips positions a reconnecting client already saw. Bad arguments raise
    `DurableValueError` here, before anything is read or written.
    """
    check_id(run_id, "run_id")
    check_lease_ms(lease_ms)
    if not isinstance(manifest, DurableRunManifest):
        raise DurableValueError("manifest must be a DurableRunManifest", path="manifest")
    if not isinstance(store, DurableRunStore):
        raise DurableValueError("store must be a DurableRunStore", path="store")
    if not callable(produce):
        raise DurableValueError("produce must be callable", path="produce")
    if finish is not None and not callable(finish):
        raise DurableValueError("finish must be callable or None", path="finish")
    if worker_id is not None:
        check_id(worker_id, "worker_id")
    if after_seq is not None and (type(after_seq) is not int or after_seq < -1):
        raise DurableValueError("after_seq must be an int >= -1 or None", path="after_seq")
    for name, value in (("batch_size", batch_size), ("poll_ms", poll_ms)):
        if type(value) is not int or value < 1:
            raise DurableValueError(f"{name} must be an int >= 1", path=name)
    if type(max_poll_ms) is not int or max_poll_ms < poll_ms:
        raise DurableValueError("max_poll_ms must be an int >= poll_ms", path="max_poll_ms")
    return DurableTurn(
        store=store,
        run_id=run_id,
        manifest=manifest,
        produce=produce,
        finish=finish,
        worker_id=worker_id,
        lease_ms=lease_ms,
        heartbeat_ms=heartbeat_ms,
        after_seq=after_seq,
        batch_size=batch_size,
        poll_ms=poll_ms,
        max_poll_ms=max_poll_ms,
        detach_on_close=detach_on_close,
    )
