"""Run retention and storage accounting over any durable store: delete runs idle for longer
than a period (`prune_runs`), and measure the bytes stored under a run-id prefix
(`storage_usage`), which the chat service uses for per-tenant quotas.

A run is pruned when its last update is older than the cutoff and no worker holds a live
lease on it (a running run whose worker died long ago goes too). Each batch is checked again
and deleted in one transaction, so a run resumed in the meantime is kept. SQLite and
PostgreSQL work in SQL (a prefix is an index range on SQLite); the memory and file stores
in their own structures.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ._sqlite import SQLiteTransaction, connect_sqlite
from .durable import (
    DurableRunStore,
    FileSystemDurableRunStore,
    InMemoryDurableRunStore,
    PostgresDurableRunStore,
    SQLiteDurableRunStore,
)
from .errors import ConfigurationError, InvalidArgumentError, StoreUnavailableError

__all__ = ["PruneResult", "parse_byte_size", "parse_duration", "prune_runs", "storage_usage"]

_BATCH = 100
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` (a bare number is seconds) as a positive timedelta;
    `InvalidArgumentError` otherwise."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise InvalidArgumentError(
            "must be a positive duration such as 30d, 12h, 90m or 45s", path="duration"
        )
    return timedelta(seconds=float(m.group(1)) * _SECONDS[(m.group(2) or "s").lower()])


def parse_byte_size(text: str) -> int:
    """`256MB`, `1GiB`, `500kb`, `1048576` as a positive number of bytes; `InvalidArgumentError`
    otherwise."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    size = int(float(m.group(1)) * _BYTES[(m.group(2) or "b").lower()]) if m else 0
    if size <= 0:
        raise InvalidArgumentError("must be a positive size such as 256MB or 1GiB", path="size")
    return size


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What `prune_runs` deleted (or, with `dry_run`, would delete)."""

    run_ids: tuple[str, ...]
    cutoff: datetime
    dry_run: bool = False

    @property
    def count(self) -> int:
        return len(self.run_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pruned": self.count,
            "run_ids": list(self.run_ids),
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
        }


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or "\x00" in prefix or len(prefix) > 512:
        raise InvalidArgumentError("must be a string of at most 512 characters", path="prefix")
    return prefix


def _upper(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (binary order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def prune_runs(
    store: DurableRunStore,
    *,
    older_than: timedelta,
    prefix: str = "",
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Delete every run under `prefix` (all runs by default) whose last update is older than
    `older_than` before `now` (default: the store's clock) and that no worker holds a live
    lease on, with its steps, events and stream log. `dry_run` only lists them.
    `ConfigurationError` for a store this cannot prune."""
    if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
        raise InvalidArgumentError("must be a positive timedelta", path="older_than")
    if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
        raise InvalidArgumentError("must be an aware datetime", path="now")
    _check_prefix(prefix)
    age_ms = int(older_than.total_seconds() * 1000)
    base_ms = _now_ms() if now is None else int(now.timestamp() * 1000)
    cutoff_ms = base_ms - age_ms
    driver = _driver(store)
    doomed = await driver.prune(prefix, cutoff_ms, dry_run, None if now is None else base_ms)
    cutoff = datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC)
    return PruneResult(run_ids=tuple(doomed), cutoff=cutoff, dry_run=dry_run)


