"""PostgreSQL store: per-step overhead, stream-append throughput, concurrent runs.

1. Per-step cost of run_durable on `PostgresDurableRunStore` (one connection,
   synchronous_commit on) against a plain psycopg floor loop on the same server in the same
   run: one INSERT+UPDATE transaction per step. Target ≤ 1.3x the floor.
2. Stream appends: one event per call, and batches of 100 per call (events/s).
3. Runs/s with 8 concurrent workers (8 pooled connections), 5 steps a run.
Each part runs in a fresh schema of the test database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from urllib.parse import quote

import orjson
import psycopg

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    PostgresDurableRunStore,
    run_durable,
)

DSN = os.environ.get("AGENT_RUNTIME_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
STEP_TARGET = 1.3
STEPS = 200
ROUNDS = 3
MANIFEST = DurableRunManifest("bench", {"id": "bench", "intent": "bench"}, {"n": 1})


def schema_dsn(schema: str) -> str:
    sep = "&" if "?" in DSN else "?"
    return f"{DSN}{sep}options={quote(f'-csearch_path={schema}')}"


class Schema:
    """A throwaway schema; `dsn` points its search_path there."""

    def __enter__(self) -> str:
        self.name = f"bench_{secrets.token_hex(5)}"
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        return schema_dsn(self.name)

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{self.name}" CASCADE')


async def floor_loop(dsn: str, n: int) -> float:
    """Seconds per step of the hand-rolled minimum: one INSERT+UPDATE transaction a step."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id text PRIMARY KEY, status text, "
            "step_count int, updated_at_ms bigint)"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS steps (run_id text, step_index int, intent text, "
            "status text, result text, completed_at_ms bigint, PRIMARY KEY (run_id, step_index))"
        )
        run_id = f"floor-{secrets.token_hex(4)}"
        t0 = time.perf_counter()
        await conn.execute(
            "INSERT INTO runs VALUES (%s, 'running', 0, %s)", (run_id, time.time_ns())
        )
        for i in range(n):
            result = orjson.dumps({"i": i, "text": "x" * 64}).decode()
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO steps VALUES (%s, %s, %s, 'completed', %s, %s)",
                    (run_id, i, f"step-{i}", result, time.time_ns() // 1_000_000),
                )
                await conn.execute(
                    "UPDATE runs SET step_count = %s, updated_at_ms = %s WHERE run_id = %s",
                    (i + 1, time.time_ns() // 1_000_000, run_id),
                )
        await conn.execute("UPDATE runs SET status = 'completed' WHERE run_id = %s", (run_id,))
        return (time.perf_counter() - t0) / n


def make_task(n: int):  # type: ignore[no-untyped-def]
    async def task(ctx: DurableContext) -> int:
        for i in range(n):
            await ctx.step(f"step-{i}", lambda i=i: {"i": i, "text": "x" * 64})
        return n

    return task


async def ours(store: PostgresDurableRunStore, n: int) -> float:
    """Seconds per step of run_durable, start and end of the run included."""
    t0 = time.perf_counter()
    await run_durable(
        run_id=f"ours-{secrets.token_hex(4)}",
        manifest=MANIFEST,
        store=store,
        task_fn=make_task(n),
        worker_id="bench",
    )
    return (time.perf_counter() - t0) / n


async def steps_part(dsn: str) -> tuple[float, float]:
    store = await PostgresDurableRunStore.from_dsn(dsn, min_size=1, max_size=1)
    await floor_loop(dsn, 20)  # warm up both (prepared statements, caches)
    await ours(store, 20)
    floor_best = ours_best = float("inf")
    for _ in range(ROUNDS):  # interleaved, best of ROUNDS: drift hits both alike
        floor_best = min(floor_best, await floor_loop(dsn, STEPS))
        ours_best = min(ours_best, await ours(store, STEPS))
    await store.close()
    return floor_best, ours_best


async def stream_part(dsn: str) -> tuple[float, float]:
    store = await PostgresDurableRunStore.from_dsn(dsn, min_size=1, max_size=1)
    n_single, n_batched, batch = 1000, 20_000, 100
    t0 = time.perf_counter()
    for i in range(n_single):
        await store.append_stream_event("single", f"e{i}", {"i": i, "text": "tok"})
    single = n_single / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in range(0, n_batched, batch):
        await store.append_stream_events(
            "batched", [(f"e{i}", {"i": i, "text": "tok"}) for i in range(b, b + batch)]
        )
    batched = n_batched / (time.perf_counter() - t0)
    assert await store.stream_length("batched") == n_batched
    await store.close()
    return single, batched


async def concurrent_part(dsn: str, workers: int = 8, seconds: float = 3.0) -> float:
    store = await PostgresDurableRunStore.from_dsn(dsn, min_size=workers, max_size=workers)
    task = make_task(5)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        k = 0
        while time.perf_counter() < stop:
            await run_durable(
                run_id=f"c-{w}-{k}", manifest=MANIFEST, store=store, task_fn=task, worker_id=f"w{w}"
            )
            k += 1
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    rate = done / (time.perf_counter() - t0)
    await store.close()
    return rate


def main() -> int:
    with Schema() as dsn:
        floor_s, ours_s = asyncio.run(steps_part(dsn))
    with Schema() as dsn:
        single, batched = asyncio.run(stream_part(dsn))
    with Schema() as dsn:
        runs_per_s = asyncio.run(concurrent_part(dsn))
    ratio = ours_s / floor_s
    print(f"PostgreSQL store at {DSN} (synchronous_commit on, one connection unless noted)")
    print(f"{'measure':<44} {'value':>12} {'floor':>12} {'ratio':>7} target")
    print(
        f"{'per-step, run_durable vs psycopg INSERT+UPDATE':<44} "
        f"{ours_s * 1e6:>9.0f} µs {floor_s * 1e6:>9.0f} µs {ratio:>6.2f}x ≤{STEP_TARGET}x"
    )
    print(f"{'stream append, 1 event per call':<44} {single:>8.0f} ev/s")
    print(
        f"{'stream append, batches of 100':<44} {batched:>8.0f} ev/s {'':>12} "
        f"{batched / single:>6.1f}x vs unbatched"
    )
    print(f"{'runs/s, 8 workers x 5 steps, 8 connections':<44} {runs_per_s:>8.1f} r/s")
    print("target met" if ratio <= STEP_TARGET else "TARGET MISSED (per-step ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
