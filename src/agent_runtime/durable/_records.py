"""Records a durable-run store reads and writes: runs, steps, events, stream events, handles."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

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
_R = TypeVar("_R", bound="DataclassInstance")

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
        """The original's `RunHandle` wire form (camelCase, absent fields left out)."""
        data: dict[str, Any] = {"kind": self.kind}
        for key, value in (
            ("sandboxId", self.sandbox_id),
            ("sessionId", self.session_id),
            ("runId", self.run_id),
            ("status", self.status),
            ("cursor", self.cursor),
        ):
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunHandle:
        """Read the wire form (or the snake_case form stores wrote before it)."""

        def get(camel: str, snake: str) -> Any:
            return data.get(camel, data.get(snake))

        return cls(
            kind=data["kind"],
            sandbox_id=get("sandboxId", "sandbox_id"),
            session_id=get("sessionId", "session_id"),
            run_id=get("runId", "run_id"),
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
        """The original's `RunRecord` wire form (camelCase, ISO times; `leaseEpoch` and
        `manifest` are ours)."""
        return {
            "runId": self.run_id,
            "manifestHash": self.manifest_hash,
            "projectId": self.project_id,
            "scenarioId": self.scenario_id,
            "status": self.status,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
            "leaseHolderId": self.lease_holder,
            "leaseExpiresAt": (
                self.lease_expires_at.isoformat() if self.lease_expires_at else None
            ),
            "leaseEpoch": self.lease_epoch,
            "outcome": self.outcome,
            "stepCount": self.step_count,
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
        """The original's `StepRecord` wire form (camelCase, ISO times)."""
        return {
            "runId": self.run_id,
            "stepIndex": self.step_index,
            "intent": self.intent,
            "kind": self.kind,
            "inputHash": self.input_hash,
            "status": self.status,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error,
            "startedAt": self.started_at.isoformat() if self.started_at else None,
            "completedAt": self.completed_at.isoformat() if self.completed_at else None,
        }


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A keyed event of a run; the first emit for a key wins."""

    run_id: str
    key: str
    payload: Any
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The original's `EventRecord` wire form (`emittedAt` is when it was stored)."""
        return {
            "runId": self.run_id,
            "key": self.key,
            "payload": self.payload,
            "emittedAt": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StreamEventRecord:
    """An entry of a run's stream log; `seq` is assigned by the store, gapless from 0."""

    run_id: str
    seq: int
    event_id: str
    payload: Any
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The original's `StreamEventRecord` wire form."""
        return {
            "runId": self.run_id,
            "seq": self.seq,
            "eventId": self.event_id,
            "payload": self.payload,
            "appendedAt": self.created_at.isoformat(),
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
# A frozen dataclass's `__init__` sets each field through `object.__setattr__`; resume builds
# one `StepRecord` per completed step and an append one `StreamEventRecord` per event. The
# constructor generated here fills a draft of the record's very slots (made from its fields)
# by ordinary attribute stores, then makes it the record by `__class__` assignment (allowed
# between classes of one layout): the same frozen record, at about a third of the cost.


def _constructor(record: type[_R]) -> Callable[..., _R]:
    """A function taking `record`'s fields positionally (or by name) and returning the record,
    without the frozen `__init__`; built and tried once here, at import."""
    names = tuple(f.name for f in fields(record))
    if getattr(record, "__slots__", None) != names:
        raise TypeError(f"{record.__name__} must be a slots dataclass")
    draft = type(f"_{record.__name__}Draft", (), {"__slots__": names})
    body = "".join(f"    rec.{n} = {n}\n" for n in names)
    source = f"def new({', '.join(names)}):\n    rec = _new(_draft)\n{body}"
    source += "    rec.__class__ = _record\n    return rec\n"
    scope: dict[str, Any] = {"_new": object.__new__, "_draft": draft, "_record": record}
    exec(source, scope)  # generated from the dataclass's own field names
    new: Callable[..., _R] = scope["new"]
    new.__name__ = new.__qualname__ = f"new_{record.__name__}"
    new.__doc__ = f"`{record.__name__}(...)` without its frozen `__init__`."
    probe = new(*(None for _ in names))
    if type(probe) is not record:  # pragma: no cover - __class__ assignment would raise first
        raise TypeError(f"cannot build {record.__name__} records")
    return new


new_run = _constructor(RunRecord)
new_step = _constructor(StepRecord)
new_stream_event = _constructor(StreamEventRecord)


_tuple_new = tuple.__new__


def appended(accepted: bool, record: StreamEventRecord) -> AppendStreamResult:
    """`AppendStreamResult(accepted, record)` without the named tuple's Python `__new__`."""
    result: AppendStreamResult = _tuple_new(AppendStreamResult, (accepted, record))
    return result


def accepted_batch(
    run_id: str, first_seq: int, event_ids: list[str], payloads: list[Any], created_at: datetime
) -> list[AppendStreamResult]:
    """The results of a batch whose every event was new: seq `first_seq` onwards in order."""
    n = len(event_ids)
    records = map(
        new_stream_event,
        repeat(run_id, n),
        range(first_seq, first_seq + n),
        event_ids,
        payloads,
        repeat(created_at, n),
    )
    return list(
        map(_tuple_new, repeat(AppendStreamResult, n), zip(repeat(True, n), records, strict=True))
    )


def completed_steps_of(run_id: str, rows: Any, decode: Callable[[Any], Any]) -> list[StepRecord]:
    """`(step_index, intent, kind, input_hash, attempts, result, started_ms, completed_ms)`
    rows of completed steps as `StepRecord`s, in bulk (`decode` parses a result text); one
    datetime per distinct millisecond."""
    seen: dict[int, datetime] = {}
    out: list[StepRecord] = []
    append, new = out.append, new_step
    for index, intent, kind, input_hash, attempts, result, started_ms, completed_ms in rows:
        started = seen.get(started_ms)
        if started is None:
            started = seen[started_ms] = datetime.fromtimestamp(started_ms / 1000, tz=UTC)
        completed = started if completed_ms == started_ms else seen.get(completed_ms)
        if completed is None:
            completed = seen[completed_ms] = datetime.fromtimestamp(completed_ms / 1000, tz=UTC)
        rec = new(
            run_id,
            index,
            intent,
            kind,
            input_hash,
            "completed",
            attempts,
            None if result is None else decode(result),
            None,
            started,
            completed,
        )
        append(rec)
    return out
