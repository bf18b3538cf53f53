"""A checked step write, and the one rule that turns a recorded step into the next.

`StoreBase` builds a `StepWrite` from `begin_step` / `complete_step` / `fail_step` after every
check and the JSON encoding; a store's `_write_step` applies it in one fenced transaction.
The memory and file stores apply `next_step` (below); the SQL stores apply the same rule in
SQL (the SQLite store's upsert, the PostgreSQL `durable_write_step` function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ._records import StepKind, StepStatus
from ._validate import diverged, step_completed, step_not_begun

__all__ = ["StepState", "StepWrite", "next_step"]


@dataclass(frozen=True, slots=True)
class StepWrite:
    """One step write with checked arguments; `result` and `error` are encoded JSON text.

    Without `intent` the position must hold a begun step, which keeps its intent and kind.
    With `worker_id`, the write is fenced: it lands only while that worker holds the lease
    (and, with `lease_epoch`, only under that claim).
    """

    run_id: str
    step_index: int
    status: StepStatus
    intent: str | None
    kind: StepKind
    input_hash: str | None
    result: str | None
    error: str | None
    worker_id: str | None
    lease_epoch: int | None


class StepState(NamedTuple):
    """What the transition rule reads and decides about a position (no result or error)."""

    intent: str
    kind: StepKind
    input_hash: str | None
    status: StepStatus
    attempts: int
    started_ms: int | None
    completed_ms: int | None


def next_step(write: StepWrite, prev: StepState | None, now_ms: int) -> StepState:
    """The state of the position after `write` lands on `prev` (None: nothing recorded) at
    `now_ms`, or the error refusing it.

    A recorded position keeps its intent whatever its status (`DurableRunDivergenceError`);
    a completed step is final (`step_completed`); a write without an intent needs a begun
    step (`step_not_begun`). Attempts grow on every begin and on a completion or failure that
    was not begun; a begun step keeps its start time.
    """
    run_id, index = write.run_id, write.step_index
    completed = None if write.status == "running" else now_ms
    if prev is None:
        if write.intent is None:
            raise step_not_begun(run_id, index)
        return StepState(
            write.intent, write.kind, write.input_hash, write.status, 1, now_ms, completed
        )
    if write.intent is not None and prev.intent != write.intent:
        raise diverged(run_id, index, prev.intent, write.intent)
    if prev.status == "completed":
        raise step_completed(run_id, index)
    intent, kind = (prev.intent, prev.kind) if write.intent is None else (write.intent, write.kind)
    running = prev.status == "running"
    return StepState(
        intent,
        kind,
        prev.input_hash if write.input_hash is None else write.input_hash,
        write.status,
        prev.attempts if running and write.status != "running" else prev.attempts + 1,
        prev.started_ms if running else now_ms,
        completed,
    )
