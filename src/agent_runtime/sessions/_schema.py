"""Schemas of the SQL session stores, as versioned migrations (append only: a released
migration is never edited, its checksum is recorded when applied and checked on open)."""

from __future__ import annotations

from ..durable._migrations import Migration

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS"]

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "backend sessions and their events",
        """
CREATE TABLE backend_sessions (
    session_id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE backend_session_events (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX backend_session_events_session ON backend_session_events (session_id, id);
""",
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "backend sessions and their events",
        """
CREATE TABLE backend_sessions (
    session_id text PRIMARY KEY,
    backend text NOT NULL,
    status text NOT NULL,
    updated_at text NOT NULL,
    record text NOT NULL
);
CREATE TABLE backend_session_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text NOT NULL,
    type text NOT NULL,
    event text NOT NULL,
    created_at_ms bigint NOT NULL
);
CREATE INDEX backend_session_events_session ON backend_session_events (session_id, id);
""",
    ),
)
