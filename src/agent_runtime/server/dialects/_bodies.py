"""Response bodies of one turn in a dialect: the log from a cursor, live until the run ends.

A `TurnLog` is what the service's turn runner offers (`tail`, `closing`, and the store for the
prefix up to a cursor). A body starts from the fold state at the cursor (`resume_state`),
re-opens what is open there, then encodes each later record as it is logged and closes with
the run's closing line. Fold states are kept in a `FoldCache` as bodies pass through a log,
so a client resuming deep into a long turn folds only the records after the nearest one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

from ...durable import DurableRunStore, StreamEventRecord
from ...errors import InvalidArgumentError
from ._timeline import MUTED, Timeline, TimelineState
from .agui import AguiStream
from .vercel import VercelStream

__all__ = ["FOLD_CACHE", "FoldCache", "TurnLog", "agui_body", "resume_state", "vercel_body"]

SNAPSHOT_EVERY = 256


class TurnLog(Protocol):
    """Where a turn's log is read: its store, a live tail after a cursor, its closing line."""

    @property
    def store(self) -> DurableRunStore: ...

    def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]: ...

    async def closing(self, run_id: str) -> dict[str, Any]: ...


class FoldCache:
    """Fold states of turn logs at some seqs (at most `per_run` for each of `max_runs` runs,
    least recently used dropped). Each is keyed by the record it was taken at (event id and
    write time), and used only while the store still holds that very record."""

    def __init__(self, max_runs: int = 1024, per_run: int = 8) -> None:
        self._runs: OrderedDict[str, dict[int, tuple[TimelineState, str, datetime]]] = OrderedDict()
        self.max_runs = max_runs
        self.per_run = per_run

    def put(self, run_id: str, state: TimelineState, record: StreamEventRecord) -> None:
        """Keep `state`, the fold through `record`."""
        states = self._runs.get(run_id)
        if states is None:
            states = self._runs[run_id] = {}
            if len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(run_id)
        states[record.seq] = (state, record.event_id, record.created_at)
        if len(states) > self.per_run:
            del states[min(states)]

    def nearest(self, run_id: str, cursor: int) -> tuple[TimelineState, str, datetime] | None:
        """The kept state with the greatest seq at or before `cursor`."""
        states = self._runs.get(run_id)
        if not states:
            return None
        seqs = [s for s in states if s <= cursor]
        return states[max(seqs)] if seqs else None

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)


FOLD_CACHE = FoldCache()
"""The process's fold states, shared by every body (a log never changes once written)."""


def _cursor_error(after: int, have: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"cursor {after} is past the end of the log ({have} events)", path="after"
    )


async def resume_state(
    log: TurnLog, run_id: str, after: int | None, cache: FoldCache = FOLD_CACHE
) -> TimelineState | None:
    """The fold of the records a client at cursor `after` already has (`seq <= after`; None
    for a client starting from the beginning). A cursor past the end of the log is an
    `InvalidArgumentError`: no client can have seen those records."""
    if after is None:
        return None
    timeline = Timeline(MUTED)
    hit = cache.nearest(run_id, after)
    records: list[StreamEventRecord] = []
    if hit is not None:
        state, event_id, created_at = hit
        start = state.seq
        assert start is not None
        records = await log.store.read_stream_events(
            run_id, after_seq=start - 1, limit=after - start + 1
        )
        first = records[0] if records else None
        if first is not None and (first.event_id, first.created_at) == (event_id, created_at):
            timeline.restore(state)
            records = records[1:]
            if len(records) < after - start:
                raise _cursor_error(after, start + 1 + len(records))
        else:  # the log was rewritten since (a new attempt): fold it afresh
            cache.forget(run_id)
            hit = None
    if hit is None:
        records = await log.store.read_stream_events(run_id, limit=after + 1)
        if len(records) < after + 1:
            raise _cursor_error(after, len(records))
    for record in records:
        timeline.feed(record)
    if records:
        cache.put(run_id, timeline.snapshot(), records[-1])
    return timeline.snapshot()


async def _body(
    log: TurnLog,
    run_id: str,
    after: int | None,
    encoder: VercelStream | AguiStream,
    cache: FoldCache,
) -> AsyncIterator[bytes]:
    yield encoder.start()
    count = 0
    async for record in log.tail(run_id, after):
        frames = encoder.encode(record)
        count += 1
        if count % SNAPSHOT_EVERY == 0:
            cache.put(run_id, encoder.timeline.snapshot(), record)
        if frames:
            yield frames
    closing = encoder.finish(await log.closing(run_id))
    if closing:
        yield closing


def vercel_body(
    log: TurnLog,
    run_id: str,
    message_id: str,
    after: int | None,
    state: TimelineState | None,
    cache: FoldCache = FOLD_CACHE,
) -> AsyncIterator[bytes]:
    """The turn as a UI message stream from cursor `after` (`state` = `resume_state(...)`)."""
    return _body(log, run_id, after, VercelStream(message_id, state=state), cache)


def agui_body(
    log: TurnLog,
    run_id: str,
    thread_id: str,
    agui_run_id: str,
    after: int | None,
    state: TimelineState | None,
    cache: FoldCache = FOLD_CACHE,
    *,
    id_prefix: str | None = None,
) -> AsyncIterator[bytes]:
    """The turn as an AG-UI event stream from cursor `after`; message and tool-call ids start
    with `id_prefix` (the execution id the client knows; `run_id` when not given)."""
    prefix = f"{run_id if id_prefix is None else id_prefix}:"
    encoder = AguiStream(thread_id, agui_run_id, prefix=prefix, state=state)
    return _body(log, run_id, after, encoder, cache)
