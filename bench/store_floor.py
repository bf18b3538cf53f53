"""The durable stores against a hand-written floor: the same commits with plain drivers.

Each row of issue 14's table that lives in the store layer, floor and ours measured in one run
and interleaved operation by operation (a floor run, then one of ours, and so on), so a burst
of load on this shared machine hits both alike; each side's median over ROUNDS rounds:

1. per-run fixed cost: `run_durable` over a task that takes no step (create + claim, then
   end), PostgreSQL and SQLite NORMAL. Floor: one INSERT of the claimed run row, one fenced
   UPDATE ending it, each its own transaction. Also shown (no target): the two store calls
   alone, without `run_durable`'s child task and heartbeat.
2. resume of a run with 100 completed steps, up to its 101st step (claim, load, replay of
   100 results into the task), SQLite NORMAL and PostgreSQL. Floor: the claim UPDATE and one
   SELECT of the completed steps (a transaction on SQLite, two statements on PostgreSQL),
   every result decoded. Also shown (no target): `start_or_resume` alone (claim + load).
3. batched stream append, 100 events a transaction, SQLite FULL and PostgreSQL. Floor: the
   100 rows with `executemany` in one transaction, seq counted in memory (one writer).

Prints ours/floor for each row (for appends, events/s ours/floor) and exits 1 when a target
is missed. `python bench/store_floor.py sqlite` (or `postgres`) runs one half.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
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

# row -> (target, "le": ours/floor must be <= target (a cost), "ge": >= target (a rate));
# a None target is shown for information
TARGETS: dict[str, tuple[float | None, str]] = {
    "per-run fixed cost, PostgreSQL": (1.5, "le"),
    "  store calls only (no run_durable), PostgreSQL": (None, "le"),
    "per-run fixed cost, SQLite NORMAL": (2.0, "le"),
    "  store calls only (no run_durable), SQLite": (None, "le"),
    "resume of 100 steps to step 101, SQLite": (2.0, "le"),
    "  claim + load only (start_or_resume), SQLite": (None, "le"),
    "resume of 100 steps to step 101, PostgreSQL": (3.0, "le"),
    "  claim + load only (start_or_resume), PostgreSQL": (None, "le"),
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
CLAIM_SQL = (
    "UPDATE runs SET lease_holder = 'w', lease_expires_at_ms = {p}, "
    "lease_epoch = lease_epoch + 1, status = 'running', updated_at_ms = {p} "
    "WHERE run_id = {p} AND (lease_holder IS NULL OR lease_expires_at_ms <= {p}) "
    "RETURNING lease_epoch"
)
STEPS_SQL = (
    "SELECT step_index, intent, kind, input_hash, attempts, result, started_at_ms, "
    "completed_at_ms FROM steps WHERE run_id = {p} AND status = 'completed' "
    "ORDER BY step_index"
)
END_SQL = (
    "UPDATE runs SET status = 'completed', outcome = {p}, lease_holder = NULL, "
    "lease_expires_at_ms = NULL, updated_at_ms = {p} "
    "WHERE run_id = {p} AND lease_holder = 'w' AND lease_epoch = 1"
)

Op = Callable[[int], Awaitable[float]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def result_of(i: int) -> dict[str, Any]:
    return {"i": i, "text": "x" * 64}


def events_of(b: int) -> list[tuple[str, Any]]:
    return [(f"e{i}", {"i": i, "text": "tok"}) for i in range(b * BATCH, (b + 1) * BATCH)]


def floor_results(rows: list[Any]) -> None:
    done = {r[0]: (r[1], orjson.loads(r[5])) for r in rows}
    for i in range(STEPS):
        assert done[i][0] == f"step-{i}"


async def interleaved(floor: Op, ours: Op, n: int) -> tuple[float, float]:
    """Medians of `n` floor and `n` ours operations, run alternately."""
    f: list[float] = []
    o: list[float] = []
    for k in range(n):
        f.append(await floor(k))
        o.append(await ours(k))
    return statistics.median(f), statistics.median(o)


# -- our side: the same on every store -----------------------------------------------------------


def resume_task(marks: list[float]) -> Callable[[DurableContext], Coroutine[Any, Any, None]]:
    """The 100-step task; resumed, it records when all 100 results are back, then stops the
    run as a crash would (cancelled: the run is left suspended, ready for the next round)."""

    async def task(ctx: DurableContext) -> None:
        for i in range(STEPS):
            await ctx.step(f"step-{i}", lambda i=i: result_of(i))
        marks.append(time.perf_counter())
        raise asyncio.CancelledError

    return task


def ours_resume(store: Any, run_ids: list[str]) -> Op:
    marks: list[float] = []
    task = resume_task(marks)

    async def op(k: int) -> float:
        t0 = time.perf_counter()
        try:
            await run_durable(
                run_id=run_ids[k % len(run_ids)],
                manifest=MANIFEST,
                store=store,
                task_fn=task,
                worker_id="bench",
            )
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return marks[-1] - t0

    return op


def ours_claim_load(store: Any, run_ids: list[str]) -> Op:
    async def op(k: int) -> float:
        run_id = run_ids[k % len(run_ids)]
        t0 = time.perf_counter()
        run, steps, _ = await store.start_or_resume(run_id, MANIFEST, "bench")
        span = time.perf_counter() - t0
        assert len(steps) == STEPS
        await store.end_run(run_id, "bench", "suspended", lease_epoch=run.lease_epoch)
        return span

    return op


async def seed_ours(store: Any, run_ids: list[str]) -> None:
    """Each run gets its 100 steps, then is left suspended (as `resume_task` leaves it)."""
    op = ours_resume(store, run_ids)
    for k in range(len(run_ids)):
        await op(k)


def ours_fixed(store: Any) -> Op:
    async def task(ctx: DurableContext) -> int:
        return 0

    tag, serial = secrets.token_hex(4), itertools.count()

    async def op(k: int) -> float:
        run_id = f"fixed-{tag}-{next(serial)}"
        t0 = time.perf_counter()
        await run_durable(
            run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, worker_id="w"
        )
        return time.perf_counter() - t0

    return op


def ours_calls(store: Any) -> Op:
    tag, serial = secrets.token_hex(4), itertools.count()

    async def op(k: int) -> float:
        run_id = f"calls-{tag}-{next(serial)}"
        t0 = time.perf_counter()
        run, _, _ = await store.start_or_resume(run_id, MANIFEST, "w")
        await store.end_run(run.run_id, "w", "completed", 0, lease_epoch=run.lease_epoch)
        return time.perf_counter() - t0

    return op


def ours_append(store: Any) -> Op:
    run_id, serial = f"append-{secrets.token_hex(4)}", itertools.count()

    async def op(k: int) -> float:
        events = events_of(next(serial))
        t0 = time.perf_counter()
        await store.append_stream_events(run_id, events)
        return time.perf_counter() - t0

    return op


# -- SQLite floor ----------------------------------------------------------------------------


def sqlite_floor_db(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    for ddl in (RUN_DDL, STEP_DDL, STREAM_DDL):
        db.execute(ddl)
    return db


def sqlite_fixed(db: sqlite3.Connection) -> Op:
    tag, serial = secrets.token_hex(4), itertools.count()
    end = END_SQL.format(p="?")

    async def op(k: int) -> float:
        run_id = f"fixed-{tag}-{next(serial)}"
        t0 = time.perf_counter()
        now = now_ms()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, 'running', ?, ?, 'w', ?, 1, NULL, 0)",
            (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, now + LEASE_MS),
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(end, (orjson.dumps(0).decode(), now_ms(), run_id))
        db.execute("COMMIT")
        return time.perf_counter() - t0

    return op


def sqlite_seed(db: sqlite3.Connection, run_ids: list[str]) -> None:
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


def sqlite_resume(db: sqlite3.Connection, run_ids: list[str]) -> Op:
    claim, steps = CLAIM_SQL.format(p="?"), STEPS_SQL.format(p="?")

    async def op(k: int) -> float:
        run_id = run_ids[k % len(run_ids)]
        t0 = time.perf_counter()
        now = now_ms()
        db.execute("BEGIN IMMEDIATE")
        assert db.execute(claim, (now + LEASE_MS, now, run_id, now)).fetchone() is not None
        rows = db.execute(steps, (run_id,)).fetchall()
        db.execute("COMMIT")
        floor_results(rows)
        span = time.perf_counter() - t0
        db.execute("UPDATE runs SET lease_holder = NULL WHERE run_id = ?", (run_id,))
        return span

    return op


def sqlite_append(db: sqlite3.Connection) -> Op:
    run_id, serial = f"append-{secrets.token_hex(4)}", itertools.count()

    async def op(k: int) -> float:
        b = next(serial)
        events = events_of(b)
        t0 = time.perf_counter()
        now = now_ms()
        rows = [
            (run_id, b * BATCH + i, event_id, orjson.dumps(payload).decode(), now)
            for i, (event_id, payload) in enumerate(events)
        ]
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO stream VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        return time.perf_counter() - t0

    return op


async def sqlite_rows(tmp: Path) -> dict[str, list[tuple[float, float]]]:
    normal_db = sqlite_floor_db(tmp / "floor-normal.db", "NORMAL")
    full_db = sqlite_floor_db(tmp / "floor-full.db", "FULL")
    normal = SQLiteDurableRunStore(tmp / "ours-normal.db", durability="normal")
    full = SQLiteDurableRunStore(tmp / "ours-full.db", durability="full")
    resume_ids = [f"resume-{k}" for k in range(50)]
    sqlite_seed(normal_db, resume_ids)
    await seed_ours(normal, resume_ids)
    out: dict[str, list[tuple[float, float]]] = {}
    fixed_floor, resume_floor, append_floor = (
        sqlite_fixed(normal_db),
        sqlite_resume(normal_db, resume_ids),
        sqlite_append(full_db),
    )
    fixed, calls = ours_fixed(normal), ours_calls(normal)
    resume, append = ours_resume(normal, resume_ids), ours_append(full)
    claim_load = ours_claim_load(normal, resume_ids)
    for _ in range(ROUNDS):
        for row, floor, ours, n in (
            ("per-run fixed cost, SQLite NORMAL", fixed_floor, fixed, 300),
            ("  store calls only (no run_durable), SQLite", fixed_floor, calls, 300),
            ("resume of 100 steps to step 101, SQLite", resume_floor, resume, 100),
            ("  claim + load only (start_or_resume), SQLite", resume_floor, claim_load, 100),
            ("batched stream append 100/txn, SQLite FULL", append_floor, append, 40),
        ):
            out.setdefault(row, []).append(await interleaved(floor, ours, n))
    normal_db.close()
    full_db.close()
    await normal.close()
    await full.close()
    return out


# -- PostgreSQL floor ------------------------------------------------------------------------


def pg_fixed(conn: Any) -> Op:
    tag, serial = secrets.token_hex(4), itertools.count()
    end = END_SQL.format(p="%s")

    async def op(k: int) -> float:
        run_id = f"fixed-{tag}-{next(serial)}"
        t0 = time.perf_counter()
        now = now_ms()
        await conn.execute(
            "INSERT INTO runs VALUES (%s, %s, %s, 'running', %s, %s, 'w', %s, 1, NULL, 0)",
            (run_id, MANIFEST.digest, MANIFEST_TEXT, now, now, now + LEASE_MS),
        )
        await conn.execute(end, (orjson.dumps(0).decode(), now_ms(), run_id))
        return time.perf_counter() - t0

    return op


async def pg_seed(conn: Any, run_ids: list[str]) -> None:
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


def pg_resume(conn: Any, run_ids: list[str]) -> Op:
    claim, steps = CLAIM_SQL.format(p="%s"), STEPS_SQL.format(p="%s")

    async def op(k: int) -> float:
        run_id = run_ids[k % len(run_ids)]
        t0 = time.perf_counter()
        now = now_ms()
        # the claim commits on its own; the read after it sees every step (a former holder's
        # later writes are fenced), as ours does
        cur = await conn.execute(claim, (now + LEASE_MS, now, run_id, now))
        assert await cur.fetchone() is not None
        cur = await conn.execute(steps, (run_id,))
        floor_results(await cur.fetchall())
        span = time.perf_counter() - t0
        await conn.execute("UPDATE runs SET lease_holder = NULL WHERE run_id = %s", (run_id,))
        return span

    return op


def pg_append(conn: Any) -> Op:
    run_id, serial = f"append-{secrets.token_hex(4)}", itertools.count()

    async def op(k: int) -> float:
        b = next(serial)
        events = events_of(b)
        t0 = time.perf_counter()
        now = now_ms()
        rows = [
            (run_id, b * BATCH + i, event_id, orjson.dumps(payload).decode(), now)
            for i, (event_id, payload) in enumerate(events)
        ]
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany("INSERT INTO stream VALUES (%s, %s, %s, %s, %s)", rows)
        return time.perf_counter() - t0

    return op


async def pg_rows(dsn: str) -> dict[str, list[tuple[float, float]]]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    for ddl in (RUN_DDL, STEP_DDL, STREAM_DDL):
        await conn.execute(ddl)
    store = await PostgresDurableRunStore.from_dsn(dsn, min_size=1, max_size=1)
    resume_ids = [f"resume-{k}" for k in range(40)]
    await pg_seed(conn, resume_ids)
    await seed_ours(store, resume_ids)
    fixed_floor, resume_floor, append_floor = (
        pg_fixed(conn),
        pg_resume(conn, resume_ids),
        pg_append(conn),
    )
    fixed, calls = ours_fixed(store), ours_calls(store)
    resume, append = ours_resume(store, resume_ids), ours_append(store)
    claim_load = ours_claim_load(store, resume_ids)
    await interleaved(fixed_floor, fixed, 20)  # warm both (prepared statements, caches)
    out: dict[str, list[tuple[float, float]]] = {}
    for _ in range(ROUNDS):
        for row, floor, ours, n in (
            ("per-run fixed cost, PostgreSQL", fixed_floor, fixed, 100),
            ("  store calls only (no run_durable), PostgreSQL", fixed_floor, calls, 100),
            ("resume of 100 steps to step 101, PostgreSQL", resume_floor, resume, 60),
            ("  claim + load only (start_or_resume), PostgreSQL", resume_floor, claim_load, 60),
            ("batched stream append 100/txn, PostgreSQL", append_floor, append, 30),
        ):
            out.setdefault(row, []).append(await interleaved(floor, ours, n))
    await conn.close()
    await store.close()
    return out


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


def report(rows: dict[str, list[tuple[float, float]]]) -> bool:
    load = os.getloadavg()
    print(
        f"durable stores vs plain-driver floor: {ROUNDS} rounds, floor and ours interleaved, "
        f"medians (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    print(f"{'measure':<48} {'ours':>12} {'floor':>12} {'ratio':>7}  target")
    ok = True
    for row, (target, direction) in TARGETS.items():
        if row not in rows:
            continue
        floor = statistics.median(f for f, _ in rows[row])
        ours = statistics.median(o for _, o in rows[row])
        if direction == "ge":  # a batch's seconds as events per second
            floor, ours = BATCH / floor, BATCH / ours
            shown = f"{ours / 1000:>6.1f}k ev/s {floor / 1000:>6.1f}k ev/s"
        else:
            shown = f"{ours * 1e6:>9.0f} µs {floor * 1e6:>9.0f} µs"
        ratio = ours / floor
        met = target is None or (ratio >= target if direction == "ge" else ratio <= target)
        unit = "x" if direction == "le" else " "
        sign = "≥" if direction == "ge" else "≤"
        wanted = "(info)" if target is None else f"{sign}{target}"
        mark = "" if met else "  MISSED"
        print(f"{row:<48} {shown} {ratio:>6.2f}{unit}  {wanted}{mark}")
        ok = ok and met
    print("targets met" if ok else "TARGET MISSED")
    return ok


def main(argv: list[str]) -> int:
    which = set(argv) or {"sqlite", "postgres"}
    rows: dict[str, list[tuple[float, float]]] = {}
    if "sqlite" in which:
        with tempfile.TemporaryDirectory() as tmp:
            rows.update(asyncio.run(sqlite_rows(Path(tmp))))
    if "postgres" in which:
        with _Schema() as dsn:
            rows.update(asyncio.run(pg_rows(dsn)))
    return 0 if report(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
