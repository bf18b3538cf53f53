"""Cancellation landing while a store call is in flight: the write may already have landed
(its reply is still on the wire), and the run must still end up released, not leased by a
worker that has gone away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    InMemoryDurableRunStore,
    RunRecord,
    StartOrResumeResult,
    run_durable,
)
from agent_runtime.durable._store import DEFAULT_LEASE_MS
from agent_runtime.errors import DurableRunLeaseLostError

MANIFEST = DurableRunManifest("p", {"id": "t"}, {"q": 1})


class SlowReplyStore(InMemoryDurableRunStore):
    """Commits at once, answers late: a reply delayed on the network after the write landed.
    `slow_request` delays the completion write itself instead (a request still on its way)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow: set[str] = set()
        self.slow_request: set[str] = set()
        self.landed = asyncio.Event()

    async def _late(self, op: str) -> None:
        if op in self.slow:
            self.landed.set()
            await asyncio.sleep(5)

    async def start_or_resume(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int = 15000
    ) -> StartOrResumeResult:
        res = await super().start_or_resume(run_id, manifest, worker_id, lease_ms=lease_ms)
        await self._late("start_or_resume")
        return res

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: Any,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        if f"end_run:{status}" in self.slow_request:
            self.landed.set()
            await asyncio.sleep(0.2)
        rec = await super().end_run(run_id, worker_id, status, outcome, lease_epoch=lease_epoch)
        await self._late(f"end_run:{status}")
        return rec


async def _cancel_when_landed(store: SlowReplyStore, task: asyncio.Task[Any]) -> None:
    await asyncio.wait_for(store.landed.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)


@pytest.mark.parametrize("new_run", [True, False], ids=["new-run", "resumed-run"])
async def test_cancel_while_the_claim_reply_is_in_flight_releases_the_lease(
    new_run: bool,
) -> None:
    store = SlowReplyStore()
    if not new_run:
        await store.start_or_resume("r", MANIFEST, "earlier", lease_ms=DEFAULT_LEASE_MS)
        await store.end_run("r", "earlier", "suspended")
    store.slow.add("start_or_resume")

    async def task(ctx: DurableContext) -> int:
        return int(await ctx.step("a", lambda: 1))

    t = asyncio.create_task(
        run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task, worker_id="w1")
    )
    await _cancel_when_landed(store, t)
    run = await store.load_run("r")
    assert run is not None and run.lease_holder is None and run.status == "suspended"
    store.slow.clear()
    # another worker resumes at once instead of waiting out a 15 s lease
    res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert res.result == 1


@pytest.mark.parametrize("stage", ["request", "reply"])
async def test_cancel_while_the_completion_is_in_flight_leaves_the_run_completed(
    stage: str,
) -> None:
    store = SlowReplyStore()
    (store.slow_request if stage == "request" else store.slow).add("end_run:completed")
    calls: list[int] = []

    async def task(ctx: DurableContext) -> int:
        return int(await ctx.step("a", lambda: calls.append(1) or 7))

    t = asyncio.create_task(
        run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task, worker_id="w1")
    )
    await _cancel_when_landed(store, t)
    for _ in range(100):  # the completion write is allowed to finish after the cancellation
        run = await store.load_run("r")
        if run is not None and run.status == "completed":
            break
        await asyncio.sleep(0.01)
    assert run is not None and run.status == "completed" and run.lease_holder is None
    assert run.outcome == 7 and calls == [1]


async def test_cancel_while_a_postgres_claim_waits_on_a_lock(pg_dsn: str) -> None:
    import psycopg

    from agent_runtime.durable import PostgresDurableRunStore

    store = await PostgresDurableRunStore.from_dsn(pg_dsn, min_size=1, max_size=3)
    locker = await psycopg.AsyncConnection.connect(pg_dsn)
    try:
        await store.start_or_resume("r", MANIFEST, "earlier", lease_ms=DEFAULT_LEASE_MS)
        await store.end_run("r", "earlier", "suspended")
        await locker.execute("SELECT 1 FROM durable_runs WHERE run_id = 'r' FOR UPDATE")

        async def task(ctx: DurableContext) -> int:
            return int(await ctx.step("a", lambda: 1))

        t = asyncio.create_task(
            run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task, worker_id="w1")
        )
        await asyncio.sleep(0.3)  # the claim is blocked on the row lock
        assert not t.done()
        t.cancel()
        await asyncio.sleep(0.1)
        await locker.rollback()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(t, 5)
        run = await store.load_run("r")
        assert run is not None and run.lease_holder is None and run.status == "suspended"
        res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
        assert res.result == 1
    finally:
        await locker.close()
        await store.close()


class TakenOverAtTheEnd(InMemoryDurableRunStore):
    """Another worker takes the run over while the completion write is on its way, so the
    heartbeat's cancel lands on `run_durable` waiting for that write."""

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: Any,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        if status == "completed" and worker_id != "thief":
            await super().end_run(run_id, None, "suspended")
            await super().start_or_resume(run_id, MANIFEST, "thief", lease_ms=DEFAULT_LEASE_MS)
            await asyncio.sleep(0.2)  # several heartbeats (every 20 ms) see the takeover
        return await super().end_run(run_id, worker_id, status, outcome, lease_epoch=lease_epoch)


async def test_takeover_during_the_completion_write_is_a_lost_lease_not_a_cancel() -> None:
    store = TakenOverAtTheEnd()

    async def task(ctx: DurableContext) -> int:
        return int(await ctx.step("a", lambda: 1))

    with pytest.raises(DurableRunLeaseLostError):
        await run_durable(
            run_id="r",
            manifest=MANIFEST,
            store=store,
            task_fn=task,
            worker_id="w1",
            lease_ms=300,
            heartbeat_ms=20,
        )
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0.3)  # the fenced completion write has been refused meanwhile
    run = await store.load_run("r")
    assert run is not None and run.lease_holder == "thief" and run.status == "running"
