"""The durable stores against a hand-written floor: the same commits with plain drivers.

Each row of issue 14's table that lives in the store layer, measured in one run, floor and
ours interleaved over ROUNDS rounds (medians), so drift and load hit both alike:

1. per-run fixed cost (a run with no step: create + claim, then end), PostgreSQL and SQLite
   NORMAL. Floor: one INSERT of the claimed run row, one fenced UPDATE ending it.
2. resume of a run with 100 completed steps, up to the 101st step (claim + load + replay),
   SQLite and PostgreSQL. Floor: the claim UPDATE and one SELECT of the completed steps in one
   transaction, each result decoded.
3. batched stream append, 100 events a transaction, SQLite FULL and PostgreSQL. Floor: the
   100 rows with plain `executemany` in one transaction, seq counted in memory (one writer).

Prints ours/floor for each row (for appends, events/s ours/floor) and exits 1 when a target is
missed. `python bench/store_floor.py sqlite` (or `postgres`) runs one half.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    PostgresDurableRunStore,
    SQLiteDurableRunStore,
    run_durable,
)

ROUNDS = 5
STEPS = 100
BATCH = 100
PG = os.environ.get("AGENT_RUNTIME_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MANIFEST = DurableRunManifest("bench", {"id": "bench", "intent": "bench"}, {"n": 1})
MANIFEST_TEXT = MANIFEST.encoded
LEASE_MS = 15_000

# (row, target, direction): "le" means ours/floor must be <= target (a cost), "ge" >= (a rate)
TARGETS: dict[str, tuple[float, str]] = {
    "per-run fixed cost, PostgreSQL": (1.5, "le"),
    "per-run fixed cost, SQLite NORMAL": (2.0, "le"),
    "resume of 100 steps to step 101, SQLite": (2.0, "le"),
    "resume of 100 steps to step 101, PostgreSQL": (3.0, "le"),
    "batched stream append 100/txn, SQLite FULL": (0.8, "ge"),
    "batched stream append 100/txn, PostgreSQL": (0.8, "ge"),
}

RUN_DDL = (
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, manifest_hash TEXT NOT NULL, "
    "manifest TEXT NOT NULL, status TEXT NOT NULL, created_at_ms BIGINT NOT NULL, "
    "updated_at_ms BIGINT NOT NULL, lease_holder TEXT, lease_expires_at_ms BIGINT, "
    "lease_epoch BIGINT NOT NULL, outcome TEXT, step_count INTEGER NOT NULL DEFAULT 0)"
)
STEP_DDL = (
    "CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, step_index INTEGER NOT NULL, "
    "intent TEXT NOT NULL, kind TEXT NOT NULL, input_hash TEXT, status TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, result TEXT, started_at_ms BIGINT, completed_at_ms BIGINT, "
    "PRIMARY KEY (run_id, step_index))"
)
STREAM_DDL = (
    "CREATE TABLE IF NOT EXISTS stream (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
    "event_id TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms BIGINT NOT NULL, "
    "PRIMARY KEY (run_id, seq), UNIQUE (run_id, event_id))"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def result_of(i: int) -> dict[str, Any]:
    return {"i": i, "text": "x" * 64}


def events_of(b: int) -> list[tuple[str, Any]]:
    return [(f"e{i}", {"i": i, "text": "tok"}) for i in range(b * BATCH, (b + 1) * BATCH)]


class _Reached(Exception):
    """Raised by the resumed task at step 101: the measured part is over."""


def resume_task(marks: list[float]) -> Callable[[DurableContext], Coroutine[Any, Any, None]]:
    """The 100-step task; resumed, it records when all 100 results are back, then stops the
    run as a crash would (cancelled: the run is left suspended, ready for the next round)."""

    async def task(ctx: DurableContext) -> None:
        for i in range(STEPS):
            await ctx.step(f"step-{i}", lambda i=i: result_of(i))
        marks.append(time.perf_counter())
        raise asyncio.CancelledError

    return task


async def resume_ours(store: Any, run_ids: list[str]) -> float:
    """Median seconds from `run_durable` to the 101st step of a suspended 100-step run."""
    marks: list[float] = []
    task = resume_task(marks)
    spans = []
    for run_id in run_ids:
        t0 = time.perf_counter()
        try:
            await run_durable(
                run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, worker_id="bench"
            )
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        spans.append(marks[-1] - t0)
    return statistics.median(spans)


async def fixed_ours(store: Any, runs: int) -> float:
    """Median seconds of `run_durable` over a task that takes no step."""

    async def task(ctx: DurableContext) -> int:
        return 0

    tag = secrets.token_hex(4)
    spans = []
    for r in range(runs):
        t0 = time.perf_counter()
        await run_durable(
            run_id=f"fixed-{tag}-{r}", manifest=MANIFEST, store=store, task_fn=task, worker_id="w"
        )
        spans.append(time.perf_counter() - t0)
    return statistics.median(spans)


async def append_ours(store: Any, batches: int) -> float:
    """Events per second appending `batches` batches of 100 to a fresh run's stream log."""
    run_id = f"append-{secrets.token_hex(4)}"
    payloads = [events_of(b) for b in range(batches)]
    t0 = time.perf_counter()
    for events in payloads:
        await store.append_stream_events(run_id, events)
    return batches * BATCH / (time.perf_counter() - t0)


