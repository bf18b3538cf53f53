"""Runtime-run ledger: one `RuntimeRunRow` per run, written through a pluggable persistence.

`start_runtime_run` writes a `running` row; the handle counts events and tokens as they pass
and writes the final row once, on `complete` or `fail`. Cost is `None` whenever it is unknown
(no price and none given), never a made-up 0.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from ._sqlite import connect_sqlite
from .errors import (
    DurableValueError,
    InvalidArgumentError,
    RuntimeRunStateError,
    StoreUnavailableError,
)
from .jsoncanon import dumps_json, loads_json
from .types import ModelPrice, UsageEvent

__all__ = [
    "InMemoryRuntimeRunPersistence",
    "RuntimeRunHandle",
    "RuntimeRunOptions",
    "RuntimeRunPersistenceAdapter",
    "RuntimeRunRow",
    "RuntimeRunStatus",
    "SQLiteRuntimeRunPersistence",
    "start_runtime_run",
]

RuntimeRunStatus = Literal["running", "completed", "failed"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class RuntimeRunOptions:
    """What identifies a run in the ledger; `price` lets the ledger compute cost from tokens."""

    run_id: str | None = None
    kind: str = "agent_task"
    tenant_id: str | None = None
    session_id: str | None = None
    task_id: str | None = None
    model: str | None = None
    price: ModelPrice | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuntimeRunRow:
    """One ledger row: identity, status, timing, event and token counts, cost and error."""

    run_id: str
    kind: str
    status: RuntimeRunStatus
    started_at_ms: int
    ended_at_ms: int | None = None
    tenant_id: str | None = None
    session_id: str | None = None
    task_id: str | None = None
    model: str | None = None
    event_count: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    usage_reported: bool = False
    cost_usd: float | None = None
    error: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_at_ms is None else self.ended_at_ms - self.started_at_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "status": self.status,
            "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "tenant_id": self.tenant_id,
            "session_id": self.session_id,
            "task_id": self.task_id,
            "model": self.model,
            "event_count": self.event_count,
            "event_counts": dict(self.event_counts),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usage_reported": self.usage_reported,
            "cost_usd": self.cost_usd,
            "error": self.error,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeRunRow:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@runtime_checkable
class RuntimeRunPersistenceAdapter(Protocol):
    """Where ledger rows go. `save_run` upserts by `run_id`."""

    async def save_run(self, row: RuntimeRunRow) -> None: ...

    async def load_run(self, run_id: str) -> RuntimeRunRow | None: ...

    async def list_runs(self, *, limit: int = 100) -> list[RuntimeRunRow]:
        """Most recently started first."""
        ...

    async def close(self) -> None: ...


def _check_limit(limit: Any) -> None:
    if type(limit) is not int or limit <= 0:
        raise InvalidArgumentError("must be an int > 0", path="limit")


class InMemoryRuntimeRunPersistence:
    """Ledger rows in a dict (tests, single-process tools)."""

    def __init__(self) -> None:
        self._rows: dict[str, RuntimeRunRow] = {}

    async def save_run(self, row: RuntimeRunRow) -> None:
        self._rows[row.run_id] = row

    async def load_run(self, run_id: str) -> RuntimeRunRow | None:
        return self._rows.get(run_id)

    async def list_runs(self, *, limit: int = 100) -> list[RuntimeRunRow]:
        _check_limit(limit)
        rows = sorted(self._rows.values(), key=lambda r: (r.started_at_ms, r.run_id), reverse=True)
        return rows[:limit]

    async def close(self) -> None:
        return None


class SQLiteRuntimeRunPersistence:
    """Ledger rows in a SQLite file (table `runtime_runs`, created idempotently). A file
    locked by another writer for longer than `busy_timeout_ms` is `StoreUnavailableError`."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        try:
            self._db = connect_sqlite(self.path, busy_timeout_ms=busy_timeout_ms)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS runtime_runs (run_id TEXT PRIMARY KEY, "
                "status TEXT NOT NULL, started_at_ms INTEGER NOT NULL, row TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS runtime_runs_started ON runtime_runs (started_at_ms)"
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open run ledger {self.path}: {exc}") from exc

    def _execute(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"run ledger {self.path}: {exc}") from exc

    async def save_run(self, row: RuntimeRunRow) -> None:
        self._execute(
            "INSERT INTO runtime_runs VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
            "status = excluded.status, row = excluded.row",
            (row.run_id, row.status, row.started_at_ms, dumps_json(row.to_dict()).decode()),
        )

    async def load_run(self, run_id: str) -> RuntimeRunRow | None:
        found = self._execute("SELECT row FROM runtime_runs WHERE run_id = ?", (run_id,))
        return None if not found else RuntimeRunRow.from_dict(loads_json(found[0][0]))

    async def list_runs(self, *, limit: int = 100) -> list[RuntimeRunRow]:
        _check_limit(limit)
        rows = self._execute(
            "SELECT row FROM runtime_runs ORDER BY started_at_ms DESC, run_id DESC LIMIT ?",
            (limit,),
        )
        return [RuntimeRunRow.from_dict(loads_json(r[0])) for r in rows]

    async def close(self) -> None:
        self._db.close()


def _event_type(event: Any) -> str:
    kind = event.get("type") if isinstance(event, Mapping) else getattr(event, "type", None)
    if not isinstance(kind, str) or not kind:
        raise InvalidArgumentError("event has no string `type`", path="event")
    return kind


def _usage_of(event: Any) -> tuple[int, int] | None:
    if isinstance(event, UsageEvent):
        return event.input_tokens, event.output_tokens
    if isinstance(event, Mapping) and event.get("type") == "usage":
        i, o = event.get("input_tokens", 0), event.get("output_tokens", 0)
        if type(i) is not int or type(o) is not int or i < 0 or o < 0:
            raise InvalidArgumentError("token counts must be ints >= 0", path="event")
        return i, o
    return None


def _error_dict(error: Any) -> dict[str, Any]:
    if isinstance(error, BaseException):
        to_dict = getattr(error, "to_dict", None)
        data = to_dict() if callable(to_dict) else None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data
        return {"type": type(error).__name__, "message": str(error) or type(error).__name__}
    if isinstance(error, str):
        return {"type": "Error", "message": error}
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return dict(error)
    to_dict = getattr(error, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data
    raise InvalidArgumentError(
        "error must be an exception, a string or a dict with a string `message`", path="error"
    )


class RuntimeRunHandle:
    """A live run in the ledger. `record_event` is cheap (counters only); `complete` or `fail`
    writes the final row and may be called once."""

    def __init__(
        self,
        row: RuntimeRunRow,
        persistence: RuntimeRunPersistenceAdapter,
        price: ModelPrice | None,
    ) -> None:
        self._row = row
        self._persistence = persistence
        self._price = price
        self._finished = False

    @property
    def run_id(self) -> str:
        return self._row.run_id

    @property
    def row(self) -> RuntimeRunRow:
        """The row as it stands (final after `complete`/`fail`)."""
        return self._row

    @property
    def finished(self) -> bool:
        return self._finished

    def _check_open(self, action: str) -> None:
        if self._finished:
            raise RuntimeRunStateError(
                f"run {self._row.run_id!r} already ended as {self._row.status}; cannot {action}"
            )

    def record_event(self, event: Any) -> None:
        """Count an event (a runtime event or its dict form); usage events add tokens."""
        self._check_open("record an event")
        kind = _event_type(event)
        usage = _usage_of(event)
        counts = dict(self._row.event_counts)
        counts[kind] = counts.get(kind, 0) + 1
        row = replace(self._row, event_count=self._row.event_count + 1, event_counts=counts)
        if usage is not None:
            row = replace(
                row,
                input_tokens=row.input_tokens + usage[0],
                output_tokens=row.output_tokens + usage[1],
                usage_reported=True,
            )
        self._row = row

    def _cost(self, cost: float | None) -> float | None:
        if cost is not None:
            if type(cost) not in (int, float) or not math.isfinite(cost) or cost < 0:
                raise InvalidArgumentError("must be a finite number >= 0 or None", path="cost")
            return float(cost)
        if self._price is not None and self._row.usage_reported:
            return self._price.cost_usd(self._row.input_tokens, self._row.output_tokens)
        return None

    async def complete(self, cost: float | None = None) -> RuntimeRunRow:
        """End the run `completed`. `cost` in USD; without it, computed from the price when
        usage was reported, else None (unknown)."""
        self._check_open("complete it")
        final_cost = self._cost(cost)
        return await self._end(
            replace(self._row, status="completed", ended_at_ms=_now_ms(), cost_usd=final_cost)
        )

    async def fail(self, error: Any, cost: float | None = None) -> RuntimeRunRow:
        """End the run `failed` with `error` (exception, message or `{"message": ...}` dict)."""
        self._check_open("fail it")
        err = _error_dict(error)
        final_cost = self._cost(cost)
        try:
            dumps_json(err, root="error")
        except DurableValueError as exc:
            raise InvalidArgumentError(exc.reason, path=exc.path) from None
        return await self._end(
            replace(
                self._row, status="failed", ended_at_ms=_now_ms(), cost_usd=final_cost, error=err
            )
        )

    async def _end(self, final: RuntimeRunRow) -> RuntimeRunRow:
        """Write the final row once; if the write fails the run stays open for a retry."""
        self._finished = True
        try:
            await self._persistence.save_run(final)
        except BaseException:
            self._finished = False
            raise
        self._row = final
        return final


async def start_runtime_run(
    options: RuntimeRunOptions | None = None,
    persistence: RuntimeRunPersistenceAdapter | None = None,
) -> RuntimeRunHandle:
    """Write a `running` row and return the handle that finishes it (in memory by default)."""
    options = options if options is not None else RuntimeRunOptions()
    if not isinstance(options, RuntimeRunOptions):
        raise InvalidArgumentError("must be RuntimeRunOptions", path="options")
    run_id = options.run_id if options.run_id is not None else uuid.uuid4().hex
    if not isinstance(run_id, str) or not run_id or "\x00" in run_id:
        raise InvalidArgumentError("must be a non-empty string without NUL", path="options.run_id")
    if options.price is not None and not isinstance(options.price, ModelPrice):
        raise InvalidArgumentError("must be a ModelPrice", path="options.price")
    try:
        metadata = loads_json(dumps_json(dict(options.metadata), root="options.metadata"))
    except DurableValueError as exc:
        raise InvalidArgumentError(exc.reason, path=exc.path) from None
    store = persistence if persistence is not None else InMemoryRuntimeRunPersistence()
    row = RuntimeRunRow(
        run_id=run_id,
        kind=options.kind,
        status="running",
        started_at_ms=_now_ms(),
        tenant_id=options.tenant_id,
        session_id=options.session_id,
        task_id=options.task_id,
        model=options.model,
        metadata=metadata,
    )
    await store.save_run(row)
    return RuntimeRunHandle(row, store, options.price)
