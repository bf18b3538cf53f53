"""Per-step overhead of run_durable on SQLite against a plain-sqlite3 floor loop.

The floor does the minimum a hand-rolled durable loop must: one transaction to create the
run, one INSERT+UPDATE transaction per step, one to end the run. Ours does the same number
of commits plus validation, fencing and replay bookkeeping. Printed as ratios to the floor.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    SQLiteDurableRunStore,
    run_durable,
)

TARGETS = {"full": 1.3, "normal": 2.0}
REPLAY_TARGET_MS = 0.5
MIN_STEPS = {"full": 1500, "normal": 6000}


def floor_loop(path: Path, durability: str, n: int, runs: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {durability.upper()}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, status TEXT, "
        "step_count INTEGER, updated_at_ms INTEGER)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS steps (run_id TEXT, step_index INTEGER, intent TEXT, "
        "status TEXT, result TEXT, completed_at_ms INTEGER, PRIMARY KEY (run_id, step_index)) "
        "WITHOUT ROWID"
    )
    t0 = time.perf_counter()
    for r in range(runs):
        run_id = f"floor-{n}-{r}-{time.perf_counter_ns()}"
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO runs VALUES (?, 'running', 0, ?)", (run_id, time.time_ns()))
        db.execute("COMMIT")
        for i in range(n):
            result = orjson.dumps({"i": i, "text": "x" * 64}).decode()
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO steps VALUES (?, ?, ?, 'completed', ?, ?)",
                (run_id, i, f"step-{i}", result, time.time_ns()),
            )
            db.execute(
                "UPDATE runs SET step_count = ?, updated_at_ms = ? WHERE run_id = ?",
                (i + 1, time.time_ns(), run_id),
            )
            db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE runs SET status = 'completed' WHERE run_id = ?", (run_id,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed / (runs * n)


def make_task(n: int):  # type: ignore[no-untyped-def]
    async def task(ctx: DurableContext) -> int:
        for i in range(n):
            await ctx.step(f"step-{i}", lambda i=i: {"i": i, "text": "x" * 64})
        return n

    return task


MANIFEST = DurableRunManifest("bench", {"id": "bench", "intent": "bench"}, {"n": 1})


async def ours(path: Path, durability: str, n: int, runs: int) -> float:
    store = SQLiteDurableRunStore(path, durability=durability)  # type: ignore[arg-type]
    task = make_task(n)
    t0 = time.perf_counter()
    for r in range(runs):
        await run_durable(
            run_id=f"ours-{n}-{r}-{time.perf_counter_ns()}",
            manifest=MANIFEST,
            store=store,
            task_fn=task,
            worker_id="bench",
        )
    elapsed = time.perf_counter() - t0
    await store.close()
    return elapsed / (runs * n)


async def replay_ms(path: Path, n: int = 100, repeat: int = 200) -> tuple[float, float]:
    """Resume of a run whose first `n` steps are completed (a crash after step n): the time
    until all `n` results are back in the task (lease claim + one read + n replays), and the
    whole call including the final commit. Best of `repeat` suspended runs."""
    store = SQLiteDurableRunStore(path)
    task = make_task(n)
    reached: list[float] = []

    async def interrupted(ctx: DurableContext) -> None:
        await task(ctx)
        raise asyncio.CancelledError  # stands in for the crash: the run is left suspended

    async def resumed(ctx: DurableContext) -> int:
        out = await task(ctx)
        reached.append(time.perf_counter())
        return out

    for r in range(repeat):
        try:
            await run_durable(
                run_id=f"replay-{r}", manifest=MANIFEST, store=store, task_fn=interrupted
            )
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
    best_replay = best_total = float("inf")
    for r in range(repeat):
        t0 = time.perf_counter()
        res = await run_durable(
            run_id=f"replay-{r}", manifest=MANIFEST, store=store, task_fn=resumed
        )
        t1 = time.perf_counter()
        assert res.replayed == n and res.executed == 0 and res.record.status == "completed"
        best_replay = min(best_replay, reached[-1] - t0)
        best_total = min(best_total, t1 - t0)
    await store.close()
    return best_replay * 1000, best_total * 1000


def main() -> int:
    rows = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for durability in ("full", "normal"):
            for n in (1, 10, 100):
                runs = max(3, MIN_STEPS[durability] // n)
                # interleave floor and ours, best of 3, so drift hits both alike
                floor_best = ours_best = float("inf")
                for k in range(3):
                    floor_best = min(
                        floor_best,
                        floor_loop(root / f"floor-{durability}-{n}-{k}.db", durability, n, runs),
                    )
                    ours_best = min(
                        ours_best,
                        asyncio.run(
                            ours(root / f"ours-{durability}-{n}-{k}.db", durability, n, runs)
                        ),
                    )
                ratio = ours_best / floor_best
                rows.append(
                    (durability, n, floor_best * 1e6, ours_best * 1e6, ratio, 1 / ours_best)
                )
                if n == 100 and ratio > TARGETS[durability]:
                    ok = False
        rms, rtotal = asyncio.run(replay_ms(root / "replay.db"))
    print("durable steps on SQLite vs plain-sqlite3 floor (per step, best of 3)")
    print(
        f"{'durability':<10} {'N':>4} {'floor µs':>9} {'ours µs':>9} {'ratio':>6} {'steps/s':>9} target"
    )
    for d, n, f, o, ratio, sps in rows:
        print(f"{d:<10} {n:>4} {f:>9.1f} {o:>9.1f} {ratio:>5.2f}x {sps:>9.0f} ≤{TARGETS[d]}x")
    print(
        f"resume replaying 100 completed steps: {rms:.3f} ms to the last replayed result "
        f"(target ≤ {REPLAY_TARGET_MS} ms), {rtotal:.3f} ms with the final commit"
    )
    if rms > REPLAY_TARGET_MS:
        ok = False
    print("targets met (N=100)" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
