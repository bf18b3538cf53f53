"""`run_durable` and its context at their boundary: bad arguments are a typed error before
anything is written."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    InMemoryDurableRunStore,
    run_durable,
)
from agent_runtime.errors import DurableValueError

MANIFEST = DurableRunManifest("p", {"id": "t"}, {"q": 1})


@pytest.mark.parametrize("payload", [math.nan, {"s": {1}}, b"x"], ids=["nan", "set", "bytes"])
async def test_emit_event_with_a_non_json_payload_writes_nothing(payload: Any) -> None:
    store = InMemoryDurableRunStore()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("ok", lambda: 1)
        await ctx.emit_event("k", payload)

    with pytest.raises(DurableValueError) as info:
        await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert info.value.path.startswith("payload")
    assert [s.intent for s in await store.load_steps("r")] == ["ok"]
    assert await store.load_event("r", "k") is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_poll_ms": 0}, {"max_poll_ms": -5}, {"poll_ms": -1}, {"poll_ms": 1.5}, {"poll_ms": None}],
    ids=["max-zero", "max-negative", "poll-negative", "poll-float", "poll-none"],
)
async def test_await_event_poll_intervals_are_validated(kwargs: dict[str, Any]) -> None:
    # a zero poll interval would query the store in a tight loop for the whole timeout
    store = InMemoryDurableRunStore()
    polls = 0
    load_event = store.load_event

    async def counting(run_id: str, key: str) -> Any:
        nonlocal polls
        polls += 1
        return await load_event(run_id, key)

    store.load_event = counting  # type: ignore[method-assign]

    async def task(ctx: DurableContext) -> Any:
        return await ctx.await_event("go", timeout_ms=200, **kwargs)

    with pytest.raises(DurableValueError):
        await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert polls == 0
    assert await store.load_steps("r") == []


class CountingStore(InMemoryDurableRunStore):
    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    async def renew_lease(
        self, run_id: str, worker_id: str, lease_ms: int = 15000, *, lease_epoch: int | None = None
    ) -> bool:
        self.renewals += 1
        return await super().renew_lease(
            run_id, worker_id, lease_ms=lease_ms, lease_epoch=lease_epoch
        )


@pytest.mark.parametrize(("heartbeat_ms", "at_least", "at_most"), [(None, 1, 4), (40, 6, 16)])
async def test_heartbeat_interval_defaults_to_a_third_and_is_configurable(
    heartbeat_ms: int | None, at_least: int, at_most: int
) -> None:
    store = CountingStore()

    async def task(ctx: DurableContext) -> None:
        await asyncio.sleep(0.45)

    await run_durable(
        run_id="r",
        manifest=MANIFEST,
        store=store,
        task_fn=task,
        lease_ms=450,
        heartbeat_ms=heartbeat_ms,
    )
    assert at_least <= store.renewals <= at_most


@pytest.mark.parametrize("heartbeat_ms", [0, -1, 450, 1000, 1.5])
async def test_heartbeat_must_be_shorter_than_the_lease(heartbeat_ms: Any) -> None:
    store = InMemoryDurableRunStore()
    with pytest.raises(DurableValueError):
        await run_durable(
            run_id="r",
            manifest=MANIFEST,
            store=store,
            task_fn=lambda ctx: asyncio.sleep(0),
            lease_ms=450,
            heartbeat_ms=heartbeat_ms,
        )
    assert await store.load_run("r") is None
