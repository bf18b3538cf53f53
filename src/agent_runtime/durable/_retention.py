"""Retention inside the stores: deleting idle runs and measuring the bytes under a run-id prefix.

A run is idle when its last update is older than the cutoff and no worker holds a live lease
on it (a running run whose worker died long ago is idle too). Each store's `_prune` and
`_usage` hooks (behind `StoreBase.prune_idle_runs` and `StoreBase.stored_bytes`) call the
function here for its kind with what the store holds: a file path, its connection runner, its
folder. Each batch is checked again as it is deleted, so a run resumed meanwhile stays.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._sqlite import SQLiteTransaction, connect_sqlite
from ..errors import StoreUnavailableError
from ._fsio import flocked, read_json

__all__ = [
    "files_prune",
    "files_usage",
    "idle",
    "postgres_prune",
    "postgres_usage",
    "sqlite_prune",
    "sqlite_usage",
]

BATCH = 100
# every table holding rows of a run besides durable_runs, deleted with it
_CHILD_TABLES = ("durable_stream", "durable_steps", "durable_events")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def idle(status: str, updated_ms: int, lease_ms: int | None, cutoff_ms: int, now: int) -> bool:
    """Last updated before `cutoff_ms` and not leased by a live worker at `now`."""
    leased = status == "running" and lease_ms is not None and lease_ms >= now
    return updated_ms < cutoff_ms and not leased


def _upper(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (binary order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# -- SQLite: a connection of its own, run in a worker thread ----------------------------------

_SQLITE_CANDIDATES = (
    "SELECT run_id FROM durable_runs WHERE updated_at_ms < ? "
    "AND (status != 'running' OR lease_expires_at_ms IS NULL OR lease_expires_at_ms < ?)"
)


@contextlib.contextmanager
def _sqlite(path: str) -> Iterator[sqlite3.Connection]:
    try:
        db = connect_sqlite(path)
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite store {path}: {exc}") from exc
    try:
        yield db
    finally:
        db.close()


def _sqlite_range(prefix: str) -> tuple[str, tuple[str, ...]]:
    """A prefix as an index range on run_id."""
    if not prefix:
        return "", ()
    return " AND run_id >= ? AND run_id < ?", (prefix, _upper(prefix))


def sqlite_prune(path: str, prefix: str, cutoff_ms: int, dry_run: bool) -> list[str]:
    """Blocking: the SQLite store at `path` (its next seq is its log's length, so deleting
    the log restarts a reused run id at 0)."""
    where, args = _sqlite_range(prefix)
    label = f"SQLite store {path}"
    doomed: list[str] = []
    with _sqlite(path) as db:
        try:
            rows = db.execute(_SQLITE_CANDIDATES + where, (cutoff_ms, _now_ms(), *args)).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{label}: {exc}") from exc
        ids = [r[0] for r in rows]
        if dry_run:
            return ids
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            marks = ",".join("?" * len(batch))
            with SQLiteTransaction(db, label) as tx:
                # checked again under the write lock: a run resumed meanwhile stays
                kept = [
                    r[0]
                    for r in tx.execute(
                        _SQLITE_CANDIDATES + f" AND run_id IN ({marks})",
                        (cutoff_ms, _now_ms(), *batch),
                    )
                ]
                if kept:
                    marks = ",".join("?" * len(kept))
                    for table in (*_CHILD_TABLES, "durable_runs"):
                        tx.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", kept)
            doomed.extend(kept)
    return doomed


def sqlite_usage(path: str, prefix: str) -> int:
    """Blocking: JSON bytes under `prefix` in the SQLite store at `path`."""
    where, args = _sqlite_range(prefix)
    where = where.replace(" AND ", " WHERE ", 1)
    queries = (
        "SELECT COALESCE(SUM(length(CAST(manifest AS BLOB)) "
        "+ COALESCE(length(CAST(outcome AS BLOB)), 0)), 0) FROM durable_runs",
        "SELECT COALESCE(SUM(COALESCE(length(CAST(result AS BLOB)), 0) "
        "+ COALESCE(length(CAST(error AS BLOB)), 0)), 0) FROM durable_steps",
        "SELECT COALESCE(SUM(length(CAST(payload AS BLOB))), 0) FROM durable_events",
        "SELECT COALESCE(SUM(length(CAST(payload AS BLOB)) + length(event_id)), 0) "
        "FROM durable_stream",
    )
    with _sqlite(path) as db:
        try:
            return sum(int(db.execute(q + where, args).fetchone()[0]) for q in queries)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite store {path}: {exc}") from exc


# -- PostgreSQL: through the store's connection runner, on the database clock -----------------

WithConn = Callable[[Callable[[Any, int], Awaitable[Any]]], Awaitable[Any]]

_PG_CANDIDATES = (
    "SELECT run_id FROM durable_runs WHERE updated_at_ms < COALESCE(%s, durable_now_ms() - %s) "
    "AND (status <> 'running' OR lease_expires_at_ms IS NULL "
    "OR lease_expires_at_ms < durable_now_ms()) AND starts_with(run_id, %s)"
)
# the stream head (next seq) goes first: an appender holding it is waited for, so its rows are
# committed before the log is deleted, and one arriving after waits for this commit and then
# starts the run's log afresh at seq 0
_PG_CHILD_TABLES = ("durable_stream_heads", *_CHILD_TABLES)


async def postgres_prune(
    with_conn: WithConn, prefix: str, age_ms: int, cutoff_ms: int | None, dry_run: bool
) -> list[str]:
    """`cutoff_ms` None: idle for `age_ms` on the database's clock."""

    async def candidates(conn: Any, _attempt: int) -> list[str]:
        cur = await conn.execute(_PG_CANDIDATES, (cutoff_ms, age_ms, prefix))
        return [r[0] for r in await cur.fetchall()]

    ids: list[str] = await with_conn(candidates)
    if dry_run:
        return ids
    doomed: list[str] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]

        async def delete(conn: Any, _attempt: int, batch: Sequence[str] = batch) -> list[str]:
            async with conn.transaction():
                cur = await conn.execute(
                    "DELETE FROM durable_runs WHERE run_id IN ("
                    + _PG_CANDIDATES
                    + " AND run_id = ANY(%s) FOR UPDATE) RETURNING run_id",
                    (cutoff_ms, age_ms, prefix, list(batch)),
                )
                kept = [r[0] for r in await cur.fetchall()]
                for table in _PG_CHILD_TABLES:
                    await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", (kept,))
                return kept

        doomed.extend(await with_conn(delete))
    return doomed


