"""Retrying a failed turn: the same turn (the same durable run, the same execution id) asked
again, with the same or an edited input, becomes its next attempt.

The store restarts the failed run in place (`restart_failed_run`: one atomic change, only
while the run is failed) and appends the restart marker of the next attempt to its stream
log, so the log reads as any other re-run: the failed attempt, its marker, the new attempt's
events. Readers at any cursor stay correct (seqs go on), and a reader starting fresh may skip
straight to the last marker (`latest_restart_seq`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..durable._manifest import DurableRunManifest
from ..durable._records import RunRecord
from ..durable._store import DurableRunStore
from ._turn import ChatStreamEvent
from ._turn_log import parse_turn_event_id, turn_restart_id

__all__ = ["latest_restart_seq", "restart_failed_turn"]


async def restart_failed_turn(
    store: DurableRunStore,
    run_id: str,
    manifest: DurableRunManifest,
    restart_event: Callable[[int], ChatStreamEvent],
) -> RunRecord | None:
    """Restart the failed turn `run_id` as a new attempt of `manifest`, its marker
    `restart_event(attempt)` logged where it starts. None when the run is not failed (absent,
    running, completed, or restarted by a racing request): nothing changed."""
    log = await store.read_stream_events(run_id)
    attempt = max((parse_turn_event_id(r.event_id).attempt for r in log), default=1) + 1
    marker = (turn_restart_id(attempt), restart_event(attempt))
    return await store.restart_failed_run(run_id, manifest, marker)


async def latest_restart_seq(store: DurableRunStore, run_id: str) -> int | None:
    """The seq of the last restart marker in the turn's log (None: it has none). A client that
    starts reading there has everything it needs: what came before the marker is superseded."""
    found = None
    for record in await store.read_stream_events(run_id):
        if parse_turn_event_id(record.event_id).restart:
            found = record.seq
    return found
