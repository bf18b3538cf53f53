"""Response bodies of one turn in a dialect: the log from a cursor, live until the run ends.

A `TurnLog` is what the service's turn runner offers (`tail`, `closing`, and the store for the
prefix up to a cursor); the bodies fold that prefix silently, re-open what is open there, then
encode each later record as it is logged and close with the run's closing line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from ...durable import DurableRunStore, StreamEventRecord
from ...errors import InvalidArgumentError
from .agui import AguiStream
from .vercel import VercelStream

__all__ = ["TurnLog", "agui_body", "read_prefix", "vercel_body"]


class TurnLog(Protocol):
    """Where a turn's log is read: its store, a live tail after a cursor, its closing line."""

    @property
    def store(self) -> DurableRunStore: ...

    def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]: ...

    async def closing(self, run_id: str) -> dict[str, Any]: ...


async def read_prefix(log: TurnLog, run_id: str, after: int | None) -> list[StreamEventRecord]:
    """The records a client at cursor `after` already has (`seq <= after`); a cursor past the
    end of the log is an `InvalidArgumentError` (no client can have seen those records)."""
    if after is None:
        return []
    prefix = await log.store.read_stream_events(run_id, limit=after + 1)
    if len(prefix) < after + 1:
        raise InvalidArgumentError(
            f"cursor {after} is past the end of the log ({len(prefix)} events)", path="after"
        )
    return prefix


async def vercel_body(
    log: TurnLog,
    run_id: str,
    message_id: str,
    after: int | None,
    prefix: list[StreamEventRecord],
) -> AsyncIterator[bytes]:
    """The turn as a UI message stream from cursor `after` (`prefix` = `read_prefix(...)`)."""
    encoder = VercelStream(message_id, after=prefix)
    yield encoder.start()
    async for record in log.tail(run_id, after):
        frames = encoder.encode(record)
        if frames:
            yield frames
    closing = encoder.finish(await log.closing(run_id))
    if closing:
        yield closing


async def agui_body(
    log: TurnLog,
    run_id: str,
    thread_id: str,
    agui_run_id: str,
    after: int | None,
    prefix: list[StreamEventRecord],
) -> AsyncIterator[bytes]:
    """The turn as an AG-UI event stream from cursor `after`; message ids carry `run_id`."""
    encoder = AguiStream(thread_id, agui_run_id, prefix=f"{run_id}:", after=prefix)
    yield encoder.start()
    async for record in log.tail(run_id, after):
        frames = encoder.encode(record)
        if frames:
            yield frames
    closing = encoder.finish(await log.closing(run_id))
    if closing:
        yield closing
