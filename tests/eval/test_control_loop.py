"""The agent-eval control loop (ORIGINAL §4.2): budget, stop checks, stop policies, failures,
abort (between steps and in the middle of an await), wall time, cost, history snapshots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.eval import (
    ControlBudget,
    ControlContext,
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    StepHistory,
    run_agent_control_loop,
)
from agent_runtime.types import AbortController

PASS = ControlEvalResult(id="ok", passed=True)
_CALLBACKS = frozenset(
    ("observe", "validate", "decide", "act", "should_stop", "get_action_cost_usd")
)


def failing(severity: str) -> ControlEvalResult:
    return ControlEvalResult(id=f"bad-{severity}", passed=False, severity=severity)  # type: ignore[arg-type]


class Script:
    """A loop whose callbacks count themselves; each may be replaced, and made async."""

    def __init__(self, *, is_async: bool = False) -> None:
        self.is_async = is_async
        self.calls: dict[str, int] = {}
        self.counter = 0
        self.contexts: list[ControlContext[Any]] = []
        self.evals_for: Callable[[Any], list[ControlEvalResult]] = lambda _s: []
        self.decision_for: Callable[[ControlContext[Any]], ControlDecision] = lambda ctx: (
            ControlDecision.continue_(ctx.step_index)
        )

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def sync(*a: Any, **kw: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*a, **kw)

        async def asyn(*a: Any, **kw: Any) -> Any:
            await asyncio.sleep(0)
            return sync(*a, **kw)

        return asyn if self.is_async else sync

    def kwargs(self, **over: Any) -> dict[str, Any]:
        def observe(*, history: Any, abort_signal: Any) -> int:
            return self.counter

        def validate(*, state: Any, history: Any, abort_signal: Any) -> list[ControlEvalResult]:
            return self.evals_for(state)

        def decide(ctx: ControlContext[Any]) -> ControlDecision:
            self.contexts.append(ctx)
            return self.decision_for(ctx)

        def act(action: Any, ctx: ControlContext[Any]) -> Any:
            self.counter += 1
            return {"did": action}

        base: dict[str, Any] = {
            "intent": "count",
            "observe": self._wrap("observe", observe),
            "validate": self._wrap("validate", validate),
            "decide": self._wrap("decide", decide),
            "act": self._wrap("act", act),
        }
        for key, value in over.items():
            base[key] = self._wrap(key, value) if key in _CALLBACKS and callable(value) else value
        return base


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def script(request: pytest.FixtureRequest) -> Script:
    return Script(is_async=request.param)


# --- budget, steps, decisions ------------------------------------------------------------------


async def test_default_budget_runs_eight_steps_then_reports_exhaustion(script: Script) -> None:
    result = await run_agent_control_loop(**script.kwargs())
    assert result.stopped_by == "budget"
    assert result.reason == "budget exhausted: maxSteps=8"
    assert result.failure_class == "budget_exceeded"
    assert (result.pass_, result.completed) == (False, False)
    assert [s.index for s in result.steps] == list(range(8))
    assert all(s.action_ok is True for s in result.steps)
    assert result.steps[0].result == {"did": 0}
    assert result.final_state == 8 and result.run_id is None
    assert script.contexts[0].budget == ControlBudget()


async def test_stop_decision_is_a_recorded_step_without_action(script: Script) -> None:
    script.decision_for = lambda ctx: (
        ControlDecision.stop(pass_=True, reason="done", score=0.9)
        if ctx.step_index == 2
        else ControlDecision.continue_("go")
    )
    result = await run_agent_control_loop(**script.kwargs())
    assert (result.stopped_by, result.reason, result.pass_, result.completed) == (
        "policy",
        "done",
        True,
        True,
    )
    assert result.score == 0.9 and result.failure_class is None
    assert len(result.steps) == 3 and script.calls["act"] == 2
    last = result.steps[-1]
    assert last.decision.type == "stop" and last.action_ok is None and last.result is None


async def test_stop_decision_without_pass_does_not_pass(script: Script) -> None:
    script.decision_for = lambda _ctx: ControlDecision(type="stop")
    result = await run_agent_control_loop(**script.kwargs())
    assert result.stopped_by == "policy" and result.pass_ is False and result.completed


async def test_max_steps_zero_never_decides(script: Script) -> None:
    result = await run_agent_control_loop(**script.kwargs(budget=ControlBudget(max_steps=0)))
    assert result.reason == "budget exhausted: maxSteps=0" and "decide" not in script.calls
    assert script.calls["observe"] == 1 and script.calls["validate"] == 1


# --- stop policies -----------------------------------------------------------------------------


@pytest.mark.parametrize("severity", ["warning", "info"])
async def test_default_policy_stops_with_pass_when_no_critical_eval_failed(
    script: Script, severity: str
) -> None:
    script.evals_for = lambda _s: [PASS, failing(severity)]
    result = await run_agent_control_loop(**script.kwargs())
    assert (result.stopped_by, result.pass_, result.completed) == ("stop-policy", True, True)
    assert result.reason == "all critical evals passed"
    assert "decide" not in script.calls and result.steps == ()
    assert result.final_evals == (PASS, failing(severity))


@pytest.mark.parametrize("severity", ["critical", "error"])
async def test_default_policy_continues_while_a_critical_eval_fails(
    script: Script, severity: str
) -> None:
    # the eval fails until two actions were taken
    script.evals_for = lambda state: [PASS] if state >= 2 else [failing(severity)]
    result = await run_agent_control_loop(**script.kwargs())
    assert result.stopped_by == "stop-policy" and result.pass_
    assert len(result.steps) == 2
    assert result.steps[0].evals_before == (failing(severity),)
    assert result.steps[1].evals_after == (PASS,)


async def test_default_policy_continues_without_evals(script: Script) -> None:
    result = await run_agent_control_loop(**script.kwargs(budget=ControlBudget(max_steps=2)))
    assert result.stopped_by == "budget" and len(result.steps) == 2


async def test_should_stop_mapping_ends_with_stop_policy(script: Script) -> None:
    def should_stop(ctx: ControlContext[Any]) -> dict[str, Any]:
        if ctx.state >= 3:
            return {"stop": True, "pass": True, "reason": "three", "score": 1}
        return {"stop": False, "pass": False, "reason": "not yet"}

    script.evals_for = lambda _s: [PASS]  # the default policy would stop at once
    result = await run_agent_control_loop(**script.kwargs(should_stop=should_stop))
    assert (result.stopped_by, result.reason, result.pass_, result.score) == (
        "stop-policy",
        "three",
        True,
        1.0,
    )
    assert len(result.steps) == 3 and script.calls["should_stop"] == 4


async def test_should_stop_object_with_pass_attribute(script: Script) -> None:
    class Verdict:
        stop = True
        pass_ = False
        reason = "object says no"

    result = await run_agent_control_loop(**script.kwargs(should_stop=lambda _c: Verdict()))
    assert (result.stopped_by, result.pass_, result.reason) == (
        "stop-policy",
        False,
        "object says no",
    )


async def test_the_state_after_the_last_step_still_gets_its_verdict(script: Script) -> None:
    script.evals_for = lambda state: [PASS] if state >= 1 else [failing("critical")]
    result = await run_agent_control_loop(**script.kwargs(budget=ControlBudget(max_steps=1)))
    assert result.stopped_by == "stop-policy" and result.pass_ and len(result.steps) == 1


# --- runtime errors and action failures ----------------------------------------------------------


def boom(*_a: Any, **_kw: Any) -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize("phase", ["observe", "validate", "decide", "should_stop"])
async def test_a_throw_from_a_callback_ends_with_runtime_error(script: Script, phase: str) -> None:
    result = await run_agent_control_loop(**script.kwargs(**{phase: boom}))
    assert result.stopped_by == "runtime-error" and result.failure_class == "runtime_error"
    assert result.reason == f"{phase} failed: boom"
    assert [(e.phase, e.message) for e in result.runtime_errors] == [(phase, "boom")]
    assert (result.pass_, result.completed) == (False, False)
    assert result.steps == ()


async def test_a_throw_when_re_observing_keeps_the_step_that_acted(script: Script) -> None:
    def observe(*, history: Any, abort_signal: Any) -> int:
        if script.counter:
            raise RuntimeError("sensor down")
        return 0

    result = await run_agent_control_loop(**script.kwargs(observe=observe))
    assert result.reason == "observe failed: sensor down"
    assert len(result.steps) == 1 and result.steps[0].action_ok is True
    assert result.runtime_errors[0].step_index == 0


@pytest.mark.parametrize(
    ("over", "phase"),
    [
        ({"decide": lambda _c: "continue"}, "decide"),
        ({"validate": lambda **_k: [{"id": "x"}]}, "validate"),
        ({"validate": lambda **_k: None}, "validate"),
        ({"should_stop": lambda _c: {"stop": "yes"}}, "should_stop"),
        ({"get_action_cost_usd": lambda **_k: -1}, "get_action_cost_usd"),
        ({"get_action_cost_usd": lambda **_k: float("nan")}, "get_action_cost_usd"),
        ({"get_action_cost_usd": boom}, "get_action_cost_usd"),
    ],
)
async def test_an_unusable_answer_is_a_runtime_error(
    script: Script, over: dict[str, Any], phase: str
) -> None:
    result = await run_agent_control_loop(**script.kwargs(**over))
    assert result.stopped_by == "runtime-error" and result.runtime_errors[0].phase == phase


async def test_a_failing_action_is_recorded_and_the_loop_continues(script: Script) -> None:
    def act(action: Any, ctx: ControlContext[Any]) -> Any:
        if ctx.step_index == 0:
            raise ValueError("first try fails")
        script.counter += 1
        return "ok"

    result = await run_agent_control_loop(
        **script.kwargs(act=act, budget=ControlBudget(max_steps=3))
    )
    first, second = result.steps[0], result.steps[1]
    assert (first.action_ok, first.action_error, first.result) == (False, "first try fails", None)
    assert (second.action_ok, second.action_error, second.result) == (True, None, "ok")
    assert result.stopped_by == "budget" and len(result.steps) == 3
    assert result.runtime_errors == ()


async def test_action_failure_stop_ends_with_runtime_error(script: Script) -> None:
    result = await run_agent_control_loop(
        **script.kwargs(act=boom, action_failure="stop", get_action_cost_usd=lambda **_k: 1.0)
    )
    assert result.stopped_by == "runtime-error" and result.reason == "act failed: boom"
    assert len(result.steps) == 1 and result.steps[0].action_ok is False
    assert result.steps[0].cost_usd is None and result.spent_cost_usd == 0  # only ok actions cost
    assert result.runtime_errors[0].phase == "act"


# --- cost budget -------------------------------------------------------------------------------


async def test_cost_budget_stops_once_exceeded(script: Script) -> None:
    seen: list[tuple[float, float | None]] = []

    def cost(*, action: Any, result: Any, state: Any, evals: Any, history: Any) -> float:
        assert result == {"did": action}
        return 0.5

    def decide(ctx: ControlContext[Any]) -> ControlDecision:
        seen.append((ctx.spent_cost_usd, ctx.remaining_cost_usd))
        return ControlDecision.continue_(ctx.step_index)

    result = await run_agent_control_loop(
        **script.kwargs(
            decide=decide, get_action_cost_usd=cost, budget=ControlBudget(max_cost_usd=1.0)
        )
    )
    # reaching the cap exactly is not exceeding it: the third step runs, then the loop stops
    assert seen == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    assert (result.stopped_by, result.reason, result.failure_class) == (
        "budget",
        "budget exhausted: maxCostUsd=1",
        "budget_exceeded",
    )
    assert result.spent_cost_usd == 1.5 and [s.cost_usd for s in result.steps] == [0.5] * 3


async def test_no_cost_reported_spends_nothing(script: Script) -> None:
    result = await run_agent_control_loop(
        **script.kwargs(
            get_action_cost_usd=lambda **_k: None,
            budget=ControlBudget(max_steps=2, max_cost_usd=0),
        )
    )
    assert result.stopped_by == "budget" and result.reason == "budget exhausted: maxSteps=2"
    assert result.spent_cost_usd == 0


# --- abort, wall time, cancellation ------------------------------------------------------------


async def test_abort_interrupts_a_slow_act_in_progress() -> None:
    controller = AbortController()
    started, cancelled = asyncio.Event(), asyncio.Event()
    seen_signal: list[Any] = []

    async def act(action: Any, ctx: ControlContext[Any]) -> Any:
        seen_signal.append(ctx.abort_signal)
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def abort_when_started() -> None:
        await started.wait()
        controller.abort("user pressed stop")

    script = Script()
    helper = asyncio.create_task(abort_when_started())
    result = await run_agent_control_loop(**script.kwargs(act=act, signal=controller.signal))
    await helper
    assert cancelled.is_set()
    assert (result.stopped_by, result.failure_class) == ("abort", "timeout")
    assert result.reason == "aborted: user pressed stop"
    assert result.steps[0].action_ok is False and result.steps[0].action_error == result.reason
    assert seen_signal[0].aborted and seen_signal[0] is not controller.signal
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_an_interrupted_callback_that_raises_otherwise_still_reads_as_abort() -> None:
    controller = AbortController()

    async def observe(*, history: Any, abort_signal: Any) -> int:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("socket closed") from None
        return 0

    asyncio.get_running_loop().call_soon(controller.abort)
    result = await run_agent_control_loop(
        **Script().kwargs(observe=observe, signal=controller.signal)
    )
    assert result.stopped_by == "abort" and result.reason == "aborted"
    assert result.runtime_errors == () and result.final_state is None


async def test_an_aborted_signal_calls_nothing(script: Script) -> None:
    controller = AbortController()
    controller.abort()
    result = await run_agent_control_loop(**script.kwargs(signal=controller.signal))
    assert result.stopped_by == "abort" and result.reason == "aborted" and script.calls == {}


async def test_abort_between_steps_stops_before_the_next_decision(script: Script) -> None:
    controller = AbortController()

    def act(action: Any, ctx: ControlContext[Any]) -> Any:
        controller.abort("enough")
        return "ok"

    result = await run_agent_control_loop(**script.kwargs(act=act, signal=controller.signal))
    assert result.stopped_by == "abort" and result.reason == "aborted: enough"
    assert len(result.steps) == 1 and result.steps[0].action_ok is True


async def test_a_callback_that_aborts_and_awaits_on_is_interrupted() -> None:
    controller = AbortController()

    async def act(action: Any, ctx: ControlContext[Any]) -> Any:
        controller.abort("from inside")
        await asyncio.sleep(3600)

    result = await run_agent_control_loop(**Script().kwargs(act=act, signal=controller.signal))
    assert result.reason == "aborted: from inside" and result.steps[0].action_ok is False


async def test_the_wall_timer_aborts_a_slow_await() -> None:
    async def act(action: Any, ctx: ControlContext[Any]) -> Any:
        await asyncio.Event().wait()  # forever

    result = await run_agent_control_loop(
        **Script().kwargs(act=act, budget=ControlBudget(max_wall_ms=1))
    )
    assert (result.stopped_by, result.failure_class) == ("abort", "timeout")
    assert result.reason == "wall time exhausted: maxWallMs=1"
    assert result.steps[0].action_ok is False


async def test_wall_time_is_enforced_between_sync_steps() -> None:
    def act(action: Any, ctx: ControlContext[Any]) -> Any:
        time.sleep(0.005)  # blocks the event loop: the timer cannot fire
        return "slow"

    result = await run_agent_control_loop(
        **Script().kwargs(act=act, budget=ControlBudget(max_wall_ms=1, max_steps=50))
    )
    assert result.stopped_by == "abort" and result.reason == "wall time exhausted: maxWallMs=1"
    assert len(result.steps) == 1 and result.steps[0].action_ok is True


async def test_cancelling_the_caller_propagates_and_cancels_the_await() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def act(action: Any, ctx: ControlContext[Any]) -> Any:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(run_agent_control_loop(**Script().kwargs(act=act)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


# --- context and history -----------------------------------------------------------------------


async def test_context_carries_state_evals_history_and_clock(script: Script) -> None:
    script.evals_for = lambda state: [failing("critical")]
    controller = AbortController()
    result = await run_agent_control_loop(
        **script.kwargs(budget=ControlBudget(max_steps=3), signal=controller.signal)
    )
    ctxs = script.contexts
    assert [c.step_index for c in ctxs] == [0, 1, 2]
    assert [c.state for c in ctxs] == [0, 1, 2]
    assert all(c.evals == (failing("critical"),) for c in ctxs)
    assert all(c.intent == "count" and c.remaining_cost_usd is None for c in ctxs)
    assert all(c.wall_ms >= 0 and not c.abort_signal.aborted for c in ctxs)
    # each history is the snapshot of its moment, even after later steps were appended
    assert [len(c.history) for c in ctxs] == [0, 1, 2]
    assert ctxs[2].history == result.steps[:2] and ctxs[1].history == (result.steps[0],)


def test_step_history_is_a_sequence_snapshot() -> None:
    items: list[Any] = ["a", "b"]
    h = StepHistory(items)
    items.append("c")
    assert len(h) == 2 and list(h) == ["a", "b"] and h[-1] == "b" and h[0:1] == ("a",)
    assert h == ("a", "b") and h == ["a", "b"] and h != ("a",) and h != "ab"
    assert "b" in h and h.index("b") == 1
    with pytest.raises(IndexError):
        h[2]
    assert hash(h) == hash(("a", "b"))


async def test_on_step_sees_each_step_and_its_errors_propagate(script: Script) -> None:
    seen: list[int] = []

    async def on_step(step: Any) -> None:
        seen.append(step.index)

    result = await run_agent_control_loop(
        **script.kwargs(on_step=on_step, budget=ControlBudget(max_steps=3))
    )
    assert seen == [0, 1, 2] and len(result.steps) == 3

    def bad_sink(step: Any) -> None:
        raise OSError("sink full")

    with pytest.raises(OSError, match="sink full"):
        await run_agent_control_loop(**Script().kwargs(on_step=bad_sink))


async def test_result_is_wire_ready() -> None:
    result = await run_agent_control_loop(**Script().kwargs(budget=ControlBudget(max_steps=1)))
    data = result.to_dict()
    assert data["runId"] is None and data["stoppedBy"] == "budget" and data["pass"] is False
    assert ControlRunResult.from_dict(data) == result


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over",
    [
        {"intent": 3},
        {"observe": None},
        {"act": "act"},
        {"should_stop": 1},
        {"on_step": "x"},
        {"budget": {"max_steps": 2}},
        {"signal": object()},
        {"store": object()},
        {"scenario_id": 5},
        {"action_failure": "retry"},
    ],
)
async def test_bad_arguments_are_refused_before_anything_runs(over: dict[str, Any]) -> None:
    script = Script()
    kwargs = script.kwargs()
    kwargs.update(over)
    with pytest.raises(ValidationError):
        await run_agent_control_loop(**kwargs)
    assert script.calls == {}
