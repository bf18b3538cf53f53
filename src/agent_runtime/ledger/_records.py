"""The ledger's records (ORIGINAL §12): a run's status, its cost, the row a persistence stores,
and the persistence protocol (`upsert(row)`, sync or async)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from .._wire import WireRecord

__all__ = [
    "RUNTIME_RUN_STATUSES",
    "RuntimeRunCost",
    "RuntimeRunPersistenceAdapter",
    "RuntimeRunRow",
    "RuntimeRunStatus",
    "is_finite_number",
]

RuntimeRunStatus: TypeAlias = Literal["running", "completed", "failed", "cancelled"]
RUNTIME_RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "cancelled")


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite."""
    return type(value) in (int, float) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class RuntimeRunCost(WireRecord):
    """What a run consumed: tokens in and out, USD, wall time (ms) and model calls."""

    tokens_in: int | float = 0
    tokens_out: int | float = 0
    cost_usd: int | float = 0
    wall_ms: int | float = 0
    llm_calls: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeRunRow(WireRecord):
    """One production run as a persistence stores it (camelCase `to_dict()`, the original's
    row): identity, status, summary, error, cost snapshot, ISO start and completion times."""

    id: str
    workspace_id: str
    session_id: str | None = None
    agent_id: str | None = None
    domain: str | None = None
    task_id: str
    scenario_id: str | None = None
    status: RuntimeRunStatus
    result_summary: str | None = None
    error: str | None = None
    cost: RuntimeRunCost
    started_at: str
    completed_at: str | None = None
    metadata: Mapping[str, Any] | None = None


@runtime_checkable
class RuntimeRunPersistenceAdapter(Protocol):
    """Where `persist()` writes a row: `upsert(row)` inserts or replaces it by `row.id`; it
    may be sync or async."""

    def upsert(self, row: RuntimeRunRow) -> Awaitable[None] | None: ...
