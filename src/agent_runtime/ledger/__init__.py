"""The production-run ledger (ORIGINAL §12): `start_runtime_run` counts a run's model calls and
cost, completes it once, and persists its row through a persistence (`upsert(row)`): in memory,
SQLite or PostgreSQL, each with `get`/`list` to read rows back."""

from ._memory import InMemoryRuntimeRunPersistence
from ._postgres import PostgresRuntimeRunPersistence
from ._records import (
    RUNTIME_RUN_STATUSES,
    RuntimeRunCost,
    RuntimeRunPersistenceAdapter,
    RuntimeRunRow,
    RuntimeRunStatus,
)
from ._run import RuntimeRunHandle, start_runtime_run
from ._sqlite import SQLiteRuntimeRunPersistence

__all__ = [
    "RUNTIME_RUN_STATUSES",
    "InMemoryRuntimeRunPersistence",
    "PostgresRuntimeRunPersistence",
    "RuntimeRunCost",
    "RuntimeRunHandle",
    "RuntimeRunPersistenceAdapter",
    "RuntimeRunRow",
    "RuntimeRunStatus",
    "SQLiteRuntimeRunPersistence",
    "start_runtime_run",
]
