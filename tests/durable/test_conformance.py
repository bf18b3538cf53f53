"""The durable-store conformance suite: every store in STORE_FACTORIES must pass all of it."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    DurableRunStore,
    RunHandle,
    run_durable,
)
from agent_runtime.errors import (
    DurableAwaitEventTimeoutError,
    DurableRunDivergenceError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableRunNotFoundError,
    DurableStepInputMismatchError,
    DurableValueError,
)


def rid() -> str:
    return f"run-{secrets.token_hex(6)}"


def manifest(value: Any = None, project: str = "proj") -> DurableRunManifest:
    return DurableRunManifest(
        project_id=project,
        task={"id": "t1", "intent": "answer", "domain": "test"},
        input={"q": "hello"} if value is None else value,
    )


# -- manifests and leases -----------------------------------------------------------------------


async def test_manifest_mismatch(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest({"q": 1}), "w1", lease_ms=5000)
    with pytest.raises(DurableRunInputMismatchError):
        await store.start_or_resume(run_id, manifest({"q": 2}), "w1", lease_ms=5000)


async def test_manifest_hash_ignores_key_order_and_tags(store: DurableRunStore) -> None:
    run_id = rid()
    a = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"a": 1, "b": [1, 2]}, tags={"x": 1})
    b = DurableRunManifest("p", {"intent": "i", "id": "t"}, {"b": [1, 2], "a": 1})
    await store.start_or_resume(run_id, a, "w1", lease_ms=5000)
    await store.end_run(run_id, "w1", "suspended")
    run, _, _ = await store.start_or_resume(run_id, b, "w1", lease_ms=5000)
    assert run.manifest_hash


async def test_lease_held_by_another_live_worker(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=10_000)
    with pytest.raises(DurableRunLeaseHeldError) as info:
        await store.start_or_resume(run_id, manifest(), "w2", lease_ms=10_000)
    assert info.value.holder == "w1"
    run = await store.load_run(run_id)
    assert run is not None and run.lease_holder == "w1"


async def test_takeover_after_expiry(store: DurableRunStore) -> None:
    run_id = rid()
    _, _, first = await store.start_or_resume(run_id, manifest(), "w1", lease_ms=50)
    await asyncio.sleep(0.08)
    run, _, expires = await store.start_or_resume(run_id, manifest(), "w2", lease_ms=5000)
    assert run.lease_holder == "w2"
    assert first is not None and expires is not None and expires > first
    assert run.lease_epoch == 2


async def test_renew_refused_after_takeover(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=50)
    assert await store.renew_lease(run_id, "w1", lease_ms=50) is True
    await asyncio.sleep(0.08)
    await store.start_or_resume(run_id, manifest(), "w2", lease_ms=5000)
    assert await store.renew_lease(run_id, "w1", lease_ms=5000) is False
    assert await store.renew_lease(run_id, "w2", lease_ms=5000) is True


async def test_fenced_commit_refused_after_takeover(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=50)
    await store.complete_step(run_id, 0, {"v": "a"}, intent="s0", worker_id="w1")
    await asyncio.sleep(0.08)
    await store.start_or_resume(run_id, manifest(), "w2", lease_ms=5000)
    with pytest.raises(DurableRunLeaseLostError):
        await store.complete_step(run_id, 1, {"v": "late"}, intent="s1", worker_id="w1")
    with pytest.raises(DurableRunLeaseLostError):
        await store.begin_step(run_id, 1, "s1", "llm", None, worker_id="w1")
    with pytest.raises(DurableRunLeaseLostError):
        await store.fail_step(run_id, 1, {"message": "x"}, intent="s1", worker_id="w1")
    with pytest.raises(DurableRunLeaseLostError):
        await store.end_run(run_id, "w1", "completed", {"late": True})
    assert await store.load_step(run_id, 1) is None
    step0 = await store.load_step(run_id, 0)
    assert step0 is not None and step0.result == {"v": "a"}
    run = await store.load_run(run_id)
    assert run is not None and run.status == "running" and run.lease_holder == "w2"


async def test_run_durable_lease_held_error(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "other", lease_ms=10_000)

    async def task(ctx: DurableContext) -> str:
        return "never"

    with pytest.raises(DurableRunLeaseHeldError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)


async def test_lost_lease_aborts_run(store: DurableRunStore) -> None:
    run_id = rid()
    ran: list[int] = []

    async def task(ctx: DurableContext) -> str:
        await ctx.step("a", lambda: 1)
        # another worker takes the run over while this one is busy
        await store.end_run(run_id, None, "suspended")
        await store.start_or_resume(run_id, manifest(), "thief", lease_ms=10_000)
        await asyncio.sleep(0.3)  # heartbeat (lease/3 = 0.1 s) notices and cancels
        ran.append(1)
        await ctx.step("b", lambda: 2)
        return "done"

    with pytest.raises(DurableRunLeaseLostError):
        await run_durable(
            run_id=run_id, manifest=manifest(), store=store, task_fn=task, lease_ms=300
        )
    assert ran == []
    assert await store.load_step(run_id, 1) is None
    # the heartbeat cancelled the task function, not the caller: nothing is left pending
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0.01)


# -- steps and replay ---------------------------------------------------------------------------


async def test_replay_returns_stored_results_without_calling_fn(store: DurableRunStore) -> None:
    run_id = rid()
    calls: list[str] = []

    def make(name: str, value: Any) -> Any:
        def fn() -> Any:
            calls.append(name)
            return value

        return fn

    async def task(ctx: DurableContext) -> dict[str, Any]:
        a = await ctx.step("a", make("a", {"n": 1, "items": [1, 2.5, "x", None, True]}))
        b = await ctx.step("b", make("b", "two"), kind="llm")
        return {"a": a, "b": b}

    first = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert calls == ["a", "b"]
    assert first.record.status == "completed"
    assert first.executed == 2 and first.replayed == 0
    second = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert calls == ["a", "b"]
    assert (
        second.result
        == first.result
        == {
            "a": {"n": 1, "items": [1, 2.5, "x", None, True]},
            "b": "two",
        }
    )
    assert second.replayed == 2 and second.executed == 0
    assert [s.intent for s in second.steps] == ["a", "b"]


async def test_resume_after_partial_run_continues_at_first_unfinished(
    store: DurableRunStore,
) -> None:
    run_id = rid()
    calls: list[str] = []

    crashed: list[bool] = []

    async def task(ctx: DurableContext) -> list[Any]:
        out = []
        for name in ("a", "b", "c"):
            out.append(await ctx.step(name, lambda n=name: calls.append(n) or n))
            if name == "b" and not crashed:
                crashed.append(True)
                raise RuntimeError("crash after b")
        return out

    with pytest.raises(RuntimeError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed"
    assert run.outcome["error"]["message"] == "crash after b"
    res = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert res.result == ["a", "b", "c"]
    assert calls == ["a", "b", "c"]


async def test_divergence_at_same_position(store: DurableRunStore) -> None:
    run_id = rid()

    async def v1(ctx: DurableContext) -> None:
        await ctx.step("fetch", lambda: 1)
        raise RuntimeError("stop")

    async def v2(ctx: DurableContext) -> None:
        await ctx.step("summarize", lambda: 1)

    with pytest.raises(RuntimeError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v1)
    with pytest.raises(DurableRunDivergenceError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v2)


async def test_failed_step_retried_under_another_intent_diverges(store: DurableRunStore) -> None:
    """A failed step retried under another intent raises divergence, it never overwrites."""
    run_id = rid()

    async def v1(ctx: DurableContext) -> None:
        await ctx.step("fetch", lambda: 1 / 0)

    async def v2(ctx: DurableContext) -> int:
        return int(await ctx.step("summarize", lambda: 2))

    with pytest.raises(ZeroDivisionError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v1)
    with pytest.raises(DurableRunDivergenceError) as info:
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v2)
    assert info.value.code == "step_divergence"
    assert "'fetch' -> 'summarize'" in str(info.value)
    step = await store.load_step(run_id, 0)
    assert step is not None and step.intent == "fetch" and step.status == "failed"


@pytest.mark.parametrize("status", ["running", "failed", "completed"])
async def test_store_refuses_another_intent_at_a_recorded_position(
    store: DurableRunStore, status: str
) -> None:
    """`begin_step` (and a completion or failure naming an intent) at a recorded position with
    another intent raises `DurableRunDivergenceError` whatever that step's status."""
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    await store.begin_step(run_id, 0, "fetch", "logic", None, worker_id="w1")
    if status == "failed":
        await store.fail_step(run_id, 0, {"message": "boom"}, worker_id="w1")
    elif status == "completed":
        await store.complete_step(run_id, 0, 1, worker_id="w1")
    with pytest.raises(DurableRunDivergenceError):
        await store.begin_step(run_id, 0, "summarize", "logic", None, worker_id="w1")
    with pytest.raises(DurableRunDivergenceError):
        await store.complete_step(run_id, 0, 2, intent="summarize", worker_id="w1")
    with pytest.raises(DurableRunDivergenceError):
        await store.fail_step(run_id, 0, {"message": "x"}, intent="summarize", worker_id="w1")
    step = await store.load_step(run_id, 0)
    assert step is not None and step.intent == "fetch" and step.status == status
    assert step.attempts == 1


