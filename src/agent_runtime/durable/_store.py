"""The `DurableRunStore` protocol every store implements (memory, SQLite, PostgreSQL, files)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ._manifest import DurableRunManifest
from ._records import (
    AppendStreamResult,
    EmitEventResult,
    EventRecord,
    RunHandle,
    RunRecord,
    RunStatus,
    StartOrResumeResult,
    StepKind,
    StepRecord,
    StreamEventRecord,
)

__all__ = ["DEFAULT_LEASE_MS", "DurableRunStore", "is_durable_store"]

DEFAULT_LEASE_MS = 15_000


@runtime_checkable
class DurableRunStore(Protocol):
    """Persistence for durable runs. All methods are async and take keyword arguments.

    Fencing: step commits and `end_run` given a `worker_id` succeed only while that worker
    holds the run's lease and, when `lease_epoch` is given, only while that claim is the
    current one (every claim increments `RunRecord.lease_epoch`: the fencing token). Both are
    checked in the same transaction as the write; otherwise they raise
    `DurableRunLeaseLostError` and write nothing.
    """

    async def start_or_resume(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> StartOrResumeResult:
        """Create the run or resume it: check the manifest hash, claim the lease atomically
        (free or expired), return the completed steps in one read. A completed run is returned
        without claiming a lease."""
        ...

    async def renew_lease(
        self,
        run_id: str,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
        *,
        lease_epoch: int | None = None,
    ) -> bool:
        """Extend the lease; False when another worker (or, with `lease_epoch`, a later claim)
        holds it, or the run is gone."""
        ...

    async def load_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        """Most recently created runs first."""
        ...

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        """Every recorded step of the run (any status) in position order."""
        ...

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None: ...

    async def begin_step(
        self,
        run_id: str,
        step_index: int,
        intent: str,
        kind: StepKind,
        input_hash: str | None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        """Durably mark an attempt of a step as running (attempts + 1)."""
        ...

    async def complete_step(
        self,
        run_id: str,
        step_index: int,
        result: Any,
        intent: str | None = None,
        kind: StepKind = "logic",
        input_hash: str | None = None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        """Commit a step's JSON result. Without a prior `begin_step`, pass `intent` (and
        `kind`, `input_hash`): begin and completion then cost one transaction."""
        ...

    async def fail_step(
        self,
        run_id: str,
        step_index: int,
        error: dict[str, Any],
        intent: str | None = None,
        kind: StepKind = "logic",
        input_hash: str | None = None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        """Record a step's failure with its error (`{"type", "message", ...}`)."""
        ...

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        """Set the final status and outcome and release the lease."""
        ...

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        """Store an event for `key`; the first emit wins, later ones are not accepted."""
        ...

    async def load_event(self, run_id: str, key: str) -> EventRecord | None: ...

    async def append_stream_event(
        self, run_id: str, event_id: str, payload: Any
    ) -> AppendStreamResult:
        """Append to the stream log, idempotent on `event_id`; the store assigns `seq`."""
        ...

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        """Append many `(event_id, payload)` pairs in one transaction, in order."""
        ...

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        """Stream entries with `seq > after_seq` in seq order."""
        ...

    async def stream_length(self, run_id: str) -> int:
        """How many entries the run's stream log holds (`StoreBase` reads the log; stores
        that know its head answer without reading it)."""
        ...

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        """Record (or clear) where the run's live execution can be re-attached."""
        ...

    async def restart_failed_run(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        log_entry: tuple[str, Any] | None = None,
    ) -> RunRecord | None:
        """Atomically, only while the run is `failed`: drop its steps and keyed events, make
        it a `running` run of `manifest` with a free lease, append `log_entry` to its kept
        stream log. None (nothing changed) when the run is absent or not failed."""
        ...

    async def prune_idle_runs(
        self,
        prefix: str,
        older_than_ms: int,
        *,
        now_ms: int | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete the runs under `prefix` idle for `older_than_ms` and not leased by a live
        worker, with their steps, events and stream log; return their ids (`StoreBase`:
        `ConfigurationError` unless the store implements its `_prune` hook)."""
        ...

    async def stored_bytes(self, prefix: str) -> int:
        """Bytes of JSON stored for the runs under `prefix` (`StoreBase`: counted through
        the reads)."""
        ...

    async def close(self) -> None:
        """Release connections and caches (`StoreBase`: nothing to release)."""
        ...


_STORE_TYPES: set[type] = set()


def is_durable_store(value: object) -> bool:
    """`isinstance(value, DurableRunStore)`, remembered per class: the protocol check walks
    every member on each call (tens of microseconds), and it guards per-turn entry points."""
    kind = type(value)
    if kind in _STORE_TYPES:
        return True
    if not isinstance(value, DurableRunStore):
        return False
    _STORE_TYPES.add(kind)
    return True
