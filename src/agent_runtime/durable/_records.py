"""Records a durable-run store reads and writes: runs, steps, events, stream events, handles."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

__all__ = [
    "AppendStreamResult",
    "EmitEventResult",
    "EventRecord",
    "RunHandle",
    "RunRecord",
    "RunStatus",
    "StartOrResumeResult",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "StreamEventRecord",
]

RunStatus = Literal["pending", "running", "completed", "failed", "suspended"]
StepKind = Literal["logic", "llm", "tool", "readiness", "deterministic", "event"]
StepStatus = Literal["running", "completed", "failed"]
HandleKind = Literal["sandbox", "remote"]

RUN_STATUSES: frozenset[str] = frozenset(("pending", "running", "completed", "failed", "suspended"))
STEP_KINDS: frozenset[str] = frozenset(
    ("logic", "llm", "tool", "readiness", "deterministic", "event")
)


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch; leases compare these across processes."""
    return time.time_ns() // 1_000_000


def ms_dt(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_to_dt(ms: int | None) -> datetime | None:
    """Epoch milliseconds to an aware UTC datetime; None stays None."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class RunHandle:
    """Where a run's live execution can be re-attached (a sandbox session, a remote run)."""

    kind: HandleKind
    sandbox_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    status: str | None = None
    cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sandbox_id": self.sandbox_id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "status": self.status,
            "cursor": self.cursor,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunHandle:
        return cls(
            kind=data["kind"],
            sandbox_id=data.get("sandbox_id"),
            session_id=data.get("session_id"),
            run_id=data.get("run_id"),
            status=data.get("status"),
            cursor=data.get("cursor"),
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One durable run: identity, manifest hash, status, lease and outcome."""

    run_id: str
    manifest_hash: str
    project_id: str
    scenario_id: str | None
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    lease_holder: str | None
    lease_expires_at: datetime | None
    outcome: Any
    step_count: int
    handle: RunHandle | None
    manifest: Any = None
    lease_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "manifest_hash": self.manifest_hash,
            "project_id": self.project_id,
            "scenario_id": self.scenario_id,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "lease_holder": self.lease_holder,
            "lease_expires_at": (
                self.lease_expires_at.isoformat() if self.lease_expires_at else None
            ),
            "lease_epoch": self.lease_epoch,
            "outcome": self.outcome,
            "step_count": self.step_count,
            "handle": self.handle.to_dict() if self.handle else None,
            "manifest": self.manifest,
        }


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step at a position of a run, with its JSON result or error."""

    run_id: str
    step_index: int
    intent: str
    kind: StepKind
    input_hash: str | None
    status: StepStatus
    attempts: int
    result: Any
    error: dict[str, Any] | None
    started_at: datetime | None
    completed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "step_index": self.step_index,
            "intent": self.intent,
            "kind": self.kind,
            "input_hash": self.input_hash,
            "status": self.status,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A keyed event of a run; the first emit for a key wins."""

    run_id: str
    key: str
    payload: Any
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StreamEventRecord:
    """An entry of a run's stream log; `seq` is assigned by the store, gapless from 0."""

    run_id: str
    seq: int
    event_id: str
    payload: Any
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "event_id": self.event_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


class StartOrResumeResult(NamedTuple):
    """What `start_or_resume` returns: the run, its completed steps in order, the lease expiry.

    `lease_expires_at` is None when the run is already completed (replay needs no lease).
    """

    run: RunRecord
    completed_steps: list[StepRecord]
    lease_expires_at: datetime | None


class EmitEventResult(NamedTuple):
    """`accepted` is False when an event with that key existed; `record` is the stored one."""

    accepted: bool
    record: EventRecord

    @property
    def payload(self) -> Any:
        return self.record.payload


class AppendStreamResult(NamedTuple):
    """`accepted` is False for a duplicate event id; `record` is the stored entry either way."""

    accepted: bool
    record: StreamEventRecord

    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def payload(self) -> Any:
        return self.record.payload


# -- building records on hot paths --------------------------------------------------------------
# A frozen dataclass's `__init__` sets each field through `object.__setattr__` by name; resume
# builds one `StepRecord` per completed step and an append one `StreamEventRecord` per event,
# so these build them through the slot descriptors instead (same object, about half the cost).

_new = object.__new__


def _setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    return tuple(vars(cls)[f.name].__set__ for f in fields(cls))


(
    _step_run_id,
    _step_index,
    _step_intent,
    _step_kind,
    _step_input_hash,
    _step_status,
    _step_attempts,
    _step_result,
    _step_error,
    _step_started_at,
    _step_completed_at,
) = _setters(StepRecord)
_stream_run_id, _stream_seq, _stream_event_id, _stream_payload, _stream_created_at = _setters(
    StreamEventRecord
)
(
    _run_run_id,
    _run_manifest_hash,
    _run_project_id,
    _run_scenario_id,
    _run_status,
    _run_created_at,
    _run_updated_at,
    _run_lease_holder,
    _run_lease_expires_at,
    _run_outcome,
    _run_step_count,
    _run_handle,
    _run_manifest,
    _run_lease_epoch,
) = _setters(RunRecord)


def new_run(
    run_id: str,
    manifest_hash: str,
    project_id: str,
    scenario_id: str | None,
    status: RunStatus,
    created_at: datetime,
    updated_at: datetime,
    lease_holder: str | None,
    lease_expires_at: datetime | None,
    outcome: Any,
    step_count: int,
    handle: RunHandle | None,
    manifest: Any,
    lease_epoch: int,
) -> RunRecord:
    """`RunRecord(...)`, every field positionally in declaration order, without `__init__`."""
    rec: RunRecord = _new(RunRecord)
    _run_run_id(rec, run_id)
    _run_manifest_hash(rec, manifest_hash)
    _run_project_id(rec, project_id)
    _run_scenario_id(rec, scenario_id)
    _run_status(rec, status)
    _run_created_at(rec, created_at)
    _run_updated_at(rec, updated_at)
    _run_lease_holder(rec, lease_holder)
    _run_lease_expires_at(rec, lease_expires_at)
    _run_outcome(rec, outcome)
    _run_step_count(rec, step_count)
    _run_handle(rec, handle)
    _run_manifest(rec, manifest)
    _run_lease_epoch(rec, lease_epoch)
    return rec


def new_step(
    run_id: str,
    step_index: int,
    intent: str,
    kind: StepKind,
    input_hash: str | None,
    status: StepStatus,
    attempts: int,
    result: Any,
    error: dict[str, Any] | None,
    started_at: datetime | None,
    completed_at: datetime | None,
) -> StepRecord:
    """`StepRecord(...)`, positionally, without the dataclass `__init__`."""
    rec: StepRecord = _new(StepRecord)
    _step_run_id(rec, run_id)
    _step_index(rec, step_index)
    _step_intent(rec, intent)
    _step_kind(rec, kind)
    _step_input_hash(rec, input_hash)
    _step_status(rec, status)
    _step_attempts(rec, attempts)
    _step_result(rec, result)
    _step_error(rec, error)
    _step_started_at(rec, started_at)
    _step_completed_at(rec, completed_at)
    return rec


def new_stream_event(
    run_id: str, seq: int, event_id: str, payload: Any, created_at: datetime
) -> StreamEventRecord:
    """`StreamEventRecord(...)`, positionally, without the dataclass `__init__`."""
    rec: StreamEventRecord = _new(StreamEventRecord)
    _stream_run_id(rec, run_id)
    _stream_seq(rec, seq)
    _stream_event_id(rec, event_id)
    _stream_payload(rec, payload)
    _stream_created_at(rec, created_at)
    return rec


_tuple_new = tuple.__new__


def appended(accepted: bool, record: StreamEventRecord) -> AppendStreamResult:
    """`AppendStreamResult(accepted, record)` without the named tuple's Python `__new__`."""
    result: AppendStreamResult = _tuple_new(AppendStreamResult, (accepted, record))
    return result


def accepted_batch(
    run_id: str, first_seq: int, event_ids: list[str], payloads: list[Any], created_at: datetime
) -> list[AppendStreamResult]:
    """The results of a batch whose every event was new: seq `first_seq` onwards in order."""
    new, result = new_stream_event, AppendStreamResult
    return [
        _tuple_new(result, (True, new(run_id, first_seq + i, event_id, payload, created_at)))
        for i, (event_id, payload) in enumerate(zip(event_ids, payloads, strict=True))
    ]