async def test_completed_run_returns_its_outcome_without_calling_the_task(
    store: DurableRunStore,
) -> None:
    run_id = rid()
    calls: list[str] = []

    async def v1(ctx: DurableContext) -> int:
        calls.append("v1")
        # a task that catches a failed step still completes, and still replays
        with contextlib.suppress(ZeroDivisionError):
            await ctx.step("flaky", lambda: 1 / 0)
        return int(await ctx.step("a", lambda: 1))

    async def v2(ctx: DurableContext) -> int:
        calls.append("v2")
        return 2

    first = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v1)
    again = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=v2)
    assert first.result == again.result == 1 and calls == ["v1"]
    assert again.executed == 0 and again.replayed == 1
    assert again.record.status == "completed"


async def test_same_worker_id_claiming_twice_fences_the_first_claim(
    store: DurableRunStore,
) -> None:
    run_id = rid()
    first, _, _ = await store.start_or_resume(run_id, manifest(), "w1", lease_ms=10_000)
    second, _, _ = await store.start_or_resume(run_id, manifest(), "w1", lease_ms=10_000)
    assert second.lease_epoch == first.lease_epoch + 1
    old, new = first.lease_epoch, second.lease_epoch
    with pytest.raises(DurableRunLeaseLostError):
        await store.complete_step(run_id, 0, "stale", intent="s", worker_id="w1", lease_epoch=old)
    with pytest.raises(DurableRunLeaseLostError):
        await store.begin_step(run_id, 0, "s", "llm", None, worker_id="w1", lease_epoch=old)
    with pytest.raises(DurableRunLeaseLostError):
        await store.fail_step(
            run_id, 0, {"message": "x"}, intent="s", worker_id="w1", lease_epoch=old
        )
    with pytest.raises(DurableRunLeaseLostError):
        await store.end_run(run_id, "w1", "completed", "stale", lease_epoch=old)
    assert await store.renew_lease(run_id, "w1", lease_ms=10_000, lease_epoch=old) is False
    assert await store.load_step(run_id, 0) is None
    assert await store.renew_lease(run_id, "w1", lease_ms=10_000, lease_epoch=new) is True
    done = await store.complete_step(
        run_id, 0, "fresh", intent="s", worker_id="w1", lease_epoch=new
    )
    assert done.result == "fresh"
    end = await store.end_run(run_id, "w1", "completed", "ok", lease_epoch=new)
    assert end.status == "completed" and end.lease_holder is None


