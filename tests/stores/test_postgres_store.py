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
from agent_runtime.durable._postgres_schema import POSTGRES_MIGRATIONS
from agent_runtime.errors import (
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    StoreUnavailableError,
)

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


class _CountingPool:
    """A pool whose connections count the statements sent (one `execute` is one round trip
    in autocommit)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        async with self._pool.connection(timeout=timeout) as conn:
            yield _Counted(conn, self.statements)


class _Counted:
    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn = conn
        self._statements = statements

    async def execute(self, sql: Any, params: Any = None) -> Any:
        self._statements.append(str(sql))
        return await self._conn.execute(sql, params)


async def test_claim_and_batched_append_are_one_round_trip_each(pg_dsn: str) -> None:
    async with AsyncConnectionPool(
        pg_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        await PostgresDurableRunStore.from_pool(pool)  # migrate
        counting = _CountingPool(pool)
        store = PostgresDurableRunStore(counting)  # type: ignore[arg-type]
        sent = counting.statements
        # a new run: created and claimed by one statement
        run, steps, expires = await store.start_or_resume("r", MANIFEST, "w", lease_ms=5000)
        assert len(sent) == 1 and run.lease_epoch == 1 and steps == [] and expires is not None
        for i in range(5):
            await store.complete_step("r", i, {"i": i}, intent=f"s{i}", worker_id="w")
        await store.end_run("r", "w", "suspended", lease_epoch=1)
        # a resume: claimed, with its 5 completed steps, by one statement
        sent.clear()
        run, steps, _ = await store.start_or_resume("r", MANIFEST, "w2", lease_ms=5000)
        assert len(sent) == 1 and run.lease_holder == "w2" and run.lease_epoch == 2
        assert [(s.step_index, s.result) for s in steps] == [(i, {"i": i}) for i in range(5)]
        # a batch of 100 events (with duplicates) is one statement
        sent.clear()
        events = [(f"e{i % 80}", i) for i in range(100)]
        out = await store.append_stream_events("r", events)
        assert len(sent) == 1
        assert [r.seq for r in out] == list(range(80)) + list(range(20))
        assert [r.accepted for r in out] == [True] * 80 + [False] * 20
        assert [r.payload for r in out] == list(range(80)) + list(range(20))


async def test_claim_outcomes_from_the_one_call(pg_dsn: str) -> None:
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    try:
        first, _, _ = await store.start_or_resume("c", MANIFEST, "w1", lease_ms=60_000)
        with pytest.raises(DurableRunLeaseHeldError) as held:
            await store.start_or_resume("c", MANIFEST, "w2", lease_ms=60_000)
        assert held.value.holder == "w1" and held.value.expires_at_ms is not None
        other = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"q": 2})
        with pytest.raises(DurableRunInputMismatchError):
            await store.start_or_resume("c", other, "w1", lease_ms=60_000)
        await store.complete_step("c", 0, "a", intent="s", worker_id="w1")
        await store.end_run("c", "w1", "completed", "done")
        run, steps, expires = await store.start_or_resume("c", MANIFEST, "w2", lease_ms=60_000)
        assert run.status == "completed" and expires is None and run.lease_holder is None
        assert run.outcome == "done" and [s.result for s in steps] == ["a"]
        assert run.created_at == first.created_at and run.lease_epoch == 1
    finally:
        await store.close()


async def test_a_version_2_database_is_upgraded_and_keeps_its_runs(pg_dsn: str) -> None:
    """A schema written by migrations 1 and 2 opens at the current version; a run left
    suspended there resumes through the new claim with its steps, and its stream log
    continues gapless through the new append."""
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE durable_schema_info (version integer PRIMARY KEY, description text "
            "NOT NULL, checksum text NOT NULL, applied_at_ms bigint NOT NULL)"
        )
        for m in POSTGRES_MIGRATIONS[:2]:
            await conn.execute(m.sql.encode())
            await conn.execute(
                "INSERT INTO durable_schema_info VALUES (%s, %s, %s, 0)",
                (m.version, m.description, m.checksum),
            )
        await conn.execute(
            "INSERT INTO durable_runs (run_id, manifest_hash, manifest, project_id, status, "
            "created_at_ms, updated_at_ms, lease_epoch, step_count) "
            "VALUES ('old', %s, %s, 'p', 'suspended', 1, 1, 3, 1)",
            (MANIFEST.digest, MANIFEST.encoded),
        )
        await conn.execute(
            "INSERT INTO durable_steps VALUES ('old', 0, 's0', 'logic', NULL, 'completed', 1, "
            "'{\"v\":1}', NULL, 1, 1)"
        )
        await conn.execute(
            "SELECT * FROM durable_stream_append('old', ARRAY['a', 'b'], ARRAY['1', '2'])"
        )
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    try:
        assert await store.schema_version() == DURABLE_SCHEMA_VERSION
        run, steps, _ = await store.start_or_resume("old", MANIFEST, "w", lease_ms=5000)
        assert run.lease_epoch == 4 and [s.result for s in steps] == [{"v": 1}]
        out = await store.append_stream_events("old", [("b", 0), ("c", 3)])
        assert [(r.accepted, r.seq, r.payload) for r in out] == [(False, 1, 2), (True, 2, 3)]
        assert await store.stream_length("old") == 3
    finally:
        await store.close()


async def test_the_database_refuses_to_change_a_completed_step(pg_dsn: str) -> None:
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    try:
        await store.start_or_resume("f", MANIFEST, "w", lease_ms=5000)
        await store.complete_step("f", 0, 1, intent="s", worker_id="w")
        await store.begin_step("f", 1, "t", "llm", None, worker_id="w")
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="step_completed"):
            await conn.execute("UPDATE durable_steps SET result = '2' WHERE step_index = 0")
        await conn.execute("UPDATE durable_steps SET status = 'failed' WHERE step_index = 1")


async def test_a_batch_of_new_ids_is_one_row_and_a_conflict_takes_the_exact_path(
    pg_dsn: str,
) -> None:
    """The append function answers a batch of new distinct ids with one summary row; a batch
    with a logged or repeated id is undone whole and answered per input by the exact path,
    the head moved once per event kept."""
    store = await PostgresDurableRunStore.from_dsn(pg_dsn)
    await store.close()
    append = "SELECT * FROM durable_stream_append(%s, %s, %s)"
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        rows = await (
            await conn.execute(append, ("x", ["a", "b", "c"], ["1", "2", "3"]))
        ).fetchall()
        assert [r[:3] for r in rows] == [(True, 0, None)]
        rows = await (
            await conn.execute(append, ("x", ["d", "b", "d"], ["4", "5", "6"]))
        ).fetchall()
        assert [r[:3] for r in rows] == [(True, 3, None), (False, 1, "2"), (False, 3, "4")]
        rows = await (await conn.execute(append, ("x", ["e"], ["7"]))).fetchall()
        assert [r[:3] for r in rows] == [(True, 4, None)]
        cur = await conn.execute(
            "SELECT seq, event_id, payload FROM durable_stream WHERE run_id = 'x' ORDER BY seq"
        )
        assert await cur.fetchall() == [
            (0, "a", "1"),
            (1, "b", "2"),
            (2, "c", "3"),
            (3, "d", "4"),
            (4, "e", "7"),
        ]
        cur = await conn.execute("SELECT next_seq FROM durable_stream_heads WHERE run_id = 'x'")
        assert await cur.fetchone() == (5,)
