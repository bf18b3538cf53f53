"""`run_durable_turn`: one chat turn as a durable run keyed by its execution id.

A fresh turn appends each producer event to the run's stream log and hands it to the client
once it is logged (a writer task commits the events gathered in a few milliseconds, or while
its previous append was in flight, in one transaction; see `AppendBatcher`), then
checkpoints the final text as a step. A completed turn replays as one `result` event without
calling the producer. A turn whose run is leased by a live worker is served by tailing the
log until the run ends. A turn whose worker died is claimed and re-run: while the new
producer repeats the logged events the client just continues; once it answers differently the
log gets a restart marker and the new attempt's events from its first one (see `_turn_log`),
so a client that drops its partial text at the marker ends with the stored text.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from operator import attrgetter, itemgetter
from types import EllipsisType
from typing import Any, Generic, Literal, NamedTuple, TypeAlias, TypeVar

import orjson

from .._aio import wake
from ..durable._manifest import DurableRunManifest
from ..durable._records import RunRecord, StreamEventRecord, now_ms
from ..durable._run import DurableContext, run_durable
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore, is_durable_store
from ..durable._validate import check_id, check_lease_ms
from ..errors import (
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableTurnFailedError,
    DurableValueError,
    InvalidArgumentError,
)
from ..jsoncanon import dumps_json, loads_json
from ._batcher import AppendBatcher
from ._turn import ChatStreamEvent, ChatTurnProducer
from ._turn_log import (
    TurnLogCursor,
    parse_turn_event_id,
    turn_event_id,
    turn_event_ids,
    turn_restart_id,
)

__all__ = [
    "FINISH_INTENT",
    "PRODUCE_INTENT",
    "DurableTurn",
    "TurnMode",
    "restarted_event",
    "result_event",
    "run_durable_turn",
]

PRODUCE_INTENT = "chat.turn.produce"
FINISH_INTENT = "chat.turn.finish"  # the finish step of runs recorded with one (replayed as such)

TurnMode: TypeAlias = Literal["fresh", "resumed", "attached", "replayed"]
Produce: TypeAlias = Callable[[], "ChatTurnProducer | Awaitable[ChatTurnProducer]"]
Finish: TypeAlias = Callable[[str], Any]
ReplayEvent: TypeAlias = Callable[[str], ChatStreamEvent]
RestartEvent: TypeAlias = Callable[[int], ChatStreamEvent]

_log = logging.getLogger("agent_runtime.chat")
_payload = attrgetter("payload")
# turns whose client went away keep running headless; hold a reference until they end
_HEADLESS: set[asyncio.Task[Any]] = set()


def result_event(final_text: str) -> ChatStreamEvent:
    """The one event a completed turn replays as: `{"type": "result", "data": {"finalText"}}`."""
    return {"type": "result", "data": {"finalText": final_text}}


def restarted_event(attempt: int, session_id: str | None = None) -> ChatStreamEvent:
    """The marker before a re-run attempt's events: `{"type": "session.run.restarted",
    "data": {"sessionId", "attempt"}}` (`sessionId` only when given)."""
    data: dict[str, Any] = {} if session_id is None else {"sessionId": session_id}
    data["attempt"] = attempt
    return {"type": "session.run.restarted", "data": data}


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


def _same(event: ChatStreamEvent, logged: Any) -> bool:
    """Whether a re-run's event is the logged one (compared as stored: its JSON round trip)."""
    return bool(loads_json(dumps_json(event, root="event")) == logged)


Deliver: TypeAlias = Callable[[Sequence[StreamEventRecord], bool], None]
"""Hands the client log records, in log order, once they are committed; the flag says every
record is a new event of the first attempt, in consecutive seqs (the common case, in bulk)."""


class _Batching(NamedTuple):
    """How a turn's events are gathered into appends: at most `size` events or `bytes` of
    JSON per batch, gathered for at most `delay_s` after the first (see `AppendBatcher`)."""

    size: int
    bytes: int
    delay_s: float


def _encoded_size(event: ChatStreamEvent) -> int:
    """An event's JSON size, for the batch byte limit (the store refuses what is not JSON)."""
    try:
        return len(orjson.dumps(event))
    except (TypeError, orjson.JSONEncodeError):
        return 0


class _TurnWriter:
    """Logs one attempt of the producer in batches (`AppendBatcher`) and delivers each record
    once its batch is committed.

    Resuming over a logged attempt, events equal to the logged ones at the same positions are
    neither logged nor delivered again (the client has them from the log); the first event
    that differs, an attempt that ends shorter, or a position another writer logged with
    other content starts a new attempt: its marker, then every event of this run from 0.
    """

    def __init__(
        self,
        store: DurableRunStore,
        run_id: str,
        *,
        attempt: int,
        logged: list[Any],
        deliver: Deliver,
        batching: _Batching,
        restart_payload: RestartEvent,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self.attempt = attempt
        self._logged = logged
        self._matching = bool(logged)
        self._deliver = deliver
        self._restart_payload = restart_payload
        self.events: list[ChatStreamEvent] = []
        self.batcher: AppendBatcher[ChatStreamEvent] = AppendBatcher(
            self._flush,
            max_items=batching.size,
            max_bytes=batching.bytes,
            max_delay_s=batching.delay_s,
            size=_encoded_size,
        )

    @property
    def failed(self) -> bool:
        """The store refused a write (the producer should stop; `close` raises the error)."""
        return self.batcher.failed

    async def close(self, complete: bool) -> None:
        """Log what is queued and wait for it; `complete` says the attempt ended normally (an
        attempt shorter than the logged one then restarts). Raises a refused write's error."""
        await self.batcher.close(complete)

    def cancel(self) -> None:
        """Stop at once, logging nothing more: nothing unlogged has been delivered."""
        self.batcher.cancel()

    def _restart(self) -> list[tuple[str, Any]]:
        self._matching = False
        self.attempt += 1
        items: list[tuple[str, Any]] = [
            (turn_restart_id(self.attempt), self._restart_payload(self.attempt))
        ]
        items += [(turn_event_id(i, self.attempt), e) for i, e in enumerate(self.events)]
        return items

    def _plan(self, event: ChatStreamEvent) -> list[tuple[str, Any]]:
        position = len(self.events)
        self.events.append(event)
        if self._matching and position == len(self._logged):
            self._matching = False  # the re-run repeated the whole logged attempt: go on
        if not self._matching:
            return [(turn_event_id(position, self.attempt), event)]
        if _same(event, self._logged[position]):
            return []
        return self._restart()

    async def _flush(self, events: list[ChatStreamEvent], end: bool | None) -> None:
        batch: list[tuple[str, Any]] = []
        done = 0
        while self._matching and done < len(events):
            batch += self._plan(events[done])
            done += 1
        if done < len(events):  # the common case: every event new, in order
            rest = events[done:] if done else events
            start = len(self.events)
            self.events += rest
            batch += zip(turn_event_ids(start, start + len(rest), self.attempt), rest, strict=True)
        if end and self._matching and len(self.events) < len(self._logged):
            batch += self._restart()  # the re-run said less than the logged attempt
        await self._append(batch)

    async def _append(self, batch: Sequence[tuple[str, Any]]) -> None:
        if not batch:
            return
        results = await self._store.append_stream_events(self._run_id, batch)
        records = list(map(itemgetter(1), results))
        if all(map(itemgetter(0), results)):  # every event new: the common case
            self._deliver(records, self.attempt == 1)
            return
        conflict = False
        for (_event_id, payload), res in zip(batch, results, strict=True):
            if not res.accepted and not _same(payload, res.record.payload):
                conflict = True  # a fenced writer logged this position first, differently
        self._deliver(records, False)
        if conflict:
            await self._append(self._restart())


T = TypeVar("T")


class _Mailbox(Generic[T]):
    """An unbounded single-consumer queue, cheaper than `asyncio.Queue` on the per-event path
    (one append, and a wake-up only when the consumer waits)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        wake(self._waiter)

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class DurableTurn:
    """The client-visible events of one durable turn; iterate it once.

    After iteration, `mode` says how the turn was served (`fresh`, `resumed`, `attached` or
    `replayed`), `text` is the checkpointed final text, `attempt` the attempt the client
    ended on (1 unless the turn was re-run and answered differently) and `finish_result`
    what the finish step returned. If the consumer stops early the turn keeps running
    headless (unless `detach_on_close=False`); `wait()` waits for it.
    """

    def __init__(
        self,
        *,
        store: DurableRunStore,
        run_id: str,
        manifest: DurableRunManifest,
        produce: Produce,
        finish: Finish | None,
        replay_event: ReplayEvent,
        restart_event: RestartEvent | None,
        worker_id: str | None,
        lease_ms: int,
        heartbeat_ms: int | None,
        after_seq: int | None,
        batching: _Batching,
        poll_ms: int,
        max_poll_ms: int,
        detach_on_close: bool,
        loaded: RunRecord | EllipsisType | None = ...,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.manifest = manifest
        self._loaded = loaded  # the run as the caller just read it (`...`: not read yet)
        self._produce = produce
        self._finish = finish
        self._replay_event = replay_event
        self._restart_event = restart_event
        self._worker_id = worker_id
        self._lease_ms = lease_ms
        self._heartbeat_ms = heartbeat_ms
        self._after_seq = after_seq
        self._cursor = TurnLogCursor()
        self._read_seq = -1  # how far the tail has read the log
        self._batching = batching
        self._poll = poll_ms / 1000
        self._max_poll = max_poll_ms / 1000
        self._detach_on_close = detach_on_close
        self._iterated = False
        self._task: asyncio.Task[Any] | None = None
        self.mode: TurnMode | None = None
        self.text: str | None = None
        self.events: int | None = None
        self.finish_result: Any = None

    @property
    def attempt(self) -> int:
        """The attempt of the turn the client follows (a restart marker moves it on)."""
        return self._cursor.attempt

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

    def _restart_payload(self, attempt: int) -> ChatStreamEvent:
        if self._restart_event is None:
            return restarted_event(attempt)
        return _check_event(self._restart_event(attempt))

    def _admit(self, record: StreamEventRecord) -> ChatStreamEvent | None:
        """The payload to hand the client for a log record, or None (seen, superseded, or a
        restart marker of a turn that does not announce restarts)."""
        if not self._cursor.admit(record):
            return None
        if self._restart_event is None and record.event_id.endswith(":restart"):
            return None
        payload: ChatStreamEvent = record.payload
        return payload

    def _admit_all(
        self, records: Sequence[StreamEventRecord], plain: bool
    ) -> list[ChatStreamEvent]:
        """The payloads to hand the client for log records, in order (see `_admit`); `plain`
        records (new first-attempt events, consecutive seqs) are admitted as a range."""
        n = len(records)
        if plain and n and records[-1].seq - records[0].seq == n - 1:
            cursor = self._cursor
            skip = cursor.seq - records[0].seq + 1  # at or before the cursor: seen
            if cursor.attempt != 1 or skip >= n:
                return []  # a client on a later attempt takes none of the first's
            cursor.seq = records[-1].seq
            return list(map(_payload, records[skip:] if skip > 0 else records))
        out = []
        for record in records:
            payload = self._admit(record)
            if payload is not None:
                out.append(payload)
        return out

    async def _load(self) -> RunRecord | None:
        loaded, self._loaded = self._loaded, ...
        run = await self.store.load_run(self.run_id) if loaded is ... else loaded
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
            yield self._replay_event(self.text or "")
            return
        fresh = run is None
        if not fresh:
            self._cursor = await TurnLogCursor.resume(self.store, self.run_id, self._after_seq)
        while True:
            if run is not None and _leased_live(run):
                self.mode = "attached"
                async for event in self._tail():
                    yield event
                if self.text is not None:
                    return
            try:
                async for event in self._drive(fresh and self._after_seq is None):
                    yield event
                return
            except _Contended:
                run = await self._load()
                fresh = False

    async def _read_new(self) -> tuple[bool, list[ChatStreamEvent]]:
        """Read the log past what was read; returns whether anything was read, and the
        payloads the client needs of it."""
        records = await self.store.read_stream_events(self.run_id, after_seq=self._read_seq)
        out = []
        for rec in records:
            self._read_seq = rec.seq
            payload = self._admit(rec)
            if payload is not None:
                out.append(payload)
        return bool(records), out

    async def _tail(self) -> AsyncIterator[ChatStreamEvent]:
        """Follow the stream log of a run another worker drives, until it ends or its lease
        lapses (then the caller takes over from the cursor)."""
        delay = self._poll
        while True:
            read, new = await self._read_new()
            for payload in new:
                yield payload
            if read:
                delay = self._poll
                continue
            run = await self._load()
            if run is None:
                return
            if run.status == "completed":
                for payload in (await self._read_new())[1]:
                    yield payload
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
        queue: _Mailbox[tuple[str, Any]] = _Mailbox()
        state = {"detached": False, "started": False}

        def deliver(records: Sequence[StreamEventRecord], plain: bool) -> None:
            payloads = self._admit_all(records, plain)
            if payloads and not state["detached"]:
                queue.put(("events", payloads))

        async def task_fn(ctx: DurableContext) -> Any:
            state["started"] = True
            self.mode = "fresh" if fresh else "resumed"
            if ctx.replaying:  # the producer finished before a crash; its events are logged
                deliver(await self.store.read_stream_events(self.run_id), False)
            out = await ctx.step(PRODUCE_INTENT, lambda: self._produce_step(deliver), kind="llm")
            text: str = out["text"]
            finish_result = None
            if self._finish is not None:
                finish = self._finish
                if ctx.replaying:  # a run that recorded its finish as a step of its own
                    finish_result = await ctx.step(FINISH_INTENT, lambda: finish(text), kind="tool")
                else:  # recorded with the run's end, in the same write
                    finish_result = await _call(finish, text)
            return {
                "text": text,
                "events": out["events"],
                "attempt": out.get("attempt", 1),
                "finish": finish_result,
            }

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
                queue.put(("error", exc))
                if not isinstance(exc, Exception):
                    raise
                return
            queue.put(("done", result))

        task = asyncio.get_running_loop().create_task(drive())
        self._task = task
        _HEADLESS.add(task)
        task.add_done_callback(_HEADLESS.discard)
        task.add_done_callback(_log_headless_failure)
        finished = False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "events":
                    for payload in value:
                        yield payload
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
                        yield self._replay_event(self.text or "")
                        return
                    self._done(value.result)
                    return
        finally:
            if not finished:
                state["detached"] = True
                if not self._detach_on_close:
                    task.cancel()

    async def _produce_step(self, deliver: Deliver) -> dict[str, Any]:
        """Re-deliver the log, run the producer, log each event (restarting the attempt when
        it departs from the logged one) and checkpoint the final text."""
        logged = await self.store.read_stream_events(self.run_id)
        attempt = 1
        current: list[Any] = []
        deliver(logged, False)
        for rec in logged:
            rec_attempt, restart = parse_turn_event_id(rec.event_id)
            if restart and rec_attempt > attempt:
                attempt, current = rec_attempt, []
            elif rec_attempt == attempt and not restart:
                current.append(rec.payload)
        writer = _TurnWriter(
            self.store,
            self.run_id,
            attempt=attempt,
            logged=current,
            deliver=deliver,
            batching=self._batching,
            restart_payload=self._restart_payload,
        )
        try:
            producer = await _call(self._produce)
            # in a task of its own, each event resumes the pump alone, not every frame of the
            # run's step; cancelling this step cancels the pump (and so closes the producer)
            await asyncio.get_running_loop().create_task(_pump(producer.stream, writer.batcher))
            text = producer.final_text()
            if not isinstance(text, str):
                raise InvalidArgumentError("final_text() must return a string", path="final_text")
        except asyncio.CancelledError:
            writer.cancel()  # fenced or cancelled: log nothing more (nobody has seen it)
            raise
        except Exception:
            await writer.close(complete=False)  # what the attempt said before it failed
            raise
        await writer.close(complete=True)
        return {"text": text, "events": len(writer.events), "attempt": writer.attempt}


async def _pump(stream: AsyncIterator[Any], batcher: AppendBatcher[ChatStreamEvent]) -> None:
    """Push the producer's events to the batcher until it ends or the store refuses a write
    (then the producer is stopped: the step reports the refusal); the producer is closed."""
    push, room = batcher.push, batcher.room
    try:
        async for raw in stream:
            if push(_check_event(raw)):  # the pending batch is full: the store is behind
                await room()
            if batcher.failed:
                break
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


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
    replay_event: ReplayEvent = result_event,
    restart_event: RestartEvent | None = None,
    worker_id: str | None = None,
    lease_ms: int = DEFAULT_LEASE_MS,
    heartbeat_ms: int | None = None,
    after_seq: int | None = None,
    batch_size: int = 256,
    batch_bytes: int = 256 * 1024,
    batch_delay_ms: float = 2.0,
    poll_ms: int = 10,
    max_poll_ms: int = 200,
    detach_on_close: bool = True,
    loaded: RunRecord | EllipsisType | None = ...,
) -> DurableTurn:
    """Serve the turn `run_id` durably: fresh, resumed, attached to a live worker, or replayed.

    `produce()` returns a `ChatTurnProducer` (called only when this worker drives the run).
    `finish(text)`, when given, runs once the text is checkpointed (the engine persists the
    assistant message there); its JSON result, `finish_result`, is recorded in the run's
    outcome by the write that ends the run, so a completed turn never finishes twice and a
    turn that crashed before its end finishes again (as a step of its own would).
    A completed turn yields only `replay_event(text)` (default: `result_event`). A re-run
    that answers differently from the logged attempt is logged after a restart marker,
    `restart_event(attempt)`; with `restart_event` given the marker is also yielded, without
    it the turn yields only the new attempt's events (`attempt` says which).
    Events are logged in batches and reach the client once their batch is committed: what
    the producer yields while the previous append is in flight, or within `batch_delay_ms` of
    the first pending event, up to `batch_size` events or `batch_bytes` of JSON (a producer
    faster than the store then waits); the turn's end flushes what is pending at once.
    `after_seq` (a log `seq`) skips what a reconnecting client already got. `loaded` is the
    run as the caller just read it (None: there was none), so the turn starts without reading
    it again; the claim settles any race since. Bad arguments raise `DurableValueError` here,
    before anything is read or written.
    """
    check_id(run_id, "run_id")
    check_lease_ms(lease_ms)
    if not isinstance(manifest, DurableRunManifest):
        raise DurableValueError("manifest must be a DurableRunManifest", path="manifest")
    if not is_durable_store(store):
        raise DurableValueError("store must be a DurableRunStore", path="store")
    required: tuple[tuple[str, object], ...] = (
        ("produce", produce),
        ("replay_event", replay_event),
    )
    for name, fn in required:
        if not callable(fn):
            raise DurableValueError(f"{name} must be callable", path=name)
    optional: tuple[tuple[str, object], ...] = (
        ("finish", finish),
        ("restart_event", restart_event),
    )
    for name, fn in optional:
        if fn is not None and not callable(fn):
            raise DurableValueError(f"{name} must be callable or None", path=name)
    if worker_id is not None:
        check_id(worker_id, "worker_id")
    if after_seq is not None and (type(after_seq) is not int or after_seq < -1):
        raise DurableValueError("after_seq must be an int >= -1 or None", path="after_seq")
    for name, value in (
        ("batch_size", batch_size),
        ("batch_bytes", batch_bytes),
        ("poll_ms", poll_ms),
    ):
        if type(value) is not int or value < 1:
            raise DurableValueError(f"{name} must be an int >= 1", path=name)
    if type(batch_delay_ms) not in (int, float) or not 0 <= batch_delay_ms <= 1000:
        raise DurableValueError(
            "batch_delay_ms must be a number of milliseconds in [0, 1000]", path="batch_delay_ms"
        )
    if type(max_poll_ms) is not int or max_poll_ms < poll_ms:
        raise DurableValueError("max_poll_ms must be an int >= poll_ms", path="max_poll_ms")
    if (
        loaded is not ...
        and loaded is not None
        and (not isinstance(loaded, RunRecord) or loaded.run_id != run_id)
    ):
        raise DurableValueError("loaded must be the RunRecord of run_id", path="loaded")
    return DurableTurn(
        store=store,
        run_id=run_id,
        manifest=manifest,
        produce=produce,
        finish=finish,
        replay_event=replay_event,
        restart_event=restart_event,
        worker_id=worker_id,
        lease_ms=lease_ms,
        heartbeat_ms=heartbeat_ms,
        after_seq=None if after_seq == -1 else after_seq,
        batching=_Batching(batch_size, batch_bytes, batch_delay_ms / 1000),
        poll_ms=poll_ms,
        max_poll_ms=max_poll_ms,
        detach_on_close=detach_on_close,
        loaded=loaded,
    )