async def test_two_drivers_under_one_worker_id_never_both_commit(store: DurableRunStore) -> None:
    run_id = rid()
    gate = asyncio.Event()
    ran: list[str] = []

    async def task(ctx: DurableContext) -> str:
        await ctx.step("s0", lambda: ran.append("s0") or 0)
        await gate.wait()
        await ctx.step("s1", lambda: ran.append("s1") or 1)
        return "done"

    a = asyncio.create_task(
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task, worker_id="w")
    )
    while not ran:
        await asyncio.sleep(0.005)
    # a second driver with the same worker id re-claims the run (a restarted pod, a duplicate)
    b = asyncio.create_task(
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task, worker_id="w")
    )
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(a, b, return_exceptions=True)
    assert isinstance(results[0], DurableRunLeaseLostError)
    assert results[1].result == "done"
    # the stale driver's step ran, but only the current claim's result was committed
    step = await store.load_step(run_id, 1)
    assert step is not None and step.attempts == 1


async def test_input_fingerprint_mismatch(store: DurableRunStore) -> None:
    run_id = rid()

    def task_with(fp: Any) -> Any:
        async def task(ctx: DurableContext) -> None:
            await ctx.step("call", lambda: "r", input_fingerprint=fp)
            raise RuntimeError("stop")

        return task

    with pytest.raises(RuntimeError):
        await run_durable(
            run_id=run_id, manifest=manifest(), store=store, task_fn=task_with({"a": 1, "b": 2})
        )
    # same fingerprint in another key order is the same input
    with pytest.raises(RuntimeError):
        await run_durable(
            run_id=run_id, manifest=manifest(), store=store, task_fn=task_with({"b": 2, "a": 1})
        )
    with pytest.raises(DurableStepInputMismatchError):
        await run_durable(
            run_id=run_id, manifest=manifest(), store=store, task_fn=task_with({"a": 1, "b": 3})
        )


