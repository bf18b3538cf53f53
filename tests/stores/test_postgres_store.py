"""What only the PostgreSQL store has: concurrent migrations, checksums, borrowed pools, and
retries after a lost connection (a real killed backend, and a reply lost after commit)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agent_runtime.durable import (
    DURABLE_SCHEMA_VERSION,
    DurableContext,
    DurableRunManifest,
    PostgresDurableRunStore,
    run_durable,
)
from agent_runtime.errors import StoreUnavailableError

MANIFEST = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"q": 1})


async def test_concurrent_migrations_apply_once(pg_dsn: str) -> None:
    stores = await asyncio.gather(
        *(PostgresDurableRunStore.from_dsn(pg_dsn, min_size=1, max_size=1) for _ in range(6))
    )
    try:
        assert [await s.schema_version() for s in stores] == [DURABLE_SCHEMA_VERSION] * 6
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            cur = await conn.execute("SELECT count(*) FROM durable_schema_info")
            assert await cur.fetchone() == (DURABLE_SCHEMA_VERSION,)
    finally:
        for s in stores:
            await s.close()


async def test_edited_past_migration_is_refused(pg_dsn: str) -> None:
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    await store.close()
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await conn.execute("UPDATE durable_schema_info SET checksum = 'deadbeef' WHERE version = 1")
    with pytest.raises(StoreUnavailableError, match="past migrations must not change"):
        await PostgresDurableRunStore.from_dsn(pg_dsn)


async def test_from_pool_borrows_and_leaves_it_open(pg_dsn: str) -> None:
    async with AsyncConnectionPool(
        pg_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        store = await PostgresDurableRunStore.from_pool(pool)
        await store.start_or_resume("r", MANIFEST, "w", lease_ms=5000)
        await store.close()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT lease_holder FROM durable_runs")
            assert await cur.fetchone() == ("w",)


async def test_killed_backend_is_retried_without_losing_a_step(pg_dsn: str) -> None:
    app = f"kill-{secrets.token_hex(4)}"
    store = await PostgresDurableRunStore.from_dsn(
        f"{pg_dsn}&application_name={app}", min_size=1, max_size=1
    )
    calls: list[int] = []

    async def kill_backends() -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (app,),
            )
            assert [r[0] for r in await cur.fetchall()] == [True]

    async def task(ctx: DurableContext) -> int:
        for i in range(6):
            await ctx.step(f"s{i}", lambda i=i: calls.append(i) or i)
            if i == 2:
                await kill_backends()
        return 6

    try:
        res = await run_durable(run_id="k", manifest=MANIFEST, store=store, task_fn=task)
        assert res.result == 6 and calls == list(range(6))
        assert store.retries >= 1
        steps = await store.load_steps("k")
        assert [(s.step_index, s.attempts) for s in steps] == [(i, 1) for i in range(6)]
    finally:
        await store.close()


class _LoseReplyAfterCommit:
    """A pool whose connections drop the reply of chosen statements after the server ran
    them: the commit happened, the client sees a lost connection (the ambiguous case)."""

    def __init__(self, pool: AsyncConnectionPool, match: str, times: int) -> None:
        self._pool = pool
        self.match = match
        self.left = times

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        async with self._pool.connection(timeout=timeout) as conn:
            yield _Conn(conn, self)


class _Conn:
    def __init__(self, conn: Any, owner: _LoseReplyAfterCommit) -> None:
        self._conn = conn
        self._owner = owner

    async def execute(self, sql: Any, params: Any = None) -> Any:
        cur = await self._conn.execute(sql, params)
        if self._owner.left and self._owner.match in str(sql):
            self._owner.left -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly (injected)")
        return cur

    def transaction(self) -> Any:
        return self._conn.transaction()


def _three_steps(calls: list[int]) -> Any:
    async def task(ctx: DurableContext) -> int:
        for i in range(3):
            await ctx.step(f"s{i}", lambda i=i: calls.append(i) or {"i": i})
        return 3

    return task


async def test_retried_commit_that_had_committed_is_not_applied_twice(pg_dsn: str) -> None:
    async with AsyncConnectionPool(
        pg_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        await PostgresDurableRunStore.from_pool(pool)  # migrate
        for match in ("durable_write_step", "UPDATE durable_runs SET status"):
            flaky = _LoseReplyAfterCommit(pool, match, times=2)
            store = PostgresDurableRunStore(flaky)  # type: ignore[arg-type]
            run_id = f"r-{secrets.token_hex(3)}"
            calls: list[int] = []
            res = await run_durable(
                run_id=run_id, manifest=MANIFEST, store=store, task_fn=_three_steps(calls)
            )
            assert res.result == 3 and calls == [0, 1, 2] and store.retries == 2
            assert res.record.status == "completed" and res.record.outcome == 3
            steps = await store.load_steps(run_id)
            assert [(s.status, s.attempts, s.result) for s in steps] == [
                ("completed", 1, {"i": i}) for i in range(3)
            ]


async def test_default_lease_15s_and_heartbeat_every_third(pg_dsn: str) -> None:
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    samples: list[float] = []

    async def default_lease(ctx: DurableContext) -> None:
        run = await store.load_run(ctx.run_id)
        assert run is not None and run.lease_expires_at is not None
        samples.append((run.lease_expires_at - run.updated_at).total_seconds())

    async def short_lease(ctx: DurableContext) -> int:
        loop = asyncio.get_running_loop()
        expiries = []
        end = loop.time() + 1.2
        while loop.time() < end:  # 2x the lease: alive only if the heartbeat renews it
            run = await store.load_run(ctx.run_id)
            assert run is not None and run.lease_expires_at is not None
            assert run.lease_holder == ctx.worker_id
            expiries.append(run.lease_expires_at)
            await asyncio.sleep(0.05)
        return len(set(expiries))

    try:
        await run_durable(run_id="d", manifest=MANIFEST, store=store, task_fn=default_lease)
        assert 14.5 <= samples[0] <= 15.0
        res = await run_durable(
            run_id="s", manifest=MANIFEST, store=store, task_fn=short_lease, lease_ms=600
        )
        assert res.result >= 5  # renewed about every 200 ms
    finally:
        await store.close()
