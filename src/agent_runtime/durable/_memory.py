"""`InMemoryDurableRunStore`: the reference store, for tests and single-process demos.

It keeps JSON as encoded bytes, so callers never share mutable state with the store and a
non-JSON value is refused exactly as a database-backed store would refuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import (
    DurableRunError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunNotFoundError,
)
from ..jsoncanon import dumps_json, loads_json
from ._base import StoreBase, detach
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
    StepStatus,
    StreamEventRecord,
    ms_dt,
    ms_to_dt,
    now_ms,
)
from ._store import DEFAULT_LEASE_MS
from ._validate import (
    check_after_seq,
    check_end_status,
    check_epoch,
    check_id,
    check_index,
    check_lease_ms,
    check_limit,
    check_start,
    check_status,
    diverged,
    lease_lost,
)

__all__ = ["InMemoryDurableRunStore"]


@dataclass
class _Run:
    run_id: str
    manifest_hash: str
    manifest: bytes
    project_id: str
    scenario_id: str | None
    status: RunStatus
    created_ms: int
    updated_ms: int
    lease_holder: str | None = None
    lease_expires_ms: int | None = None
    lease_epoch: int = 0
    outcome: bytes | None = None
    step_count: int = 0
    handle: RunHandle | None = None
    steps: dict[int, StepRecord] = field(default_factory=dict)
    events: dict[str, EventRecord] = field(default_factory=dict)

    def record(self) -> RunRecord:
        return RunRecord(
            run_id=self.run_id,
            manifest_hash=self.manifest_hash,
            project_id=self.project_id,
            scenario_id=self.scenario_id,
            status=self.status,
            created_at=ms_dt(self.created_ms),
            updated_at=ms_dt(self.updated_ms),
            lease_holder=self.lease_holder,
            lease_expires_at=ms_to_dt(self.lease_expires_ms),
            outcome=loads_json(self.outcome) if self.outcome is not None else None,
            step_count=self.step_count,
            handle=self.handle,
            manifest=loads_json(self.manifest),
            lease_epoch=self.lease_epoch,
        )


def _step_out(rec: StepRecord) -> StepRecord:
    """The stored step with its own copy of the result and error."""
    return replace(rec, result=detach(rec.result), error=detach(rec.error))


def _event_out(rec: EventRecord) -> EventRecord:
    return replace(rec, payload=detach(rec.payload))


def _stream_out(rec: StreamEventRecord) -> StreamEventRecord:
    return replace(rec, payload=detach(rec.payload))


@dataclass
class _Stream:
    by_id: dict[str, StreamEventRecord] = field(default_factory=dict)
    ordered: list[StreamEventRecord] = field(default_factory=list)


class InMemoryDurableRunStore(StoreBase):
    """A `DurableRunStore` in process memory; nothing survives the process."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._streams: dict[str, _Stream] = {}
        self._closed = False

    # -- runs and leases ---------------------------------------------------------------------

    def _run(self, run_id: str) -> _Run:
        check_id(run_id, "run_id")
        run = self._runs.get(run_id)
        if run is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        return run

    def _fence(self, run: _Run, worker_id: str | None, lease_epoch: int | None = None) -> None:
        if worker_id is None:
            return
        if run.lease_holder != worker_id or (
            lease_epoch is not None and run.lease_epoch != lease_epoch
        ):
            raise lease_lost(run.run_id, worker_id, lease_epoch, run.lease_holder, run.lease_epoch)

    async def start_or_resume(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> StartOrResumeResult:
        check_start(run_id, manifest, worker_id, lease_ms)
        mhash = manifest.digest
        now = now_ms()
        run = self._runs.get(run_id)
        if run is None:
            run = _Run(
                run_id=run_id,
                manifest_hash=mhash,
                manifest=manifest.encoded.encode(),
                project_id=manifest.project_id,
                scenario_id=manifest.scenario_id,
                status="running",
                created_ms=now,
                updated_ms=now,
            )
            self._runs[run_id] = run
        elif run.manifest_hash != mhash:
            raise DurableRunInputMismatchError(
                f"run {run_id!r} exists with another manifest", run_id=run_id
            )
        completed = [_step_out(s) for _, s in sorted(run.steps.items()) if s.status == "completed"]
        if run.status == "completed":
            return StartOrResumeResult(run.record(), completed, None)
        if (
            run.lease_holder is not None
            and run.lease_holder != worker_id
            and run.lease_expires_ms is not None
            and run.lease_expires_ms > now
        ):
            raise DurableRunLeaseHeldError(
                f"run {run_id!r} is leased by {run.lease_holder!r}",
                run_id=run_id,
                holder=run.lease_holder,
                expires_at_ms=run.lease_expires_ms,
            )
        run.lease_holder = worker_id
        run.lease_expires_ms = now + lease_ms
        run.lease_epoch += 1
        run.status = "running"
        run.updated_ms = now
        return StartOrResumeResult(run.record(), completed, ms_to_dt(run.lease_expires_ms))

    async def renew_lease(
        self,
        run_id: str,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
        *,
        lease_epoch: int | None = None,
    ) -> bool:
        check_id(worker_id, "worker_id")
        check_lease_ms(lease_ms)
        run = self._runs.get(check_id(run_id, "run_id"))
        if run is None or run.lease_holder != worker_id:
            return False
        if check_epoch(lease_epoch) is not None and run.lease_epoch != lease_epoch:
            return False
        run.lease_expires_ms = now_ms() + lease_ms
        return True

    async def load_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(check_id(run_id, "run_id"))
        return run.record() if run else None

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        check_limit(limit, optional=False)
        if status is not None:
            check_status(status)
        runs = [r for r in self._runs.values() if status is None or r.status == status]
        runs.sort(key=lambda r: (r.created_ms, r.run_id), reverse=True)
        return [r.record() for r in runs[:limit]]

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        check_end_status(status)
        check_epoch(lease_epoch)
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        run = self._run(run_id)
        encoded = dumps_json(outcome, root="outcome")
        self._fence(run, worker_id, lease_epoch)
        run.status = status
        run.outcome = encoded
        run.lease_holder = None
        run.lease_expires_ms = None
        run.updated_ms = now_ms()
        return run.record()

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        if handle is not None and not isinstance(handle, RunHandle):
            raise DurableRunError("handle must be a RunHandle or None", run_id=run_id)
        run = self._run(run_id)
        run.handle = handle
        run.updated_ms = now_ms()

    # -- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        run = self._runs.get(check_id(run_id, "run_id"))
        return [_step_out(s) for _, s in sorted(run.steps.items())] if run else []

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        check_index(step_index)
        run = self._runs.get(check_id(run_id, "run_id"))
        rec = run.steps.get(step_index) if run else None
        return _step_out(rec) if rec is not None else None

    async def _write_step(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        worker_id: str | None,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None,
        error: str | None,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        run = self._run(run_id)
        self._fence(run, worker_id, lease_epoch)
        now = now_ms()
        prev = run.steps.get(step_index)
        if prev is not None and intent is not None and prev.intent != intent:
            raise diverged(run_id, step_index, prev.intent, intent)
        if prev is not None and prev.status == "completed":
            raise DurableRunError(
                f"step {step_index} of run {run_id!r} is already completed",
                code="step_completed",
                run_id=run_id,
            )
        if prev is None:
            if intent is None:
                raise DurableRunError(
                    f"step {step_index} of run {run_id!r} was not begun; pass its intent",
                    code="step_not_begun",
                    run_id=run_id,
                )
            attempts = 1
            started = ms_to_dt(now)
        else:
            if intent is None:
                intent, kind = prev.intent, prev.kind
            input_hash = prev.input_hash if input_hash is None else input_hash
            attempts = (
                prev.attempts
                if prev.status == "running" and status != "running"
                else prev.attempts + 1
            )
            started = prev.started_at if prev.status == "running" else ms_to_dt(now)
        rec = StepRecord(
            run_id=run_id,
            step_index=step_index,
            intent=intent,
            kind=kind,
            input_hash=input_hash,
            status=status,
            attempts=attempts,
            result=loads_json(result) if result is not None else None,
            error=loads_json(error) if error is not None else None,
            started_at=started,
            completed_at=None if status == "running" else ms_to_dt(now),
        )
        run.steps[step_index] = rec
        run.step_count = max(run.step_count, step_index + 1)
        run.updated_ms = now
        return _step_out(rec)

    # -- events ------------------------------------------------------------------------------

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        check_id(key, "key")
        encoded = dumps_json(payload, root="payload")
        run = self._run(run_id)
        existing = run.events.get(key)
        if existing is not None:
            return EmitEventResult(False, _event_out(existing))
        rec = EventRecord(run_id, key, loads_json(encoded), ms_dt(now_ms()))
        run.events[key] = rec
        return EmitEventResult(True, _event_out(rec))

    async def load_event(self, run_id: str, key: str) -> EventRecord | None:
        check_id(key, "key")
        run = self._runs.get(check_id(run_id, "run_id"))
        rec = run.events.get(key) if run else None
        return _event_out(rec) if rec is not None else None

    # -- stream log --------------------------------------------------------------------------

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        check_id(run_id, "run_id")
        encoded = []
        for i, (event_id, payload) in enumerate(events):
            check_id(event_id, "event_id")
            encoded.append((event_id, dumps_json(payload, root=f"events[{i}].payload")))
        stream = self._streams.setdefault(run_id, _Stream())
        out: list[AppendStreamResult] = []
        now = ms_dt(now_ms())
        for event_id, data in encoded:
            existing = stream.by_id.get(event_id)
            if existing is not None:
                out.append(AppendStreamResult(False, _stream_out(existing)))
                continue
            rec = StreamEventRecord(run_id, len(stream.ordered), event_id, loads_json(data), now)
            stream.by_id[event_id] = rec
            stream.ordered.append(rec)
            out.append(AppendStreamResult(True, _stream_out(rec)))
        return out

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        stream = self._streams.get(check_id(run_id, "run_id"))
        check_after_seq(after_seq)
        check_limit(limit, optional=True)
        if stream is None:
            return []
        start = 0 if after_seq is None else max(after_seq + 1, 0)
        end = None if limit is None else start + limit
        return [_stream_out(r) for r in stream.ordered[start:end]]

    async def close(self) -> None:
        self._closed = True