async def test_now_and_uuid_stable_across_resume(store: DurableRunStore) -> None:
    run_id = rid()
    seen: list[tuple[Any, Any]] = []

    def fail_first_time() -> int:
        if len(seen) == 1:
            raise RuntimeError("crash")
        return 1

    async def task(ctx: DurableContext) -> None:
        now = await ctx.now()
        uid = await ctx.uuid()
        seen.append((now, uid))
        await ctx.step("boom", fail_first_time)

    with pytest.raises(RuntimeError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    await asyncio.sleep(0.01)
    await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0][0].tzinfo is not None
    assert len(seen[0][1]) == 36


async def test_step_failure_recorded_with_message(store: DurableRunStore) -> None:
    run_id = rid()

    def boom() -> None:
        raise ValueError("the tool exploded")

    async def task(ctx: DurableContext) -> None:
        await ctx.step("ok", lambda: 1)
        await ctx.step("explode", boom, kind="tool")

    with pytest.raises(ValueError, match="the tool exploded"):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    step = await store.load_step(run_id, 1)
    assert step is not None
    assert step.status == "failed" and step.intent == "explode" and step.kind == "tool"
    assert step.error == {"type": "ValueError", "message": "the tool exploded"}
    assert step.attempts == 1
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed" and run.lease_holder is None
    assert run.outcome == {"error": {"type": "ValueError", "message": "the tool exploded"}}


async def test_failed_step_retried_counts_attempts(store: DurableRunStore) -> None:
    run_id = rid()
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError(f"try {len(attempts)}")
        return "ok"

    async def task(ctx: DurableContext) -> str:
        return str(await ctx.step("flaky", flaky, kind="llm"))

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    res = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert res.result == "ok"
    step = await store.load_step(run_id, 0)
    assert step is not None and step.status == "completed" and step.attempts == 3


async def test_begin_then_complete_and_double_complete(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    began = await store.begin_step(run_id, 0, "llm-call", "llm", "h0", worker_id="w1")
    assert began.status == "running" and began.attempts == 1
    done = await store.complete_step(run_id, 0, {"text": "hi"}, worker_id="w1")
    assert done.status == "completed" and done.attempts == 1 and done.intent == "llm-call"
    assert done.kind == "llm" and done.input_hash == "h0"
    assert done.result == {"text": "hi"}
    with pytest.raises(Exception) as info:
        await store.complete_step(run_id, 0, {"text": "again"}, worker_id="w1")
    assert getattr(info.value, "code", None) == "step_completed"
    step = await store.load_step(run_id, 0)
    assert step is not None and step.result == {"text": "hi"}
    run = await store.load_run(run_id)
    assert run is not None and run.step_count == 1


async def test_start_or_resume_returns_completed_steps_in_order(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    for i in range(5):
        await store.complete_step(run_id, i, i * 10, intent=f"s{i}", worker_id="w1")
    await store.fail_step(run_id, 5, {"message": "nope"}, intent="s5", worker_id="w1")
    _, steps, _ = await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    assert [(s.step_index, s.result) for s in steps] == [(i, i * 10) for i in range(5)]
    assert [s.step_index for s in await store.load_steps(run_id)] == [0, 1, 2, 3, 4, 5]


async def test_completed_run_replays_without_lease(store: DurableRunStore) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> Any:
        return await ctx.step("a", lambda: [1, 2])

    await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    # two concurrent replays do not contend for the lease
    a, b = await asyncio.gather(
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task),
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task),
    )
    assert a.result == b.result == [1, 2]
    run = await store.load_run(run_id)
    assert run is not None and run.lease_holder is None and run.outcome == [1, 2]


async def test_cancellation_releases_lease(store: DurableRunStore) -> None:
    run_id = rid()
    started = asyncio.Event()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("a", lambda: 1)
        started.set()
        await asyncio.sleep(30)

    t = asyncio.create_task(
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task, worker_id="w1")
    )
    await started.wait()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    run = await store.load_run(run_id)
    assert run is not None and run.lease_holder is None and run.status == "suspended"
    # another worker resumes at once and replays step a
    res = await run_durable(
        run_id=run_id,
        manifest=manifest(),
        store=store,
        task_fn=lambda ctx: ctx.step("a", lambda: 99),
        worker_id="w2",
    )
    assert res.result == 1