async def storage_usage(store: DurableRunStore, prefix: str) -> int:
    """Bytes of JSON stored for runs whose id starts with `prefix` (manifests, outcomes, step
    results, events and stream log): what a per-tenant quota counts."""
    if not _check_prefix(prefix):
        raise InvalidArgumentError("must not be empty", path="prefix")
    return await _driver(store).usage(prefix)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as exc:
        raise StoreUnavailableError(f"{path} is not valid JSON: {exc}") from exc


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """The file store's per-run lock (an `flock` on the run's `.lock`), held by its writers."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class _Driver:
    async def prune(
        self, prefix: str, cutoff_ms: int, dry_run: bool, fixed_now_ms: int | None
    ) -> list[str]:
        """`fixed_now_ms`: the caller's `now` (None: the store's own clock decides)."""
        raise NotImplementedError

    async def usage(self, prefix: str) -> int:
        raise NotImplementedError


def _driver(store: Any) -> _Driver:
    if isinstance(store, SQLiteDurableRunStore):
        return _SQLite(store.path)
    if isinstance(store, PostgresDurableRunStore):
        return _Postgres(store)
    if isinstance(store, InMemoryDurableRunStore):
        return _Memory(store)
    if isinstance(store, FileSystemDurableRunStore):
        return _Files(store)
    raise ConfigurationError(
        f"retention and quotas need a SQLite, PostgreSQL, file or memory store, "
        f"not {type(store).__name__}"
    )


# -- SQLite: a connection of our own, in a worker thread ---------------------------------------

_SQLITE_CANDIDATES = (
    "SELECT run_id FROM durable_runs WHERE updated_at_ms < ? "
    "AND (status != 'running' OR lease_expires_at_ms IS NULL OR lease_expires_at_ms < ?)"
)
_CHILD_TABLES = ("durable_stream", "durable_steps", "durable_events")


class _SQLite(_Driver):
    def __init__(self, path: str) -> None:
        if path == ":memory:":
            raise ConfigurationError("retention and quotas need a SQLite file, not :memory:")
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = connect_sqlite(self.path)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self.path}: {exc}") from exc
        try:
            yield db
        finally:
            db.close()

    def _range(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        if not prefix:
            return "", ()
        return " AND run_id >= ? AND run_id < ?", (prefix, _upper(prefix))

    def _prune(self, prefix: str, cutoff_ms: int, dry_run: bool) -> list[str]:
        where, args = self._range(prefix)
        label = f"SQLite store {self.path}"
        doomed: list[str] = []
        with self._connect() as db:
            try:
                rows = db.execute(
                    _SQLITE_CANDIDATES + where, (cutoff_ms, _now_ms(), *args)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"{label}: {exc}") from exc
            ids = [r[0] for r in rows]
            if dry_run:
                return ids
            for start in range(0, len(ids), _BATCH):
                batch = ids[start : start + _BATCH]
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

    def _usage(self, prefix: str) -> int:
        where, args = self._range(prefix)
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
        with self._connect() as db:
            try:
                return sum(int(db.execute(q + where, args).fetchone()[0]) for q in queries)
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc

    async def prune(
        self, prefix: str, cutoff_ms: int, dry_run: bool, fixed_now_ms: int | None
    ) -> list[str]:
        return await asyncio.to_thread(self._prune, prefix, cutoff_ms, dry_run)

    async def usage(self, prefix: str) -> int:
        return await asyncio.to_thread(self._usage, prefix)


# -- PostgreSQL: through the store's pool, on the database clock -------------------------------

_PG_CANDIDATES = (
    "SELECT run_id FROM durable_runs WHERE updated_at_ms < COALESCE(%s, durable_now_ms() - %s) "
    "AND (status <> 'running' OR lease_expires_at_ms IS NULL "
    "OR lease_expires_at_ms < durable_now_ms()) AND starts_with(run_id, %s)"
)


class _Postgres(_Driver):
    def __init__(self, store: PostgresDurableRunStore) -> None:
        self.store = store

    async def prune(
        self, prefix: str, cutoff_ms: int, dry_run: bool, fixed_now_ms: int | None
    ) -> list[str]:
        age_ms = _now_ms() - cutoff_ms
        cutoff = None if fixed_now_ms is None else cutoff_ms  # else the database's clock

        async def candidates(conn: Any, _attempt: int) -> list[str]:
            cur = await conn.execute(_PG_CANDIDATES, (cutoff, age_ms, prefix))
            return [r[0] for r in await cur.fetchall()]

        ids: list[str] = await self.store._with_conn(candidates)
        if dry_run:
            return ids
        doomed: list[str] = []
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]

            async def delete(conn: Any, _attempt: int, batch: Sequence[str] = batch) -> list[str]:
                async with conn.transaction():
                    cur = await conn.execute(
                        "DELETE FROM durable_runs WHERE run_id IN ("
                        + _PG_CANDIDATES
                        + " AND run_id = ANY(%s) FOR UPDATE) RETURNING run_id",
                        (cutoff, age_ms, prefix, list(batch)),
                    )
                    kept = [r[0] for r in await cur.fetchall()]
                    for table in _CHILD_TABLES:
                        await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", (kept,))
                    return kept

            doomed.extend(await self.store._with_conn(delete))
        return doomed

    async def usage(self, prefix: str) -> int:
        sql = (
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

        async def op(conn: Any, _attempt: int) -> int:
            cur = await conn.execute(sql, (prefix,) * 4)
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return int(await self.store._with_conn(op))


# -- memory and files: their own structures ---------------------------------------------------


def _idle(status: str, updated_ms: int, lease_ms: int | None, cutoff_ms: int, now: int) -> bool:
    leased = status == "running" and lease_ms is not None and lease_ms >= now
    return updated_ms < cutoff_ms and not leased


class _Memory(_Driver):
    """Reads through the public API; deletes from the store's two dicts."""

    def __init__(self, store: InMemoryDurableRunStore) -> None:
        self.store = store

    async def _runs(self, prefix: str) -> list[Any]:
        runs = await self.store.list_runs(limit=2**31)
        return [r for r in runs if r.run_id.startswith(prefix)]

    async def prune(
        self, prefix: str, cutoff_ms: int, dry_run: bool, fixed_now_ms: int | None
    ) -> list[str]:
        now = _now_ms()
        ids = [
            r.run_id
            for r in await self._runs(prefix)
            if _idle(r.status, _ms(r.updated_at) or 0, _ms(r.lease_expires_at), cutoff_ms, now)
        ]
        if not dry_run:
            for rid in ids:
                self.store._runs.pop(rid, None)
                self.store._streams.pop(rid, None)
        return ids

    async def usage(self, prefix: str) -> int:
        total = 0
        for run in await self._runs(prefix):
            total += len(orjson.dumps(run.manifest)) + len(orjson.dumps(run.outcome))
            for step in await self.store.load_steps(run.run_id):
                total += len(orjson.dumps(step.result)) + len(orjson.dumps(step.error))
            for rec in await self.store.read_stream_events(run.run_id):
                total += len(orjson.dumps(rec.payload)) + len(rec.event_id)
        return total


