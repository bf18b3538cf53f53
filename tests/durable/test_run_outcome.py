"""`RunOutcome` and `run_durable(default_outcome=...)` on every conformance store: the run
records the original's outcome (`pass`, `score`, `notes`, `metadata`; a failure's `notes` is
the error message) while a completed run still returns the task's result without calling it."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    DurableRunStore,
    RunOutcome,
    run_durable,
)
from agent_runtime.errors import DurableValueError

MANIFEST = DurableRunManifest("proj", {"id": "t1", "intent": "answer", "domain": "test"}, {"q": 1})
DEFAULT = RunOutcome(pass_=True, score=0.75, notes="graded", metadata={"grader": "rubric-v2"})


def rid() -> str:
    return f"run-{secrets.token_hex(6)}"


async def test_success_records_the_default_outcome_and_the_result(store: DurableRunStore) -> None:
    run_id = rid()
    calls: list[int] = []

    async def task(ctx: DurableContext) -> dict[str, Any]:
        calls.append(1)
        return {"answer": await ctx.step("a", lambda: 42)}

    first = await run_durable(
        run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, default_outcome=DEFAULT
    )
    assert first.result == {"answer": 42} and first.outcome == DEFAULT
    run = await store.load_run(run_id)
    assert run is not None and run.status == "completed"
    assert run.outcome == {  # the wire form: `pass`, plus our recorded result
        "pass": True,
        "score": 0.75,
        "notes": "graded",
        "metadata": {"grader": "rubric-v2"},
        "result": {"answer": 42},
    }
    again = await run_durable(
        run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, default_outcome=DEFAULT
    )
    assert again.result == {"answer": 42} and again.outcome == DEFAULT
    assert calls == [1] and again.executed == 0  # replayed without calling the task


async def test_failure_records_notes_with_the_error_message(store: DurableRunStore) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("a", lambda: 1)
        raise RuntimeError("the grader crashed")

    with pytest.raises(RuntimeError, match="the grader crashed"):
        await run_durable(
            run_id=run_id,
            manifest=MANIFEST,
            store=store,
            task_fn=task,
            default_outcome=RunOutcome(pass_=False, metadata={"grader": "rubric-v2"}),
        )
    run = await store.load_run(run_id)
    assert run is not None and run.status == "failed"
    assert run.outcome == {
        "pass": False,
        "metadata": {"grader": "rubric-v2"},
        "notes": "the grader crashed",
        "error": {"type": "RuntimeError", "message": "the grader crashed"},
    }
    assert RunOutcome.from_dict(run.outcome) == RunOutcome(
        pass_=False, notes="the grader crashed", metadata={"grader": "rubric-v2"}
    )


async def test_without_default_outcome_nothing_changes(store: DurableRunStore) -> None:
    run_id = rid()

    async def task(ctx: DurableContext) -> int:
        return 7

    res = await run_durable(run_id=run_id, manifest=MANIFEST, store=store, task_fn=task)
    assert res.result == 7 and res.outcome is None
    run = await store.load_run(run_id)
    assert run is not None and run.outcome == 7
    # a run completed without a default outcome is not read back as one
    with pytest.raises(DurableValueError):
        await run_durable(
            run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, default_outcome=DEFAULT
        )


async def test_bad_outcomes_are_refused_before_anything_is_written(
    store: DurableRunStore,
) -> None:
    for kwargs in (
        {"pass_": "yes"},
        {"score": float("nan")},
        {"score": "high"},
        {"notes": 3},
        {"metadata": ["not", "a", "mapping"]},
        {"metadata": {"x": float("inf")}},
    ):
        with pytest.raises(DurableValueError):
            RunOutcome(**kwargs)
    run_id = rid()

    async def task(ctx: DurableContext) -> int:
        return 1

    with pytest.raises(DurableValueError):
        await run_durable(
            run_id=run_id,
            manifest=MANIFEST,
            store=store,
            task_fn=task,
            default_outcome={"pass": True},  # type: ignore[arg-type]
        )
    assert await store.load_run(run_id) is None
    assert RunOutcome().to_dict() == {}