# -- events --------------------------------------------------------------------------------------


async def test_first_emit_wins(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    first = await store.emit_event(run_id, "approval", {"ok": True})
    second = await store.emit_event(run_id, "approval", {"ok": False})
    assert first.accepted is True and second.accepted is False
    assert second.record.payload == {"ok": True} and second.payload == {"ok": True}
    loaded = await store.load_event(run_id, "approval")
    assert loaded is not None and loaded.payload == {"ok": True}
    assert await store.load_event(run_id, "other") is None


async def test_ctx_emit_event_is_checkpointed(store: DurableRunStore) -> None:
    run_id = rid()
    outcomes: list[Any] = []

    async def task(ctx: DurableContext) -> None:
        outcomes.append(await ctx.emit_event("k", {"v": 1}))
        if len(outcomes) == 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert [o.accepted for o in outcomes] == [True, True]  # replayed, not re-emitted


async def test_emit_to_unknown_run_is_refused(store: DurableRunStore) -> None:
    with pytest.raises(DurableRunNotFoundError):
        await store.emit_event(rid(), "k", 1)


async def test_await_event_emitted_before(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "setup", lease_ms=5000)
    await store.emit_event(run_id, "go", {"n": 7})
    await store.end_run(run_id, "setup", "suspended")

    async def task(ctx: DurableContext) -> Any:
        return await ctx.await_event("go", timeout_ms=1000)

    res = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert res.result == {"n": 7}


async def test_await_event_emitted_after(store: DurableRunStore) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> Any:
        return await ctx.await_event("go", timeout_ms=3000)

    async def emitter() -> None:
        for _ in range(200):
            if await store.load_run(run_id) is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await store.emit_event(run_id, "go", "later")

    res, _ = await asyncio.gather(
        run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task), emitter()
    )
    assert res.result == "later"


async def test_await_event_timeout(store: DurableRunStore) -> None:
    run_id = rid()
    calls = 0

    async def task(ctx: DurableContext) -> Any:
        nonlocal calls
        calls += 1
        try:
            return await ctx.await_event("never", timeout_ms=60)
        except DurableAwaitEventTimeoutError:
            return "timed out"

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    res = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert res.result == "timed out"
    assert loop.time() - t0 >= 0.05
    # the timeout is recorded: a later emit does not change the replayed outcome
    await store.emit_event(run_id, "never", "too late")
    res2 = await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert res2.result == "timed out" and calls == 1


# -- stream log and handles ----------------------------------------------------------------------


async def test_stream_append_dedup_and_seq_order(store: DurableRunStore) -> None:
    run_id = rid()
    results = [await store.append_stream_event(run_id, f"e{i}", {"i": i}) for i in range(5)]
    assert [r.accepted for r in results] == [True] * 5
    assert [r.seq for r in results] == [0, 1, 2, 3, 4]
    dup = await store.append_stream_event(run_id, "e2", {"i": "changed"})
    assert dup.accepted is False and dup.seq == 2 and dup.payload == {"i": 2}
    batch = await store.append_stream_events(
        run_id, [("e5", 5), ("e3", "dup"), ("e6", 6), ("e5", "dup-in-batch")]
    )
    assert [(r.accepted, r.seq) for r in batch] == [(True, 5), (False, 3), (True, 6), (False, 5)]
    events = await store.read_stream_events(run_id)
    assert [e.seq for e in events] == list(range(7))
    assert [e.event_id for e in events] == ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]
    assert events[2].payload == {"i": 2}
    # streams of different runs are independent
    other = await store.append_stream_event(rid(), "e0", "x")
    assert other.accepted and other.seq == 0


async def test_a_new_batch_repeating_an_id_keeps_its_first(store: DurableRunStore) -> None:
    run_id = rid()
    batch = await store.append_stream_events(run_id, [("a", 1), ("b", 2), ("a", 3), ("c", 4)])
    assert [(r.accepted, r.seq, r.payload) for r in batch] == [
        (True, 0, 1),
        (True, 1, 2),
        (False, 0, 1),
        (True, 2, 4),
    ]
    events = await store.read_stream_events(run_id)
    assert [(e.seq, e.event_id, e.payload) for e in events] == [
        (0, "a", 1),
        (1, "b", 2),
        (2, "c", 4),
    ]