def _ms(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1000)


class _Files(_Driver):
    def __init__(self, store: FileSystemDurableRunStore) -> None:
        self.store = store

    def _runs(self, prefix: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        try:
            folders = sorted(self.store._runs_dir.iterdir())
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.store.root}: {exc}") from exc
        for d in folders:
            run = _read_json(d / "run.json") if d.is_dir() else None
            if isinstance(run, dict) and str(run.get("run_id", "")).startswith(prefix):
                yield d, run

    def _is_idle(self, d: Path, run: dict[str, Any], cutoff_ms: int) -> bool:
        lease = _read_json(d / "lease.json")
        expires = lease.get("expires_at_ms") if isinstance(lease, dict) else None
        updated = max(
            int(run["updated_at_ms"]), _mtime_ms(d / "steps.jsonl"), _mtime_ms(d / "stream.jsonl")
        )
        return _idle(run["status"], updated, expires, cutoff_ms, _now_ms())

    def _prune(self, prefix: str, cutoff_ms: int, dry_run: bool) -> list[str]:
        doomed: list[str] = []
        for d, run in self._runs(prefix):
            if not self._is_idle(d, run, cutoff_ms):
                continue
            if not dry_run:
                with _flocked(d / ".lock"):  # the store's writers hold it too
                    fresh = _read_json(d / "run.json")
                    if not isinstance(fresh, dict) or not self._is_idle(d, fresh, cutoff_ms):
                        continue
                    grave = d.with_name(f".deleted-{d.name}-{os.getpid()}")
                    d.rename(grave)
                self.store._files.pop(run["run_id"], None)
                shutil.rmtree(grave, ignore_errors=True)
            doomed.append(run["run_id"])
        return doomed

    def _usage(self, prefix: str) -> int:
        total = 0
        for d, _run in self._runs(prefix):
            for f in d.iterdir():
                if f.name in ("run.json", "steps.jsonl", "events.jsonl", "stream.jsonl"):
                    with contextlib.suppress(OSError):
                        total += f.stat().st_size
        return total

    async def prune(
        self, prefix: str, cutoff_ms: int, dry_run: bool, fixed_now_ms: int | None
    ) -> list[str]:
        return await asyncio.to_thread(self._prune, prefix, cutoff_ms, dry_run)

    async def usage(self, prefix: str) -> int:
        return await asyncio.to_thread(self._usage, prefix)


def _mtime_ms(path: Path) -> int:
    try:
        return int(path.stat().st_mtime * 1000)
    except OSError:
        return 0
