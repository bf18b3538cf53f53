"""`SQLiteConversationHistory`: conversations in one SQLite file (WAL), next to the durable
store (tables `runtime_sessions` and `runtime_session_messages`).

Each write is one `BEGIN IMMEDIATE` transaction that checks the owner and writes, so an
append from another process is never interleaved with the ownership check.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._sqlite import SQLiteTransaction, connect_sqlite
from ..errors import StoreUnavailableError
from ..jsoncanon import loads_json
from ._records import (
    Conversation,
    advancing,
    check_limit,
    check_owner,
    check_owner_args,
    encode_messages,
    encode_metadata,
    encode_patch,
    merge_metadata,
    ms_to_dt,
    now_ms,
)

__all__ = ["SQLiteConversationHistory"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runtime_sessions ("
    " session_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT,"
    " created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,"
    " metadata TEXT NOT NULL, message_count INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS runtime_sessions_owner"
    " ON runtime_sessions (tenant_id, user_id, updated_at_ms)",
    "CREATE TABLE IF NOT EXISTS runtime_session_messages ("
    " session_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,"
    " created_at_ms INTEGER NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID",
)
_COLUMNS = "session_id, tenant_id, user_id, created_at_ms, updated_at_ms, metadata, message_count"

Row = tuple[Any, ...]


class SQLiteConversationHistory:
    """A `ConversationHistoryStore` in a SQLite file; safe across processes on one host."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        try:
            self._db = connect_sqlite(self.path, busy_timeout_ms=busy_timeout_ms)
            with self._tx() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite conversation history {self.path}: {exc}"
            ) from exc

    def _tx(self, mode: str = "IMMEDIATE") -> SQLiteTransaction:
        """A write transaction (IMMEDIATE), or with mode DEFERRED a consistent read snapshot."""
        return SQLiteTransaction(self._db, f"SQLite conversation history {self.path}", mode)

    @staticmethod
    def _owned(
        db: sqlite3.Connection, session_id: str, tenant_id: str, user_id: str | None
    ) -> Row | None:
        row: Row | None = db.execute(
            f"SELECT {_COLUMNS} FROM runtime_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is not None:
            check_owner(session_id, row[1], row[2], tenant_id, user_id)
        return row

    @staticmethod
    def _insert(
        db: sqlite3.Connection, session_id: str, tenant_id: str, user_id: str | None, meta: str
    ) -> None:
        now = now_ms()
        db.execute(
            f"INSERT INTO runtime_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0)",
            (session_id, tenant_id, user_id, now, now, meta),
        )

    @staticmethod
    def _record(db: sqlite3.Connection, row: Row, *, with_messages: bool = True) -> Conversation:
        messages: tuple[dict[str, Any], ...] = ()
        if with_messages:
            messages = tuple(
                loads_json(m)
                for (m,) in db.execute(
                    "SELECT message FROM runtime_session_messages WHERE session_id = ? "
                    "ORDER BY seq",
                    (row[0],),
                )
            )
        return Conversation(
            session_id=row[0],
            tenant_id=row[1],
            user_id=row[2],
            created_at=ms_to_dt(row[3]),
            updated_at=ms_to_dt(row[4]),
            metadata=loads_json(row[5]),
            messages=messages,
            message_count=row[6],
        )

    def _reload(self, db: sqlite3.Connection, session_id: str) -> Conversation:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM runtime_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return self._record(db, row)

    async def get_or_create(
        self,
        session_id: str,
        *,
        tenant_id: str,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        meta = encode_metadata(metadata)
        with self._tx() as db:
            if self._owned(db, session_id, tenant_id, user_id) is None:
                self._insert(db, session_id, tenant_id, user_id, meta)
            return self._reload(db, session_id)

    async def load(
        self, session_id: str, *, tenant_id: str, user_id: str | None = None
    ) -> Conversation | None:
        check_owner_args(session_id, tenant_id, user_id)
        with self._tx("DEFERRED") as db:
            row = self._owned(db, session_id, tenant_id, user_id)
            return None if row is None else self._record(db, row)

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        encoded = encode_messages(messages)
        with self._tx() as db:
            self._append(db, session_id, encoded, tenant_id, user_id)
            return self._reload(db, session_id)

    async def add_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> int:
        check_owner_args(session_id, tenant_id, user_id)
        encoded = encode_messages(messages)
        with self._tx() as db:
            return self._append(db, session_id, encoded, tenant_id, user_id)

    def _append(
        self,
        db: sqlite3.Connection,
        session_id: str,
        encoded: list[str],
        tenant_id: str,
        user_id: str | None,
    ) -> int:
        """Append `encoded` in the open transaction; the session's message count after."""
        row = self._owned(db, session_id, tenant_id, user_id)
        if row is None:
            self._insert(db, session_id, tenant_id, user_id, "{}")
            count = 0
        else:
            count = row[6]
        if encoded:
            now = now_ms()
            db.executemany(
                "INSERT INTO runtime_session_messages VALUES (?, ?, ?, ?)",
                [(session_id, count + i, m, now) for i, m in enumerate(encoded)],
            )
            db.execute(
                "UPDATE runtime_sessions SET message_count = ?, "
                "updated_at_ms = MAX(updated_at_ms, ?) WHERE session_id = ?",
                (count + len(encoded), now, session_id),
            )
        return count + len(encoded)

    async def advance_metadata(
        self,
        session_id: str,
        *,
        at_least: Mapping[str, int],
        defaults: Mapping[str, Any] | None = None,
        tenant_id: str,
        user_id: str | None = None,
    ) -> None:
        check_owner_args(session_id, tenant_id, user_id)
        change = advancing(at_least, defaults)
        with self._tx() as db:
            self._change_metadata(db, session_id, tenant_id, user_id, change)

    async def update_metadata(
        self,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        patch = encode_patch(metadata)
        with self._tx() as db:
            self._change_metadata(
                db, session_id, tenant_id, user_id, lambda current: merge_metadata(current, patch)
            )
            return self._reload(db, session_id)

    def _change_metadata(
        self,
        db: sqlite3.Connection,
        session_id: str,
        tenant_id: str,
        user_id: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> None:
        """In the open transaction: the owner-checked session (created when new) gets
        `change(its metadata)`, unless that is None."""
        row = self._owned(db, session_id, tenant_id, user_id)
        if row is None:
            self._insert(db, session_id, tenant_id, user_id, "{}")
        merged = change({} if row is None else loads_json(row[5]))
        if merged is not None:
            db.execute(
                "UPDATE runtime_sessions SET metadata = ?, updated_at_ms = MAX(updated_at_ms, ?) "
                "WHERE session_id = ?",
                (encode_metadata(merged), now_ms(), session_id),
            )

    async def list_sessions(
        self, *, tenant_id: str, user_id: str | None = None, limit: int = 50
    ) -> list[Conversation]:
        check_owner_args("-", tenant_id, user_id)
        check_limit(limit)
        if user_id is None:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM runtime_sessions WHERE tenant_id = ? "
                "ORDER BY updated_at_ms DESC, session_id DESC LIMIT ?",
                (tenant_id, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM runtime_sessions WHERE tenant_id = ? AND user_id = ? "
                "ORDER BY updated_at_ms DESC, session_id DESC LIMIT ?",
                (tenant_id, user_id, limit),
            ).fetchall()
        return [self._record(self._db, r, with_messages=False) for r in rows]

    async def delete(self, session_id: str, *, tenant_id: str, user_id: str | None = None) -> bool:
        check_owner_args(session_id, tenant_id, user_id)
        with self._tx() as db:
            if self._owned(db, session_id, tenant_id, user_id) is None:
                return False
            db.execute("DELETE FROM runtime_session_messages WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM runtime_sessions WHERE session_id = ?", (session_id,))
            return True

    async def close(self) -> None:
        self._db.close()