async def test_read_after_cursor(store: DurableRunStore) -> None:
    run_id = rid()
    await store.append_stream_events(run_id, [(f"e{i}", i) for i in range(10)])
    assert [e.seq for e in await store.read_stream_events(run_id, after_seq=6)] == [7, 8, 9]
    assert await store.read_stream_events(run_id, after_seq=9) == []
    assert [e.seq for e in await store.read_stream_events(run_id, after_seq=-1)] == list(range(10))
    assert [e.seq for e in await store.read_stream_events(run_id, after_seq=2, limit=3)] == [
        3,
        4,
        5,
    ]
    assert await store.read_stream_events(rid()) == []


async def test_run_handle_overwrite(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    h1 = RunHandle(kind="sandbox", sandbox_id="sb-1", session_id="s", run_id="r1", cursor="3")
    await store.set_run_handle(run_id, h1)
    run = await store.load_run(run_id)
    assert run is not None and run.handle == h1
    h2 = RunHandle(kind="remote", run_id="r2", status="running", cursor="9")
    await store.set_run_handle(run_id, h2)
    run = await store.load_run(run_id)
    assert run is not None and run.handle == h2
    await store.set_run_handle(run_id, None)
    run = await store.load_run(run_id)
    assert run is not None and run.handle is None
    with pytest.raises(DurableRunNotFoundError):
        await store.set_run_handle(rid(), h1)


async def test_list_runs(store: DurableRunStore) -> None:
    ids = [rid() for _ in range(3)]
    for run_id in ids:
        await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
        await asyncio.sleep(0.003)  # distinct creation milliseconds
    await store.end_run(ids[1], "w1", "completed", {"ok": True})  # an update does not reorder
    listed = await store.list_runs(limit=1000)
    assert [r.run_id for r in listed] == ids[::-1]  # newest created first
    assert [r.run_id for r in await store.list_runs(limit=2)] == ids[:0:-1]
    completed = {r.run_id for r in await store.list_runs(status="completed", limit=1000)}
    assert ids[1] in completed and ids[0] not in completed


# -- bad input: typed error, nothing written ------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, {"x": {1, 2}}, {"b": b"bytes"}, object(), {1: "int key"}],
    ids=["nan", "inf", "set", "bytes", "object", "int-key"],
)
async def test_non_json_step_result_rejected_nothing_written(
    store: DurableRunStore, bad: Any
) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("ok", lambda: 1)
        await ctx.step("bad", lambda: bad)

    with pytest.raises(DurableValueError) as info:
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert info.value.path.startswith("result")
    assert await store.load_step(run_id, 1) is None
    assert [s.step_index for s in await store.load_steps(run_id)] == [0]


async def test_nan_path_is_named(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError) as info:
        await store.complete_step(
            run_id, 0, {"items": [{"price": 1}, {"price": math.nan}]}, intent="s", worker_id="w1"
        )
    assert info.value.path == "result.items[1].price"
    assert await store.load_step(run_id, 0) is None


async def test_non_json_manifest_rejected(store: DurableRunStore) -> None:
    with pytest.raises(DurableValueError) as info:
        DurableRunManifest("p", {"id": "t"}, {"items": [0, 1, 2, {"price": math.nan}]})
    assert info.value.path == "input.items[3].price"
    with pytest.raises(DurableValueError):
        DurableRunManifest("p", {"id": "t"}, {"when": object()})
    with pytest.raises(DurableValueError):
        DurableRunManifest("", {"id": "t"}, {})
    assert await store.list_runs() == []


async def test_empty_run_id_rejected(store: DurableRunStore) -> None:
    async def task(ctx: DurableContext) -> None:
        return None

    with pytest.raises(DurableValueError):
        await run_durable(run_id="", manifest=manifest(), store=store, task_fn=task)
    with pytest.raises(DurableValueError):
        await store.start_or_resume("", manifest(), "w1")
    with pytest.raises(DurableValueError):
        await store.append_stream_event("", "e", 1)
    with pytest.raises(DurableValueError):
        await store.append_stream_event(rid(), "e", math.nan)
    assert await store.list_runs() == []