# -- SQLite ------------------------------------------------------------------------------------


def sqlite_floor_db(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    for ddl in (RUN_DDL, STEP_DDL, STREAM_DDL):
        db.execute(ddl)
    return db


def sqlite_fixed_floor(db: sqlite3.Connection, runs: int) -> float:
    tag = secrets.token_hex(4)
    spans = []
    for r in range(runs):
        t0 = time.perf_counter()
        run_id = f"fixed-{tag}-{r}"
        now = now_ms()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, 'running', ?, ?, 'w', ?, 1, NULL, 0)",
            (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, now + LEASE_MS),
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE runs SET status = 'completed', outcome = ?, lease_holder = NULL, "
            "lease_expires_at_ms = NULL, updated_at_ms = ? "
            "WHERE run_id = ? AND lease_holder = 'w' AND lease_epoch = 1",
            (orjson.dumps(0).decode(), now_ms(), run_id),
        )
        db.execute("COMMIT")
        spans.append(time.perf_counter() - t0)
    return statistics.median(spans)


def sqlite_seed_floor(db: sqlite3.Connection, run_ids: list[str]) -> None:
    db.execute("BEGIN IMMEDIATE")
    for run_id in run_ids:
        now = now_ms()
        db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, 'suspended', ?, ?, NULL, NULL, 1, NULL, ?)",
            (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, STEPS),
        )
        db.executemany(
            "INSERT INTO steps VALUES (?, ?, ?, 'logic', NULL, 'completed', 1, ?, ?, ?)",
            [
                (run_id, i, f"step-{i}", orjson.dumps(result_of(i)).decode(), now, now)
                for i in range(STEPS)
            ],
        )
    db.execute("COMMIT")


def sqlite_resume_floor(db: sqlite3.Connection, run_ids: list[str]) -> float:
    spans = []
    for run_id in run_ids:
        t0 = time.perf_counter()
        now = now_ms()
        db.execute("BEGIN IMMEDIATE")
        (_epoch,) = db.execute(
            "UPDATE runs SET lease_holder = 'w', lease_expires_at_ms = ?, "
            "lease_epoch = lease_epoch + 1, status = 'running', updated_at_ms = ? "
            "WHERE run_id = ? AND (lease_holder IS NULL OR lease_expires_at_ms <= ?) "
            "RETURNING lease_epoch",
            (now + LEASE_MS, now, run_id, now),
        ).fetchone()
        rows = db.execute(
            "SELECT step_index, intent, kind, input_hash, attempts, result, started_at_ms, "
            "completed_at_ms FROM steps WHERE run_id = ? AND status = 'completed' "
            "ORDER BY step_index",
            (run_id,),
        ).fetchall()
        db.execute("COMMIT")
        done = {r[0]: (r[1], orjson.loads(r[5])) for r in rows}
        for i in range(STEPS):
            assert done[i][0] == f"step-{i}"
        spans.append(time.perf_counter() - t0)
        db.execute("UPDATE runs SET lease_holder = NULL WHERE run_id = ?", (run_id,))
    return statistics.median(spans)


def sqlite_append_floor(db: sqlite3.Connection, batches: int) -> float:
    run_id = f"append-{secrets.token_hex(4)}"
    payloads = [events_of(b) for b in range(batches)]
    seq = 0
    t0 = time.perf_counter()
    for events in payloads:
        now = now_ms()
        rows = []
        for event_id, payload in events:
            rows.append((run_id, seq, event_id, orjson.dumps(payload).decode(), now))
            seq += 1
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO stream VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    return batches * BATCH / (time.perf_counter() - t0)


