"""`restart_failed_run` on every store: a failed run becomes a claimable new attempt of
another manifest in one change (steps and keyed events gone, stream log kept with the marker
appended, lease epoch counting on); any run that is not failed is left exactly as it was."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from agent_runtime.durable import DurableRunManifest, DurableRunStore, run_durable
from agent_runtime.errors import DurableRunError, DurableValueError


def manifest(q: str) -> DurableRunManifest:
    return DurableRunManifest(project_id="proj", task={"id": "t"}, input={"q": q})


async def _failed(store: DurableRunStore, q: str = "first") -> str:
    run_id = f"run-{secrets.token_hex(6)}"
    claim = await store.start_or_resume(run_id, manifest(q), "w1", lease_ms=5000)
    epoch = claim.run.lease_epoch
    await store.complete_step(run_id, 0, {"a": 1}, "s0", worker_id="w1", lease_epoch=epoch)
    await store.emit_event(run_id, "approval", {"ok": True})
    await store.append_stream_events(run_id, [("turn:0", {"t": "a"}), ("turn:1", {"t": "b"})])
    await store.end_run(run_id, "w1", "failed", {"error": {"message": "boom"}}, lease_epoch=epoch)
    return run_id


async def test_a_failed_run_restarts_as_a_new_attempt_of_another_manifest(
    store: DurableRunStore,
) -> None:
    run_id = await _failed(store)
    before = await store.load_run(run_id)
    assert before is not None and before.lease_epoch == 1
    restarted = await store.restart_failed_run(
        run_id, manifest("edited"), ("turn:2:restart", {"type": "session.run.restarted"})
    )
    assert restarted is not None
    assert restarted.status == "running" and restarted.lease_holder is None
    assert restarted.manifest_hash == manifest("edited").digest
    assert restarted.manifest == manifest("edited").to_dict()
    assert restarted.outcome is None and restarted.step_count == 0
    assert restarted.created_at == before.created_at
    loaded = await store.load_run(run_id)
    assert loaded == restarted
    assert await store.load_steps(run_id) == []
    assert await store.load_event(run_id, "approval") is None
    log = await store.read_stream_events(run_id)
    assert [(r.seq, r.event_id) for r in log] == [
        (0, "turn:0"),
        (1, "turn:1"),
        (2, "turn:2:restart"),
    ]
    assert log[2].payload == {"type": "session.run.restarted"}
    assert await store.stream_length(run_id) == 3
    # the new manifest claims it (the epoch counts on); the old one is a mismatch
    claim = await store.start_or_resume(run_id, manifest("edited"), "w2", lease_ms=5000)
    assert claim.run.lease_epoch == 2 and claim.completed_steps == []
    assert claim.run.lease_holder == "w2"
    # and the event of the new attempt can be emitted afresh
    assert (await store.emit_event(run_id, "approval", {"ok": False})).accepted


async def test_the_same_manifest_restarts_too_and_runs_its_steps_again(
    store: DurableRunStore,
) -> None:
    run_id = await _failed(store, "same")
    assert await store.restart_failed_run(run_id, manifest("same")) is not None
    assert len(await store.read_stream_events(run_id)) == 2  # no entry given: log unchanged
    calls: list[int] = []

    async def task(ctx: Any) -> Any:
        return await ctx.step("s0", lambda: calls.append(1) or {"a": 2})

    result = await run_durable(
        run_id=run_id, manifest=manifest("same"), store=store, task_fn=task, worker_id="w3"
    )
    assert result.result == {"a": 2} and calls == [1]
    run = await store.load_run(run_id)
    assert run is not None and run.status == "completed"


@pytest.mark.parametrize("status", ["running", "completed", "absent"])
async def test_a_run_that_is_not_failed_is_left_alone(store: DurableRunStore, status: str) -> None:
    run_id = f"run-{secrets.token_hex(6)}"
    if status != "absent":
        claim = await store.start_or_resume(run_id, manifest("q"), "w1", lease_ms=5000)
        await store.complete_step(run_id, 0, 1, "s0", worker_id="w1")
        await store.append_stream_event(run_id, "turn:0", {"t": "a"})
        if status == "completed":
            await store.end_run(run_id, "w1", "completed", {"ok": 1})
        del claim
    before = await store.load_run(run_id)
    steps = await store.load_steps(run_id)
    out = await store.restart_failed_run(run_id, manifest("other"), ("turn:2:restart", {}))
    assert out is None
    assert await store.load_run(run_id) == before
    assert await store.load_steps(run_id) == steps
    assert len(await store.read_stream_events(run_id)) == (0 if status == "absent" else 1)


async def test_of_two_racing_restarts_one_wins(store: DurableRunStore) -> None:
    run_id = await _failed(store)
    outs = await asyncio.gather(
        store.restart_failed_run(run_id, manifest("a"), ("turn:2:restart", {"by": "a"})),
        store.restart_failed_run(run_id, manifest("b"), ("turn:2:restart", {"by": "b"})),
    )
    winners = [o for o in outs if o is not None]
    assert len(winners) == 1
    log = await store.read_stream_events(run_id)
    assert len(log) == 3 and log[2].payload["by"] in ("a", "b")
    run = await store.load_run(run_id)
    assert run is not None and run.manifest_hash == winners[0].manifest_hash


async def test_bad_arguments_are_refused_before_anything_changes(store: DurableRunStore) -> None:
    run_id = await _failed(store)
    with pytest.raises(DurableValueError):
        await store.restart_failed_run("", manifest("x"))
    with pytest.raises(DurableRunError):
        await store.restart_failed_run(run_id, {"q": "x"})  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        await store.restart_failed_run(
            run_id, manifest("x"), ("turn:2:restart", {"n": float("nan")})
        )
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed"
    assert len(await store.read_stream_events(run_id)) == 2
