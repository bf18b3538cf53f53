"""`SQLiteRuntimeSessionStore`: sessions and their events in one SQLite file (WAL).

A session is one row holding its wire JSON; each event is one row holding `to_dict()` as JSON,
read back with `parse_runtime_stream_event`. Every write is a single statement (atomic on its
own), so an append costs one commit.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from .._sqlite import SQLiteTransaction, connect_sqlite, split_statements
from ..durable._migrations import check_applied
from ..errors import StoreUnavailableError
from ..types import RuntimeSession, RuntimeStreamEvent
from ._checks import (
    check_event,
    check_id,
    check_session,
    decode_event,
    decode_session,
    encode_event,
    encode_session,
)
from ._migrations import SCHEMA_INFO_TABLE
from ._schema import SQLITE_MIGRATIONS

__all__ = ["SQLiteRuntimeSessionStore"]

_PUT = (
    "INSERT INTO backend_sessions (session_id, backend, status, updated_at, record) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET backend = excluded.backend, "
    "status = excluded.status, updated_at = excluded.updated_at, record = excluded.record"
)
_APPEND = (
    "INSERT INTO backend_session_events (session_id, type, event, created_at_ms) "
    "VALUES (?, ?, ?, ?)"
)


class SQLiteRuntimeSessionStore:
    """An async `RuntimeSessionEventLog` in a SQLite file, safe across processes on one host;
    `get` and `list_events` return equal copies of what was stored."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._label = f"SQLite session store {self.path}"
        try:
            self._db = connect_sqlite(self.path, busy_timeout_ms=busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open {self._label}: {exc}") from exc
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        with SQLiteTransaction(self._db, self._label) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_INFO_TABLE} ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "checksum TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"
            )
            applied = dict(db.execute(f"SELECT version, checksum FROM {SCHEMA_INFO_TABLE}"))
            for m in check_applied(SQLITE_MIGRATIONS, applied, self._label):
                # statement by statement: executescript() would COMMIT mid-transaction
                for statement in split_statements(m.sql):
                    db.execute(statement)
                db.execute(
                    f"INSERT INTO {SCHEMA_INFO_TABLE} VALUES (?, ?, ?, ?)",
                    (m.version, m.description, m.checksum, time.time_ns() // 1_000_000),
                )

    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        row = self._run("SELECT MAX(version) FROM " + SCHEMA_INFO_TABLE, ()).fetchone()
        return int(row[0] or 0)

    def _run(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self._label}: {exc}") from exc

    async def get(self, session_id: str) -> RuntimeSession | None:
        """A copy of the session stored under `session_id`, or None."""
        check_id(session_id, "SQLiteRuntimeSessionStore.get", sql=True)
        row = self._run(
            "SELECT record FROM backend_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else decode_session(row[0])

    async def put(self, session: RuntimeSession) -> None:
        """Store `session` under `session.id`, replacing the previous one."""
        check_session(session, "SQLiteRuntimeSessionStore.put")
        check_id(session.id, "SQLiteRuntimeSessionStore.put", sql=True)
        record = encode_session(session)
        self._run(_PUT, (session.id, session.backend, session.status, session.updated_at, record))

    async def append_event(self, session_id: str, event: RuntimeStreamEvent) -> None:
        """Append `event` (as its wire JSON) to the session's log."""
        check_id(session_id, "SQLiteRuntimeSessionStore.append_event", sql=True)
        check_event(event, "SQLiteRuntimeSessionStore.append_event")
        text = encode_event(event)
        self._run(_APPEND, (session_id, event.TYPE, text, time.time_ns() // 1_000_000))

    async def list_events(self, session_id: str) -> list[RuntimeStreamEvent]:
        """The session's events in append order (empty when unknown)."""
        check_id(session_id, "SQLiteRuntimeSessionStore.list_events", sql=True)
        rows = self._run(
            "SELECT event FROM backend_session_events WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [decode_event(text) for (text,) in rows]

    async def close(self) -> None:
        """Close the file (later calls raise `StoreUnavailableError`)."""
        self._db.close()
