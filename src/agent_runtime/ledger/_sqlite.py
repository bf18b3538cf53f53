"""`SQLiteRuntimeRunPersistence`: ledger rows in a SQLite file (WAL), next to the durable store.

The schema is versioned (`_schema.py`); each call runs in a worker thread, one at a time, so a
file locked by another writer never stalls the event loop. A file still locked after
`busy_timeout_ms`, or a failing disk, is `StoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._sqlite import SQLiteTransaction, connect_sqlite, split_statements
from ..durable._migrations import check_applied
from ..errors import StoreUnavailableError
from ..jsoncanon import dumps_json, loads_json
from ._memory import check_id, check_list_args, check_row
from ._records import RuntimeRunRow
from ._schema import SCHEMA_TABLE, SQLITE_LEDGER_MIGRATIONS

__all__ = ["SQLiteRuntimeRunPersistence"]

_T = TypeVar("_T")


class SQLiteRuntimeRunPersistence:
    """Ledger rows in a SQLite file: `upsert(row)`, `get(id)`, `list(...)`, `close()`."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._lock = asyncio.Lock()
        try:
            self._db = connect_sqlite(self.path, busy_timeout_ms=busy_timeout_ms)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"cannot open run ledger {self.path}: {exc}") from exc
        try:
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreUnavailableError(f"cannot open run ledger {self.path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _tx(self, mode: str = "IMMEDIATE") -> SQLiteTransaction:
        return SQLiteTransaction(self._db, f"run ledger {self.path}", mode)

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"
            )
            applied = dict(db.execute(f"SELECT version, checksum FROM {SCHEMA_TABLE}"))
            for m in check_applied(SQLITE_LEDGER_MIGRATIONS, applied, f"run ledger {self.path}"):
                for statement in split_statements(m.sql):
                    db.execute(statement)
                db.execute(
                    f"INSERT INTO {SCHEMA_TABLE} VALUES (?, ?, ?, ?)",
                    (m.version, m.description, m.checksum, time.time_ns() // 1_000_000),
                )

    def schema_version(self) -> int:
        """The highest ledger migration applied to this file."""
        row = self._db.execute(f"SELECT MAX(version) FROM {SCHEMA_TABLE}").fetchone()
        return int(row[0] or 0)

    async def _run(self, op: Callable[[], _T]) -> _T:
        async with self._lock:
            return await asyncio.to_thread(op)

    async def upsert(self, row: RuntimeRunRow) -> None:
        """Insert or replace `row` by its id."""
        check_row(row)
        args = (
            row.id,
            row.workspace_id,
            row.task_id,
            row.session_id,
            row.status,
            row.started_at,
            row.completed_at,
            dumps_json(row.to_dict(), root="row").decode(),
        )

        def op() -> None:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO runtime_run_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, "
                    "task_id = excluded.task_id, session_id = excluded.session_id, "
                    "status = excluded.status, started_at = excluded.started_at, "
                    "completed_at = excluded.completed_at, row = excluded.row",
                    args,
                )

        await self._run(op)

    def _select(self, sql: str, args: tuple[Any, ...]) -> builtins.list[RuntimeRunRow]:
        with self._tx("DEFERRED") as db:
            found = db.execute(sql, args).fetchall()
        return [RuntimeRunRow.from_dict(loads_json(r[0])) for r in found]

    async def get(self, id: str) -> RuntimeRunRow | None:
        """The row with this id, or None."""
        key = check_id(id)
        rows = await self._run(
            lambda: self._select("SELECT row FROM runtime_run_ledger WHERE id = ?", (key,))
        )
        return rows[0] if rows else None

    async def list(
        self, *, workspace_id: str | None = None, limit: int = 100
    ) -> builtins.list[RuntimeRunRow]:
        """Rows (of one workspace when given), newest start first, at most `limit`."""
        check_list_args(workspace_id, limit)
        args: tuple[Any, ...]
        if workspace_id is None:
            sql, args = (
                "SELECT row FROM runtime_run_ledger ORDER BY started_at DESC, id DESC LIMIT ?",
                (limit,),
            )
        else:
            sql, args = (
                "SELECT row FROM runtime_run_ledger WHERE workspace_id = ? "
                "ORDER BY started_at DESC, id DESC LIMIT ?",
                (workspace_id, limit),
            )
        return await self._run(lambda: self._select(sql, args))

    async def close(self) -> None:
        """Close the file."""
        async with self._lock:
            self._db.close()
