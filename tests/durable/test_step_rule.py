"""The step-transition rule: one pure function (`_steps.next_step`), and every store agrees
with it, the SQL stores included (their rule is written in SQL).

Every sequence of up to three writes at one position, over seven kinds of write, is applied
to every store; each answer (the record, or the error) must be what the rule predicts.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agent_runtime.durable import DurableRunManifest, DurableRunStore
from agent_runtime.durable._steps import StepState, StepWrite, next_step
from agent_runtime.errors import DurableRunDivergenceError, DurableRunError

MANIFEST = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"q": 1})

# (method, intent, kind, input_hash): begin, complete and fail, named or not, two intents
OPS: list[tuple[str, str | None, str, str | None]] = [
    ("begin", "A", "llm", "h1"),
    ("begin", "A", "tool", None),
    ("complete", "A", "logic", None),
    ("complete", None, "logic", None),
    ("complete", "B", "logic", "h2"),
    ("fail", "A", "tool", "h2"),
    ("fail", None, "logic", None),
]
SEQUENCES = [s for n in (1, 2, 3) for s in itertools.product(range(len(OPS)), repeat=n)]


def _write(op: int, run_id: str, index: int) -> StepWrite:
    method, intent, kind, input_hash = OPS[op]
    status = {"begin": "running", "complete": "completed", "fail": "failed"}[method]
    return StepWrite(
        run_id,
        index,
        status,  # type: ignore[arg-type]
        intent,
        kind,  # type: ignore[arg-type]
        input_hash,
        f'{{"n":{op}}}' if method == "complete" else None,
        f'{{"message":"m{op}"}}' if method == "fail" else None,
        None,
        None,
    )


async def _apply(store: DurableRunStore, op: int, run_id: str, index: int) -> Any:
    method, intent, kind, input_hash = OPS[op]
    if method == "begin":
        assert intent is not None
        return await store.begin_step(run_id, index, intent, kind, input_hash)  # type: ignore[arg-type]
    if method == "complete":
        return await store.complete_step(
            run_id,
            index,
            {"n": op},
            intent=intent,
            kind=kind,
            input_hash=input_hash,  # type: ignore[arg-type]
        )
    return await store.fail_step(
        run_id,
        index,
        {"message": f"m{op}"},
        intent=intent,
        kind=kind,
        input_hash=input_hash,  # type: ignore[arg-type]
    )


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, DurableRunDivergenceError):
        return "diverged"
    assert isinstance(exc, DurableRunError), exc
    return str(exc.code)


def test_the_rule_by_hand() -> None:
    run = "r"
    begun = next_step(_write(0, run, 0), None, 10)
    assert begun == StepState("A", "llm", "h1", "running", 1, 10, None)
    done = next_step(_write(3, run, 0), begun, 20)  # completed without naming the intent
    assert done == StepState("A", "llm", "h1", "completed", 1, 10, 20)
    failed = next_step(_write(5, run, 0), None, 30)  # failed without a begin
    assert failed == StepState("A", "tool", "h2", "failed", 1, 30, 30)
    retried = next_step(_write(0, run, 0), failed, 40)  # a retry is a new attempt
    assert retried == StepState("A", "llm", "h1", "running", 2, 40, None)
    with pytest.raises(DurableRunError) as info:
        next_step(_write(2, run, 0), done, 50)
    assert info.value.code == "step_completed"
    with pytest.raises(DurableRunError) as info:
        next_step(_write(6, run, 0), None, 50)
    assert info.value.code == "step_not_begun"
    for prev in (begun, done, failed):
        with pytest.raises(DurableRunDivergenceError):
            next_step(_write(4, run, 0), prev, 50)


async def test_every_store_applies_the_rule(store: DurableRunStore) -> None:
    run_id = "rule"
    await store.start_or_resume(run_id, MANIFEST, "w", lease_ms=60_000)
    recorded: set[int] = set()
    for index, sequence in enumerate(SEQUENCES):
        prev: StepState | None = None
        prev_started: Any = None
        for op in sequence:
            try:
                want: StepState | str = next_step(_write(op, run_id, index), prev, 0)
            except DurableRunError as exc:
                want = _outcome(exc)
            try:
                rec = await _apply(store, op, run_id, index)
            except DurableRunError as exc:
                assert _outcome(exc) == want, (sequence, op)
                continue
            assert isinstance(want, StepState), (sequence, op, rec)
            got = (rec.intent, rec.kind, rec.input_hash, rec.status, rec.attempts)
            assert got == want[:5], (sequence, op)
            method = OPS[op][0]
            assert rec.result == ({"n": op} if method == "complete" else None)
            assert rec.error == ({"message": f"m{op}"} if method == "fail" else None)
            # a begun step keeps its start; any other write starts a new attempt
            kept = prev is not None and prev.status == "running"
            assert (rec.started_at == prev_started) if kept else rec.started_at is not None
            assert (rec.completed_at is None) == (rec.status == "running")
            stored = await store.load_step(run_id, index)
            assert stored == rec
            recorded.add(index)
            prev, prev_started = want, rec.started_at
        if index not in recorded:  # every write was refused: nothing at all was recorded
            assert await store.load_step(run_id, index) is None
    # a refused write leaves no trace, step_count included
    run = await store.load_run(run_id)
    assert run is not None and run.step_count == max(recorded) + 1
    assert [s.step_index for s in await store.load_steps(run_id)] == sorted(recorded)
