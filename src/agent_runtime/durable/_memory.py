"""`InMemoryDurableRunStore`: the reference store, for tests and single-process demos.

It keeps JSON as the encoded text `StoreBase` hands it and decodes on every read, so callers
never share mutable state with the store and a non-JSON value is refused exactly as a
database-backed store would refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..jsoncanon import loads_json
from ._base import StoreBase
from ._manifest import DurableRunManifest
from ._records import (
    AppendStreamResult,
    EmitEventResult,
    EventRecord,
    RunHandle,
    RunRecord,
    RunStatus,
    StartOrResumeResult,
    StepRecord,
    StreamEventRecord,
    appended,
    ms_dt,
    ms_to_dt,
    new_step,
    new_stream_event,
    now_ms,
)
from ._retention import idle
from ._steps import StepState, StepWrite, next_step
from ._validate import lease_held, lease_lost, mismatch, not_found

__all__ = ["InMemoryDurableRunStore"]


@dataclass(slots=True)
class _Step:
    state: StepState
    result: str | None
    error: str | None

    def record(self, run_id: str, step_index: int) -> StepRecord:
        s = self.state
        return new_step(
            run_id,
            step_index,
            s.intent,
            s.kind,
            s.input_hash,
            s.status,
            s.attempts,
            None if self.result is None else loads_json(self.result),
            None if self.error is None else loads_json(self.error),
            ms_to_dt(s.started_ms),
            ms_to_dt(s.completed_ms),
        )


@dataclass(slots=True)
class _Run:
    run_id: str
    manifest_hash: str
    manifest: str
    project_id: str
    scenario_id: str | None
    status: RunStatus
    created_ms: int
    updated_ms: int
    lease_holder: str | None = None
    lease_expires_ms: int | None = None
    lease_epoch: int = 0
    outcome: str | None = None
    step_count: int = 0
    handle: RunHandle | None = None
    steps: dict[int, _Step] = field(default_factory=dict)
    events: dict[str, tuple[str, int]] = field(default_factory=dict)

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

    def fence(self, worker_id: str | None, lease_epoch: int | None) -> None:
        if worker_id is None:
            return
        if self.lease_holder != worker_id or (
            lease_epoch is not None and self.lease_epoch != lease_epoch
        ):
            raise lease_lost(
                self.run_id, worker_id, lease_epoch, self.lease_holder, self.lease_epoch
            )

    def completed(self) -> list[StepRecord]:
        return [
            s.record(self.run_id, i)
            for i, s in sorted(self.steps.items())
            if s.state.status == "completed"
        ]


@dataclass(slots=True)
class _Stream:
    by_id: dict[str, int] = field(default_factory=dict)
    entries: list[tuple[str, str, int]] = field(default_factory=list)  # (id, payload, ms)

    def record(self, run_id: str, seq: int) -> StreamEventRecord:
        event_id, payload, ms = self.entries[seq]
        return new_stream_event(run_id, seq, event_id, loads_json(payload), ms_dt(ms))


class InMemoryDurableRunStore(StoreBase):
    """A `DurableRunStore` in process memory; nothing survives the process."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._streams: dict[str, _Stream] = {}

    def _existing(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise not_found(run_id)
        return run

    # -- runs and leases ---------------------------------------------------------------------

    async def _claim(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int
    ) -> StartOrResumeResult:
        now = now_ms()
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run(
                run_id=run_id,
                manifest_hash=manifest.digest,
                manifest=manifest.encoded,
                project_id=manifest.project_id,
                scenario_id=manifest.scenario_id,
                status="running",
                created_ms=now,
                updated_ms=now,
            )
        elif run.manifest_hash != manifest.digest:
            raise mismatch(run_id)
        if run.status == "completed":
            return StartOrResumeResult(run.record(), run.completed(), None)
        holder, expires = run.lease_holder, run.lease_expires_ms
        if holder is not None and holder != worker_id and expires is not None and expires > now:
            raise lease_held(run_id, holder, expires)
        run.lease_holder = worker_id
        run.lease_expires_ms = now + lease_ms
        run.lease_epoch += 1
        run.status = "running"
        run.updated_ms = now
        return StartOrResumeResult(run.record(), run.completed(), ms_to_dt(now + lease_ms))

    async def _renew(
        self, run_id: str, worker_id: str, lease_ms: int, lease_epoch: int | None
    ) -> bool:
        run = self._runs.get(run_id)
        if run is None or run.lease_holder != worker_id:
            return False
        if lease_epoch is not None and run.lease_epoch != lease_epoch:
            return False
        run.lease_expires_ms = now_ms() + lease_ms
        return True

    async def _end(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: str,
        lease_epoch: int | None,
    ) -> RunRecord:
        run = self._existing(run_id)
        run.fence(worker_id, lease_epoch)
        run.status = status
        run.outcome = outcome
        run.lease_holder = None
        run.lease_expires_ms = None
        run.updated_ms = now_ms()
        return run.record()

    async def _load_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return run.record() if run else None

    async def _list_runs(self, limit: int, status: RunStatus | None) -> list[RunRecord]:
        runs = [r for r in self._runs.values() if status is None or r.status == status]
        runs.sort(key=lambda r: (r.created_ms, r.run_id), reverse=True)
        return [r.record() for r in runs[:limit]]

    async def _set_handle(self, run_id: str, handle: RunHandle | None, encoded: str | None) -> None:
        run = self._existing(run_id)
        run.handle = handle  # frozen: safe to share
        run.updated_ms = now_ms()

    # -- steps -------------------------------------------------------------------------------

    async def _load_steps(self, run_id: str) -> list[StepRecord]:
        run = self._runs.get(run_id)
        return [s.record(run_id, i) for i, s in sorted(run.steps.items())] if run else []

    async def _load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        run = self._runs.get(run_id)
        step = run.steps.get(step_index) if run else None
        return step.record(run_id, step_index) if step is not None else None

    async def _write_step(self, write: StepWrite) -> StepRecord:
        run = self._existing(write.run_id)
        run.fence(write.worker_id, write.lease_epoch)
        now = now_ms()
        prev = run.steps.get(write.step_index)
        state = next_step(write, prev.state if prev is not None else None, now)
        step = run.steps[write.step_index] = _Step(state, write.result, write.error)
        run.step_count = max(run.step_count, write.step_index + 1)
        run.updated_ms = now
        return step.record(write.run_id, write.step_index)

    # -- events ------------------------------------------------------------------------------

    async def _emit(self, run_id: str, key: str, payload: str) -> EmitEventResult:
        run = self._existing(run_id)
        stored = run.events.get(key)
        accepted = stored is None
        if stored is None:
            stored = run.events[key] = (payload, now_ms())
        return EmitEventResult(
            accepted, EventRecord(run_id, key, loads_json(stored[0]), ms_dt(stored[1]))
        )

    async def _load_event(self, run_id: str, key: str) -> EventRecord | None:
        run = self._runs.get(run_id)
        stored = run.events.get(key) if run else None
        if stored is None:
            return None
        return EventRecord(run_id, key, loads_json(stored[0]), ms_dt(stored[1]))

    # -- stream log --------------------------------------------------------------------------

    async def _append(
        self, run_id: str, event_ids: list[str], payloads: list[str]
    ) -> list[AppendStreamResult]:
        stream = self._streams.get(run_id)
        if stream is None:
            stream = self._streams[run_id] = _Stream()
        now = now_ms()
        out: list[AppendStreamResult] = []
        for event_id, payload in zip(event_ids, payloads, strict=True):
            seq = stream.by_id.get(event_id)
            accepted = seq is None
            if seq is None:
                seq = stream.by_id[event_id] = len(stream.entries)
                stream.entries.append((event_id, payload, now))
            out.append(appended(accepted, stream.record(run_id, seq)))
        return out

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        stream = self._streams.get(run_id)
        if stream is None:
            return []
        start = after_seq + 1
        end = len(stream.entries) if limit is None else min(start + limit, len(stream.entries))
        return [stream.record(run_id, seq) for seq in range(start, end)]

    async def _stream_length(self, run_id: str) -> int:
        stream = self._streams.get(run_id)
        return len(stream.entries) if stream is not None else 0

    # -- restarting a failed run -------------------------------------------------------------

    async def _restart_failed(
        self, run_id: str, manifest: DurableRunManifest, entry: tuple[str, str] | None
    ) -> RunRecord | None:
        run = self._runs.get(run_id)
        if run is None or run.status != "failed":
            return None
        run.manifest_hash = manifest.digest
        run.manifest = manifest.encoded
        run.project_id = manifest.project_id
        run.scenario_id = manifest.scenario_id
        run.status = "running"
        run.updated_ms = now_ms()
        run.lease_holder = run.lease_expires_ms = run.outcome = run.handle = None
        run.step_count = 0
        run.steps.clear()
        run.events.clear()
        if entry is not None:
            await self._append(run_id, [entry[0]], [entry[1]])
        return run.record()

    # -- retention ---------------------------------------------------------------------------

    async def _prune(self, prefix: str, age_ms: int, at_ms: int | None, dry_run: bool) -> list[str]:
        now = now_ms()
        cutoff = (now if at_ms is None else at_ms) - age_ms
        runs = sorted(self._runs.values(), key=lambda r: (r.created_ms, r.run_id), reverse=True)
        ids = [
            r.run_id
            for r in runs
            if r.run_id.startswith(prefix)
            and idle(r.status, r.updated_ms, r.lease_expires_ms, cutoff, now)
        ]
        if not dry_run:
            for run_id in ids:
                self._runs.pop(run_id, None)
                self._streams.pop(run_id, None)
        return ids