_PG_USAGE = (
    "SELECT (SELECT COALESCE(SUM(octet_length(manifest) + "
    "COALESCE(octet_length(outcome), 0)), 0) FROM durable_runs "
    "WHERE starts_with(run_id, %s)) + "
    "(SELECT COALESCE(SUM(COALESCE(octet_length(result), 0) + "
    "COALESCE(octet_length(error), 0)), 0) FROM durable_steps "
    "WHERE starts_with(run_id, %s)) + "
    "(SELECT COALESCE(SUM(octet_length(payload)), 0) FROM durable_events "
    "WHERE starts_with(run_id, %s)) + "
    "(SELECT COALESCE(SUM(octet_length(payload) + octet_length(event_id)), 0) "
    "FROM durable_stream WHERE starts_with(run_id, %s))"
)


async def postgres_usage(with_conn: WithConn, prefix: str) -> int:
    async def op(conn: Any, _attempt: int) -> int:
        cur = await conn.execute(_PG_USAGE, (prefix,) * 4)
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    return int(await with_conn(op))


# -- files: a folder per run ---------------------------------------------------------------


def _runs(runs_dir: Path, prefix: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    try:
        folders = sorted(runs_dir.iterdir())
    except OSError as exc:
        raise StoreUnavailableError(f"file store {runs_dir}: {exc}") from exc
    for d in folders:
        run = read_json(d / "run.json") if d.is_dir() else None
        if isinstance(run, dict) and str(run.get("run_id", "")).startswith(prefix):
            yield d, run


def _mtime_ms(path: Path) -> int:
    try:
        return int(path.stat().st_mtime * 1000)
    except OSError:
        return 0


def _files_idle(d: Path, run: dict[str, Any], cutoff_ms: int) -> bool:
    lease = read_json(d / "lease.json")
    expires = lease.get("expires_at_ms") if isinstance(lease, dict) else None
    updated = max(
        int(run["updated_at_ms"]), _mtime_ms(d / "steps.jsonl"), _mtime_ms(d / "stream.jsonl")
    )
    return idle(run["status"], updated, expires, cutoff_ms, _now_ms())


def files_prune(
    runs_dir: Path, forget: Callable[[str], None], prefix: str, cutoff_ms: int, dry_run: bool
) -> list[str]:
    """Blocking: the run folders under `runs_dir`; `forget(run_id)` drops what the store
    caches of a deleted run."""
    doomed: list[str] = []
    for d, run in _runs(runs_dir, prefix):
        if not _files_idle(d, run, cutoff_ms):
            continue
        if not dry_run:
            with flocked(d / ".lock"):  # the store's writers hold it too
                fresh = read_json(d / "run.json")
                if not isinstance(fresh, dict) or not _files_idle(d, fresh, cutoff_ms):
                    continue
                grave = d.with_name(f".deleted-{d.name}-{os.getpid()}")
                d.rename(grave)
            forget(run["run_id"])
            shutil.rmtree(grave, ignore_errors=True)
        doomed.append(run["run_id"])
    return doomed


def files_usage(runs_dir: Path, prefix: str) -> int:
    """Blocking: the bytes of the run folders' record files under `prefix`."""
    total = 0
    for d, _run in _runs(runs_dir, prefix):
        for f in d.iterdir():
            if f.name in ("run.json", "steps.jsonl", "events.jsonl", "stream.jsonl"):
                with contextlib.suppress(OSError):
                    total += f.stat().st_size
    return total