async def sqlite_seed_ours(store: SQLiteDurableRunStore, run_ids: list[str]) -> None:
    marks: list[float] = []
    task = resume_task(marks)
    for run_id in run_ids:
        try:
            await run_durable(run_id=run_id, manifest=MANIFEST, store=store, task_fn=task)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def sqlite_rows(tmp: Path) -> dict[str, tuple[float, float]]:
    """{row: (floor, ours)} for the SQLite rows (seconds, or events/s for appends)."""
    normal_floor = sqlite_floor_db(tmp / "floor-normal.db", "NORMAL")
    full_floor = sqlite_floor_db(tmp / "floor-full.db", "FULL")
    normal = SQLiteDurableRunStore(tmp / "ours-normal.db", durability="normal")
    full = SQLiteDurableRunStore(tmp / "ours-full.db", durability="full")
    resume_ids = [f"resume-{k}" for k in range(60)]
    sqlite_seed_floor(normal_floor, resume_ids)
    await sqlite_seed_ours(normal, resume_ids)
    samples: dict[str, list[tuple[float, float]]] = {}

    def add(row: str, floor: float, ours: float) -> None:
        samples.setdefault(row, []).append((floor, ours))

    for _ in range(ROUNDS):
        add(
            "per-run fixed cost, SQLite NORMAL",
            sqlite_fixed_floor(normal_floor, 300),
            await fixed_ours(normal, 300),
        )
        add(
            "resume of 100 steps to step 101, SQLite",
            sqlite_resume_floor(normal_floor, resume_ids),
            await resume_ours(normal, resume_ids),
        )
        add(
            "batched stream append 100/txn, SQLite FULL",
            sqlite_append_floor(full_floor, 40),
            await append_ours(full, 40),
        )
    normal_floor.close()
    full_floor.close()
    await normal.close()
    await full.close()
    return {row: _medians(pairs) for row, pairs in samples.items()}


# -- PostgreSQL --------------------------------------------------------------------------------


async def pg_fixed_floor(conn: Any, runs: int) -> float:
    tag = secrets.token_hex(4)
    spans = []
    for r in range(runs):
        t0 = time.perf_counter()
        run_id = f"fixed-{tag}-{r}"
        now = now_ms()
        await conn.execute(
            "INSERT INTO runs VALUES (%s, %s, %s, 'running', %s, %s, 'w', %s, 1, NULL, 0)",
            (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, now + LEASE_MS),
        )
        await conn.execute(
            "UPDATE runs SET status = 'completed', outcome = %s, lease_holder = NULL, "
            "lease_expires_at_ms = NULL, updated_at_ms = %s "
            "WHERE run_id = %s AND lease_holder = 'w' AND lease_epoch = 1",
            (orjson.dumps(0).decode(), now_ms(), run_id),
        )
        spans.append(time.perf_counter() - t0)
    return statistics.median(spans)


async def pg_seed_floor(conn: Any, run_ids: list[str]) -> None:
    async with conn.transaction():
        for run_id in run_ids:
            now = now_ms()
            await conn.execute(
                "INSERT INTO runs VALUES (%s, %s, %s, 'suspended', %s, %s, NULL, NULL, 1, NULL, %s)",
                (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, STEPS),
            )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO steps VALUES (%s, %s, %s, 'logic', NULL, 'completed', 1, %s, "
                    "%s, %s)",
                    [
                        (run_id, i, f"step-{i}", orjson.dumps(result_of(i)).decode(), now, now)
                        for i in range(STEPS)
                    ],
                )


async def pg_resume_floor(conn: Any, run_ids: list[str]) -> float:
    spans = []
    for run_id in run_ids:
        t0 = time.perf_counter()
        now = now_ms()
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE runs SET lease_holder = 'w', lease_expires_at_ms = %s, "
                "lease_epoch = lease_epoch + 1, status = 'running', updated_at_ms = %s "
                "WHERE run_id = %s AND (lease_holder IS NULL OR lease_expires_at_ms <= %s) "
                "RETURNING lease_epoch",
                (now + LEASE_MS, now, run_id, now),
            )
            assert await cur.fetchone() is not None
            cur = await conn.execute(
                "SELECT step_index, intent, kind, input_hash, attempts, result, started_at_ms, "
                "completed_at_ms FROM steps WHERE run_id = %s AND status = 'completed' "
                "ORDER BY step_index",
                (run_id,),
            )
            rows = await cur.fetchall()
        done = {r[0]: (r[1], orjson.loads(r[5])) for r in rows}
        for i in range(STEPS):
            assert done[i][0] == f"step-{i}"
        spans.append(time.perf_counter() - t0)
        await conn.execute("UPDATE runs SET lease_holder = NULL WHERE run_id = %s", (run_id,))
    return statistics.median(spans)


