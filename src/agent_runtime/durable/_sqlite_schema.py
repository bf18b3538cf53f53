"""SQLite schema of the durable store, as versioned migrations (append only)."""

from __future__ import annotations

from ._migrations import Migration

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps, events, stream log",
        """
-- no secondary index on runs: each one costs a WAL page per run start and end; listing
-- walks the rowid (creation order)
CREATE TABLE durable_runs (
    run_id TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    project_id TEXT NOT NULL,
    scenario_id TEXT,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    lease_holder TEXT,
    lease_expires_at_ms INTEGER,
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    step_count INTEGER NOT NULL DEFAULT 0,
    handle TEXT
);
CREATE TABLE durable_steps (
    run_id TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    intent TEXT NOT NULL,
    kind TEXT NOT NULL,
    input_hash TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    started_at_ms INTEGER,
    completed_at_ms INTEGER,
    PRIMARY KEY (run_id, step_index)
) WITHOUT ROWID;
CREATE TABLE durable_events (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE durable_stream (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX durable_stream_event_id ON durable_stream (run_id, event_id);
""",
    ),
    Migration(
        2,
        "a recorded step keeps its intent (divergence is refused by the database too)",
        """
CREATE TRIGGER durable_steps_intent_fixed BEFORE UPDATE OF intent ON durable_steps
WHEN NEW.intent IS NOT OLD.intent
BEGIN
    SELECT RAISE(ABORT, 'step_divergence: a recorded step keeps its intent');
END;
""",
    ),
    Migration(
        3,
        "a completed step is final (refused by the database too)",
        """
CREATE TRIGGER durable_steps_completed_final BEFORE UPDATE ON durable_steps
WHEN OLD.status = 'completed'
BEGIN
    SELECT RAISE(ABORT, 'step_completed: a completed step is final');
END;
""",
    ),
    Migration(
        4,
        "no change here (PostgreSQL's version 4 rewrites a function): one schema version for both",
        """
SELECT 1;
""",
    ),
    Migration(
        5,
        "no change here (PostgreSQL's version 5 adds a fast stream append): one schema version "
        "for both",
        """
SELECT 1;
""",
    ),
)

DURABLE_SCHEMA_SQL = "".join(m.sql for m in SQLITE_MIGRATIONS)
"""The SQLite DDL of the current durable schema, as one string (every migration in order)."""
