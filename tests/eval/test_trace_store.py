"""TraceStore: the run id comes from the store, the loop's trace events and result go into it
(sync and async stores); InMemoryTraceStore's rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_runtime.errors import NotFoundError, ValidationError
from agent_runtime.eval import (
    ControlBudget,
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    InMemoryTraceStore,
    TraceEvent,
    TraceStore,
    run_agent_control_loop,
)


def _loop_kwargs(**over: Any) -> dict[str, Any]:
    state = {"n": 0}

    def act(action: Any, ctx: Any) -> str:
        state["n"] += 1
        return "ok"

    base: dict[str, Any] = {
        "intent": "trace me",
        "observe": lambda **_k: state["n"],
        "validate": lambda **_k: [ControlEvalResult(id="e", passed=False, severity="error")],
        "decide": lambda ctx: ControlDecision.continue_(ctx.step_index),
        "act": act,
        "get_action_cost_usd": lambda **_k: 0.25,
        "budget": ControlBudget(max_steps=2),
    }
    base.update(over)
    return base


class AsyncStore:
    """A TraceStore whose methods are coroutines, over an InMemoryTraceStore."""

    def __init__(self) -> None:
        self.inner = InMemoryTraceStore(new_run_id=lambda: "async-run")

    async def start_run(self, **kw: Any) -> str:
        await asyncio.sleep(0)
        return self.inner.start_run(**kw)

    async def append_event(self, event: TraceEvent) -> None:
        await asyncio.sleep(0)
        self.inner.append_event(event)

    async def end_run(self, run_id: str, result: ControlRunResult) -> None:
        await asyncio.sleep(0)
        self.inner.end_run(run_id, result)


async def test_without_a_store_there_is_no_run_id() -> None:
    result = await run_agent_control_loop(**_loop_kwargs())
    assert result.run_id is None and result.to_dict()["runId"] is None


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_store_gives_the_run_id_and_receives_the_trace(is_async: bool) -> None:
    wrapper = AsyncStore() if is_async else None
    store = wrapper.inner if wrapper is not None else InMemoryTraceStore(new_run_id=lambda: "r1")
    run_id = "async-run" if is_async else "r1"
    result = await run_agent_control_loop(
        **_loop_kwargs(store=wrapper or store, scenario_id="s", project_id="p", variant_id="v")
    )
    assert result.run_id == run_id
    run = store.get_run(run_id)
    assert run is not None and run.result == result
    assert (run.intent, run.scenario_id, run.project_id, run.variant_id) == (
        "trace me",
        "s",
        "p",
        "v",
    )
    events = store.list_events(run_id)
    assert [e.event_id for e in events] == [f"evt-{i}" for i in range(1, len(events) + 1)]
    assert all(e.run_id == run_id and e.span_id == "control" for e in events)
    kinds = [(e.kind, e.payload.get("phase")) for e in events]
    assert kinds == [
        ("log", "control_start"),
        ("log", "control_step"),
        ("budget_decrement", None),
        ("log", "control_step"),
        ("budget_decrement", None),
        ("budget_breach", None),
        ("log", "control_end"),
    ]
    start = events[0].payload
    assert start["budget"] == {"maxSteps": 2, "maxWallMs": 300000}
    assert (start["scenarioId"], start["projectId"], start["variantId"]) == ("s", "p", "v")
    step = events[1].payload
    assert step["stepIndex"] == 0 and step["actionOk"] is True and step["failedEvalIds"] == ["e"]
    assert events[4].payload["spentCostUsd"] == 0.5
    assert events[5].payload == {"limit": "maxSteps", "reason": "budget exhausted: maxSteps=2"}
    end = events[-1].payload
    assert end["stoppedBy"] == "budget" and end["failureClass"] == "budget_exceeded"
    assert end["stepCount"] == 2 and end["pass"] is False


async def test_a_runtime_error_is_traced_as_an_error_event() -> None:
    store = InMemoryTraceStore()

    def decide(_ctx: Any) -> Any:
        raise RuntimeError("no idea")

    result = await run_agent_control_loop(**_loop_kwargs(store=store, decide=decide))
    assert result.run_id is not None
    errors = [e for e in store.list_events(result.run_id) if e.kind == "error"]
    assert [e.payload for e in errors] == [
        {"phase": "decide", "message": "no idea", "stepIndex": 0}
    ]


def test_the_protocol_is_structural() -> None:
    assert isinstance(InMemoryTraceStore(), TraceStore)
    assert isinstance(AsyncStore(), TraceStore)
    assert not isinstance(object(), TraceStore)


def test_in_memory_store_rules() -> None:
    store = InMemoryTraceStore(new_run_id=iter(["a", "a", "b"]).__next__)
    assert store.start_run(intent="x", scenario_id="s1") == "a"
    with pytest.raises(ValidationError, match="already taken"):
        store.start_run(intent="x")
    store.start_run(intent="y", scenario_id="s2")
    ev = TraceEvent(event_id="evt-1", run_id="a", span_id="c", kind="log", timestamp=1)
    store.append_event(ev)
    with pytest.raises(NotFoundError):
        store.append_event(
            TraceEvent(event_id="e", run_id="zz", span_id="c", kind="log", timestamp=1)
        )
    with pytest.raises(ValidationError):
        store.append_event({"eventId": "e"})  # type: ignore[arg-type]
    result = ControlRunResult(
        intent="x", pass_=True, completed=True, reason="r", stopped_by="policy"
    )
    store.end_run("a", result)
    with pytest.raises(ValidationError, match="has ended"):
        store.end_run("a", result)
    with pytest.raises(ValidationError, match="has ended"):
        store.append_event(ev)
    with pytest.raises(ValidationError):
        store.end_run("b", "done")  # type: ignore[arg-type]
    assert store.list_events("a") == (ev,) and store.list_events("nope") == ()
    assert store.get_run("nope") is None
    assert [r.run_id for r in store.list_runs()] == ["a", "b"]
    assert [r.run_id for r in store.list_runs(scenario_id="s2")] == ["b"]
    with pytest.raises(ValidationError):
        store.start_run(intent=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        InMemoryTraceStore(new_run_id="x")  # type: ignore[arg-type]


async def test_a_store_without_a_run_id_is_refused() -> None:
    class Bad(InMemoryTraceStore):
        def start_run(self, **_kw: Any) -> str:
            return ""

    with pytest.raises(ValidationError, match="run id"):
        await run_agent_control_loop(**_loop_kwargs(store=Bad()))