async def test_non_json_outcome_fails_run(store: DurableRunStore) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> Any:
        await ctx.step("a", lambda: 1)
        return {"when": object()}

    with pytest.raises(DurableValueError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed"


# -- errors that resist description ---------------------------------------------------------------


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class _SurrogateError(Exception):
    """A message from bytes decoded with `surrogateescape` (subprocess output, file names)."""


class _NonJsonDetailsError(Exception):
    def to_dict(self) -> dict[str, Any]:
        return {"type": "NonJsonDetails", "message": "boom", "at": object()}


class _BrokenToDictError(Exception):
    def to_dict(self) -> dict[str, Any]:
        raise KeyError("to_dict is broken")


@pytest.mark.parametrize(
    "exc",
    [
        _UnprintableError(),
        _SurrogateError(b"bad byte \xff".decode("utf-8", "surrogateescape")),
        _NonJsonDetailsError("boom"),
        _BrokenToDictError("broken"),
    ],
    ids=["str-raises", "lone-surrogate", "non-json-to-dict", "to-dict-raises"],
)
async def test_step_error_that_resists_description_is_still_recorded(
    store: DurableRunStore, exc: Exception
) -> None:
    run_id = rid()

    def boom() -> None:
        raise exc

    async def task(ctx: DurableContext) -> None:
        await ctx.step("ok", lambda: 1)
        await ctx.step("explode", boom, kind="tool")

    with pytest.raises(type(exc)) as info:
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    assert info.value is exc  # the task's own error, not one raised while describing it
    step = await store.load_step(run_id, 1)
    assert step is not None and step.status == "failed" and step.error is not None
    assert step.error["type"] == type(exc).__name__ and isinstance(step.error["message"], str)
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed" and run.lease_holder is None
    assert run.outcome["error"] == step.error


# -- identifiers and arguments at the store boundary -----------------------------------------------


ODD_IDS = [
    "a/b/../../c",
    "..",
    ".hidden",
    "~tilde",
    "spaces and\ttabs\nand newlines",
    "ünïcödé-中文-🙂",
    "x" * 512,
    "UPPER",
    "upper",
    "%2F;DROP TABLE durable_runs;--",
]


async def test_odd_run_ids_are_distinct_runs(store: DurableRunStore) -> None:
    suffix = secrets.token_hex(3)
    ids = [f"{i}{suffix}"[:512] if len(i) < 512 else i for i in ODD_IDS]
    for n, run_id in enumerate(ids):
        await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
        await store.complete_step(run_id, 0, {"n": n}, intent="s", worker_id="w1")
        await store.emit_event(run_id, "k", n)
        await store.append_stream_event(run_id, "e", n)
        await store.end_run(run_id, "w1", "completed", n)
    for n, run_id in enumerate(ids):
        run = await store.load_run(run_id)
        assert run is not None and run.run_id == run_id and run.outcome == n
        step = await store.load_step(run_id, 0)
        assert step is not None and step.result == {"n": n}
        event = await store.load_event(run_id, "k")
        assert event is not None and event.payload == n
        assert [e.payload for e in await store.read_stream_events(run_id)] == [n]
    listed = {r.run_id for r in await store.list_runs(limit=1000)}
    assert set(ids) <= listed


@pytest.mark.parametrize("field", ["run_id", "worker_id", "intent", "key", "event_id"])
async def test_lone_surrogate_identifiers_are_refused(store: DurableRunStore, field: str) -> None:
    bad = "run-\ud800"
    run_id = bad if field == "run_id" else rid()
    worker = bad if field == "worker_id" else "w1"
    with pytest.raises(DurableValueError) as info:
        if field in ("run_id", "worker_id"):
            await store.start_or_resume(run_id, manifest(), worker, lease_ms=5000)
        elif field == "intent":
            await store.start_or_resume(run_id, manifest(), worker, lease_ms=5000)
            await store.complete_step(run_id, 0, 1, intent=bad, worker_id=worker)
        elif field == "key":
            await store.start_or_resume(run_id, manifest(), worker, lease_ms=5000)
            await store.emit_event(run_id, bad, 1)
        else:
            await store.append_stream_event(run_id, bad, 1)
    assert info.value.path == field
    if field in ("run_id", "worker_id"):
        assert await store.list_runs() == []
    else:
        assert await store.load_steps(run_id) == []
    if field == "event_id":
        assert await store.read_stream_events(run_id) == []


async def test_nul_in_input_hash_is_refused(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError):
        await store.complete_step(run_id, 0, 1, intent="s", input_hash="a\x00b", worker_id="w1")
    assert await store.load_step(run_id, 0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"after_seq": "1"}, {"after_seq": 1.0}, {"after_seq": True}, {"limit": -1}, {"limit": "2"}],
    ids=["seq-str", "seq-float", "seq-bool", "limit-negative", "limit-str"],
)
async def test_stream_read_arguments_are_validated(
    store: DurableRunStore, kwargs: dict[str, Any]
) -> None:
    run_id = rid()
    await store.append_stream_events(run_id, [(f"e{i}", i) for i in range(3)])
    with pytest.raises(DurableValueError):
        await store.read_stream_events(run_id, **kwargs)


