"""SQLite plumbing shared by every SQLite-backed store: one way to open a file, one
transaction context manager."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Literal

from .errors import StoreUnavailableError

__all__ = ["SQLiteTransaction", "connect_sqlite", "split_statements"]


def connect_sqlite(
    path: str | os.PathLike[str],
    *,
    busy_timeout_ms: int = 5000,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
) -> sqlite3.Connection:
    """Open `path` in WAL mode with a busy timeout, in autocommit (transactions are explicit),
    usable from any thread; the parent folder is created. A file that cannot be created or
    opened is a `StoreUnavailableError` naming it; raises `sqlite3.Error` after that."""
    name = str(path)
    try:
        if name != ":memory:":
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            name, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreUnavailableError(f"cannot open SQLite file {name}: {reason}") from exc
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    _use_wal(db, busy_timeout_ms / 1000)
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script (a migration), in order; semicolons inside comments or
    strings do not split, and a last statement without one is kept."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _use_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode (it stays so). Switching needs the file to itself, and SQLite
    does not wait for that: two processes opening a new file at once can see `database is
    locked` here, so the switch is retried for the busy timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            row = db.execute("PRAGMA journal_mode").fetchone()
            if row is not None and str(row[0]).lower() == "wal":
                return
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SQLiteTransaction:
    """`BEGIN IMMEDIATE` (or `DEFERRED`, for a consistent read) ... `COMMIT`, rolled back on
    any exception. A cheap context manager: it sits on per-step hot paths. A busy database or
    a database error (disk full, I/O error) becomes a `StoreUnavailableError` naming `label`
    and the cause."""

    __slots__ = ("_db", "_label", "_mode")

    def __init__(self, db: sqlite3.Connection, label: str, mode: str = "IMMEDIATE") -> None:
        self._db = db
        self._label = label
        self._mode = mode

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute(f"BEGIN {self._mode}")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"{self._label} is busy: {exc}") from exc
        return self._db

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                exc = err
        # SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR do)
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailableError(f"{self._label}: {exc}") from exc
