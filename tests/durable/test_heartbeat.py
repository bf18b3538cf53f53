"""The lease heartbeat: runs of one event loop share one timer, each run still renews on its
own interval, and a lost lease's cancellation of the task never outlives `run_durable`."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    DurableRunStore,
    InMemoryDurableRunStore,
    SQLiteDurableRunStore,
    run_durable,
)
from agent_runtime.errors import DurableRunLeaseLostError

MANIFEST = DurableRunManifest("p", {"id": "t"}, {"q": 1})


class CountingStore(InMemoryDurableRunStore):
    """Counts lease renewals per run."""

    def __init__(self) -> None:
        super().__init__()
        self.renewals: Counter[str] = Counter()

    async def renew_lease(
        self, run_id: str, worker_id: str, lease_ms: int = 15000, *, lease_epoch: int | None = None
    ) -> bool:
        self.renewals[run_id] += 1
        return await super().renew_lease(
            run_id, worker_id, lease_ms=lease_ms, lease_epoch=lease_epoch
        )


async def test_runs_on_one_loop_each_renew_on_their_own_interval() -> None:
    store = CountingStore()

    def sleeping(seconds: float) -> Any:
        async def task(ctx: DurableContext) -> None:
            await asyncio.sleep(seconds)

        return task

    async def drive(run_id: str, seconds: float, heartbeat_ms: int) -> None:
        await run_durable(
            run_id=run_id,
            manifest=MANIFEST,
            store=store,
            task_fn=sleeping(seconds),
            worker_id="w",
            lease_ms=2000,
            heartbeat_ms=heartbeat_ms,
        )

    # a short run first in each interval: its entry is the one the shared timer was armed
    # for, and the runs after it must still renew once it has gone
    await drive("short-a", 0, 30)
    await drive("short-b", 0, 90)
    await asyncio.sleep(0.01)  # the others come due well after the timer armed for those
    await asyncio.gather(drive("fast", 0.4, 30), drive("slow", 0.4, 90), drive("tiny", 0, 30))
    assert store.renewals["short-a"] == store.renewals["short-b"] == 0
    assert store.renewals["tiny"] == 0
    assert store.renewals["fast"] >= 4
    assert 1 <= store.renewals["slow"] < store.renewals["fast"]
    await asyncio.sleep(0.1)  # nothing renews once its run has ended
    assert sum(store.renewals.values()) == store.renewals["fast"] + store.renewals["slow"]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DurableRunStore:
    if request.param == "memory":
        return InMemoryDurableRunStore()
    return SQLiteDurableRunStore(tmp_path / "runs.db")


async def test_a_task_that_swallows_the_lost_lease_still_ends_lost(
    store: DurableRunStore,
) -> None:
    taken = asyncio.Event()
    swallowed: list[bool] = []

    async def task(ctx: DurableContext) -> str:
        await ctx.step("a", lambda: 1)
        await store.end_run("r", None, "suspended")
        await store.start_or_resume("r", MANIFEST, "thief", lease_ms=10_000)
        taken.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            swallowed.append(True)  # a task that ignores cancellation
        await ctx.step("b", lambda: 2)
        return "done"

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
    assert swallowed == [True]
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation is pending either
    assert await store.load_step("r", 1) is None
    run = await store.load_run("r")
    assert run is not None and run.lease_holder == "thief"


async def test_cancel_from_outside_during_a_lost_lease_stays_a_cancel() -> None:
    store = InMemoryDurableRunStore()
    inside = asyncio.Event()

    async def task(ctx: DurableContext) -> None:
        await store.end_run("r", None, "suspended")
        await store.start_or_resume("r", MANIFEST, "thief", lease_ms=10_000)
        inside.set()
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.2)  # the heartbeat refuses meanwhile

    t = asyncio.create_task(
        run_durable(
            run_id="r",
            manifest=MANIFEST,
            store=store,
            task_fn=task,
            worker_id="w1",
            lease_ms=300,
            heartbeat_ms=20,
        )
    )
    await inside.wait()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t


async def test_the_task_runs_in_the_callers_task() -> None:
    store = InMemoryDurableRunStore()
    caller = asyncio.current_task()
    seen: list[Any] = []

    async def task(ctx: DurableContext) -> int:
        seen.append(asyncio.current_task())
        return 1

    res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert res.result == 1 and seen == [caller]