@pytest.mark.parametrize("limit", [-1, "10", 2.0])
async def test_list_runs_limit_is_validated(store: DurableRunStore, limit: Any) -> None:
    await store.start_or_resume(rid(), manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError):
        await store.list_runs(limit=limit)


async def test_step_index_beyond_32_bits_is_refused(store: DurableRunStore) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    await store.complete_step(run_id, 2**31 - 2, "last", intent="s", worker_id="w1")
    for index in (2**31 - 1, 2**31, 2**63):
        with pytest.raises(DurableValueError):
            await store.complete_step(run_id, index, 1, intent="s", worker_id="w1")
        with pytest.raises(DurableValueError):
            await store.load_step(run_id, index)
    assert [s.step_index for s in await store.load_steps(run_id)] == [2**31 - 2]
    run = await store.load_run(run_id)
    assert run is not None and run.step_count == 2**31 - 1


@pytest.mark.parametrize("lease_ms", [2**42, 2**62, 2**64])
async def test_absurd_lease_is_refused_before_anything_is_written(
    store: DurableRunStore, lease_ms: int
) -> None:
    run_id = rid()
    with pytest.raises(DurableValueError):
        await store.start_or_resume(run_id, manifest(), "w1", lease_ms=lease_ms)
    assert await store.load_run(run_id) is None
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError):
        await store.renew_lease(run_id, "w1", lease_ms=lease_ms)
    run = await store.load_run(run_id)
    assert run is not None and run.lease_expires_at is not None
    with pytest.raises(DurableValueError):
        await run_durable(
            run_id=rid(), manifest=manifest(), store=store, task_fn=_noop, lease_ms=lease_ms
        )


async def _noop(ctx: DurableContext) -> None:
    return None


@pytest.mark.parametrize("status", ["running", "pending", "done", None])
async def test_end_run_takes_a_final_status_only(store: DurableRunStore, status: Any) -> None:
    # "running" without a lease is a state nothing else produces: `runs tail --follow` and
    # lease sweeps would wait on it forever
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError):
        await store.end_run(run_id, "w1", status, {"x": 1})
    run = await store.load_run(run_id)
    assert run is not None and run.lease_holder == "w1" and run.outcome is None


@pytest.mark.parametrize("worker", ["", "w\ud800", "w\x00"], ids=["empty", "surrogate", "nul"])
async def test_end_run_validates_the_worker_id(store: DurableRunStore, worker: str) -> None:
    run_id = rid()
    await store.start_or_resume(run_id, manifest(), "w1", lease_ms=5000)
    with pytest.raises(DurableValueError):
        await store.end_run(run_id, worker, "completed", 1)
    run = await store.load_run(run_id)
    assert run is not None and run.lease_holder == "w1" and run.status == "running"


async def test_values_handed_out_do_not_alias_the_store(store: DurableRunStore) -> None:
    # a task that edits a step result in place must not edit what a later replay sees
    run_id = rid()
    seen: list[Any] = []

    async def task(ctx: DurableContext) -> None:
        data = await ctx.step("fetch", lambda: {"items": [1, 2]})
        seen.append(data)
        data["items"].append("edited by the task")
        await ctx.emit_event("k", {"n": [1]})
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        await run_durable(run_id=run_id, manifest=manifest(), store=store, task_fn=task)
    step = await store.load_step(run_id, 0)
    assert step is not None and step.result == {"items": [1, 2]}
    step.result["items"].append("edited by a reader")
    _, completed, _ = await store.start_or_resume(run_id, manifest(), "w2", lease_ms=5000)
    assert completed[0].result == {"items": [1, 2]}
    event = await store.load_event(run_id, "k")
    assert event is not None
    event.payload["n"].append(2)
    again = await store.load_event(run_id, "k")
    assert again is not None and again.payload == {"n": [1]}
    res = await store.append_stream_event(run_id, "e", {"t": ["a"]})
    res.payload["t"].append("b")
    (read,) = await store.read_stream_events(run_id)
    read.payload["t"].append("c")
    assert [e.payload for e in await store.read_stream_events(run_id)] == [{"t": ["a"]}]
