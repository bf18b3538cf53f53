"""The ledger's SQL schema as versioned migrations (append only), SQLite and PostgreSQL."""

from __future__ import annotations

from ..durable._migrations import Migration

__all__ = ["POSTGRES_LEDGER_MIGRATIONS", "SCHEMA_TABLE", "SQLITE_LEDGER_MIGRATIONS"]

SCHEMA_TABLE = "runtime_run_ledger_schema"
"""Which migrations a database has applied (version, description, checksum, applied_at_ms)."""

SQLITE_LEDGER_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runtime run rows",
        """
CREATE TABLE runtime_run_ledger (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    row TEXT NOT NULL
);
CREATE INDEX runtime_run_ledger_workspace ON runtime_run_ledger (workspace_id, started_at);
CREATE INDEX runtime_run_ledger_started ON runtime_run_ledger (started_at);
""",
    ),
)

POSTGRES_LEDGER_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runtime run rows",
        """
CREATE TABLE runtime_run_ledger (
    id text PRIMARY KEY,
    workspace_id text NOT NULL,
    task_id text NOT NULL,
    session_id text,
    status text NOT NULL,
    started_at text NOT NULL,
    completed_at text,
    row text NOT NULL
);
CREATE INDEX runtime_run_ledger_workspace ON runtime_run_ledger (workspace_id, started_at DESC);
CREATE INDEX runtime_run_ledger_started ON runtime_run_ledger (started_at DESC);
""",
    ),
)