async def pg_append_floor(conn: Any, batches: int) -> float:
    run_id = f"append-{secrets.token_hex(4)}"
    payloads = [events_of(b) for b in range(batches)]
    seq = 0
    t0 = time.perf_counter()
    for events in payloads:
        now = now_ms()
        rows = []
        for event_id, payload in events:
            rows.append((run_id, seq, event_id, orjson.dumps(payload).decode(), now))
            seq += 1
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany("INSERT INTO stream VALUES (%s, %s, %s, %s, %s)", rows)
    return batches * BATCH / (time.perf_counter() - t0)


async def pg_rows(dsn: str) -> dict[str, tuple[float, float]]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    for ddl in (RUN_DDL, STEP_DDL, STREAM_DDL):
        await conn.execute(ddl)
    store = await PostgresDurableRunStore.from_dsn(dsn, min_size=1, max_size=1)
    resume_ids = [f"resume-{k}" for k in range(40)]
    await pg_seed_floor(conn, resume_ids)
    marks: list[float] = []
    for run_id in resume_ids:
        try:
            await run_durable(
                run_id=run_id, manifest=MANIFEST, store=store, task_fn=resume_task(marks)
            )
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
    # warm both connections (prepared statements, caches)
    await pg_fixed_floor(conn, 20)
    await fixed_ours(store, 20)
    samples: dict[str, list[tuple[float, float]]] = {}

    def add(row: str, floor: float, ours: float) -> None:
        samples.setdefault(row, []).append((floor, ours))

    for _ in range(ROUNDS):
        add(
            "per-run fixed cost, PostgreSQL",
            await pg_fixed_floor(conn, 150),
            await fixed_ours(store, 150),
        )
        add(
            "resume of 100 steps to step 101, PostgreSQL",
            await pg_resume_floor(conn, resume_ids),
            await resume_ours(store, resume_ids),
        )
        add(
            "batched stream append 100/txn, PostgreSQL",
            await pg_append_floor(conn, 30),
            await append_ours(store, 30),
        )
    await conn.close()
    await store.close()
    return {row: _medians(pairs) for row, pairs in samples.items()}


class _Schema:
    """A throwaway PostgreSQL schema; entering gives a DSN whose search_path is there."""

    def __enter__(self) -> str:
        import psycopg

        self.name = f"bench_{secrets.token_hex(5)}"
        with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        sep = "&" if "?" in PG else "?"
        return f"{PG}{sep}options={quote(f'-csearch_path={self.name}')}"

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def _medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def report(rows: dict[str, tuple[float, float]]) -> bool:
    load = os.getloadavg()
    print(
        f"durable stores vs plain-driver floor, {ROUNDS} interleaved rounds, medians "
        f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    print(f"{'measure':<46} {'ours':>12} {'floor':>12} {'ratio':>7}  target")
    ok = True
    for row, (target, direction) in TARGETS.items():
        if row not in rows:
            continue
        floor, ours = rows[row]
        ratio = ours / floor
        if direction == "ge":
            shown = f"{ours / 1000:>7.1f}k ev/s {floor / 1000:>7.1f}k ev/s"
            met = ratio >= target
        else:
            shown = f"{ours * 1e6:>9.0f} µs {floor * 1e6:>9.0f} µs"
            met = ratio <= target
        unit = "x" if direction == "le" else " "
        sign = "≥" if direction == "ge" else "≤"
        mark = "" if met else "  MISSED"
        print(f"{row:<46} {shown} {ratio:>6.2f}{unit}  {sign}{target}{mark}")
        ok = ok and met
    print("targets met" if ok else "TARGET MISSED")
    return ok


def main(argv: list[str]) -> int:
    which = set(argv) or {"sqlite", "postgres"}
    rows: dict[str, tuple[float, float]] = {}
    if "sqlite" in which:
        with tempfile.TemporaryDirectory() as tmp:
            rows.update(asyncio.run(sqlite_rows(Path(tmp))))
    if "postgres" in which:
        with _Schema() as dsn:
            rows.update(asyncio.run(pg_rows(dsn)))
    return 0 if report(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
