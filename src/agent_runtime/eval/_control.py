"""agent-eval's budgeted control loop (ORIGINAL §4.2): observe and validate, then step by step
ask the stop policy, decide, act, re-observe and re-validate, until a decision, the stop policy,
the budget, an abort or an error ends the run.

The order of the checks, before each decision and once more after the last step:
1. the abort signal (the caller's, or the wall timer's; an abort also interrupts the await in
   progress, e.g. a slow `act`): `stopped_by="abort"`, failure class `timeout`;
2. the cost budget (`spent_cost_usd > max_cost_usd`): `budget`, `budget_exceeded`;
3. the stop policy (`should_stop(ctx)`, else the default: stop with pass when there are evals
   and none that failed is `critical` or `error`): `stop-policy`;
4. the step budget (`max_steps` steps taken): `budget`, `budget_exceeded`, reason
   `budget exhausted: maxSteps=<n>`.
So the state after the last step still gets its verdict, and an abort or an overspend during a
step wins over everything after it. Then `decide(ctx)`: a `stop` decision is recorded as a step
without action (`action_ok=None`) and ends the run (`policy`, completed). A `continue` decision
is acted on; a failing action is recorded on its step (`action_ok=False`, `action_error`) and the
loop goes on, unless `action_failure="stop"` (then `runtime-error`). A throw from observe,
validate, decide, should_stop or get_action_cost_usd ends the run with `runtime-error`
(failure class `runtime_error`). A step whose action ran is always recorded, even when what
follows it (cost, re-observe, re-validate) aborts or fails; its `evals_after` are then the last
evals known. `on_step` and the trace store are the caller's: their errors propagate.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar, overload

from ..errors import ValidationError
from ._records import (
    ControlBudget,
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    ControlRuntimeError,
    ControlStep,
    EventKind,
    FailureClass,
    StoppedBy,
    TraceEvent,
)
from ._trace_store import TraceStore, check_trace_store

if TYPE_CHECKING:
    from ..types import AbortController, AbortSignal

__all__ = [
    "ActionFailure",
    "ControlContext",
    "StepHistory",
    "run_agent_control_loop",
]

ActionFailure: TypeAlias = Literal["continue", "stop"]
_S = TypeVar("_S")
_SPAN_ID = "control"


class Interrupted(Exception):
    """Internal: the signal aborted while a callback ran or was awaited."""


#: result types that are never awaitable (skips the slower `inspect.isawaitable`)
_PLAIN: frozenset[type] = frozenset(
    (type(None), bool, int, float, str, tuple, list, dict, ControlDecision)
)


def _awaitable(value: Any) -> bool:
    return type(value) not in _PLAIN and inspect.isawaitable(value)


def _cancel_pending(task: asyncio.Future[Any]) -> None:
    if not task.done():
        task.cancel()


async def _race(value: Any, signal: AbortSignal) -> Any:
    """Await `value` as a task that an abort of `signal` cancels."""
    task: asyncio.Future[Any] = asyncio.ensure_future(value)

    def cancel() -> None:
        if task is not asyncio.current_task():
            task.cancel()
        else:
            # aborted from inside the callback: let it finish this step (keeping its result
            # if it returns now); it is cancelled only if it awaits on
            asyncio.get_running_loop().call_soon(_cancel_pending, task)

    remove = signal.add_listener(cancel)
    try:
        return await task
    finally:
        remove()


def _interrupted(signal: AbortSignal) -> bool:
    """After a CancelledError: True when it is the signal's doing, not the caller's cancel."""
    current = asyncio.current_task()
    return signal.aborted and (current is None or current.cancelling() == 0)


async def call_abortable(signal: AbortSignal, fn: Callable[..., Any], /, *a: Any, **kw: Any) -> Any:
    """`fn(*a, **kw)`, awaited when it returns an awaitable, raced against `signal`: an abort
    cancels the await in progress and raises `Interrupted` (so does any error raised once the
    signal is aborted); other errors, and a cancellation of the caller, pass through."""
    try:
        value = fn(*a, **kw)
        return await _race(value, signal) if _awaitable(value) else value
    except asyncio.CancelledError:
        if _interrupted(signal):
            raise Interrupted from None
        raise
    except Exception:
        if signal.aborted:
            raise Interrupted from None
        raise


async def _settle(value: Any) -> Any:
    return await value if _awaitable(value) else value


class _Clock:
    """ISO timestamps as `now_iso` writes them, the strftime part cached per second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self.prefix}{int((now - second) * 1000):03d}Z"


class StepHistory(Sequence[ControlStep]):
    """The steps taken before a point of the loop: an immutable snapshot sharing the loop's
    append-only list (no copy per step). Compares equal to a tuple of the same steps."""

    __slots__ = ("_items", "_len")

    def __init__(self, items: Sequence[ControlStep] = (), length: int | None = None) -> None:
        self._items = items
        self._len = len(items) if length is None else length

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> ControlStep: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ControlStep, ...]: ...

    def __getitem__(self, index: int | slice) -> ControlStep | tuple[ControlStep, ...]:
        if isinstance(index, slice):
            return tuple(self._items[: self._len])[index]
        n = self._len
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("step history index out of range")
        return self._items[i]

    def __iter__(self) -> Iterator[ControlStep]:
        items = self._items
        for i in range(self._len):
            yield items[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepHistory | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"StepHistory({list(self)!r})"


@dataclass(frozen=True, slots=True)
class ControlContext(Generic[_S]):
    """What `decide`, `act` and `should_stop` see at a step: the latest state and evals, the
    steps so far, the budget and what is left of it, and the loop's abort signal (aborted by
    the caller's signal or the wall timer). `run_agent_task` maps it to `AgentTaskContext`."""

    intent: str
    state: _S
    evals: tuple[ControlEvalResult, ...]
    history: Sequence[ControlStep]
    budget: ControlBudget
    step_index: int
    wall_ms: float
    spent_cost_usd: float
    abort_signal: AbortSignal
    remaining_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class _Stop:
    stopped_by: StoppedBy
    reason: str
    pass_: bool = False
    completed: bool = False
    score: float | None = None
    failure_class: FailureClass | None = None
    error: ControlRuntimeError | None = None
    limit: str | None = None  # the budget limit that ended the run (maxSteps, ...)


class _Failed(Exception):
    """Internal: a callback raised (or returned something unusable) in `phase`."""

    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(phase)
        self.phase = phase
        self.message = str(exc) or type(exc).__name__


def _num(x: float) -> str:
    """A number as JavaScript prints it in a reason (`8`, `0.5`)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _evals(value: Any) -> tuple[ControlEvalResult, ...]:
    if type(value) is tuple or type(value) is list:
        pass
    elif isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError("validate must return a list of ControlEvalResult")
    out = tuple(value)
    if not all(isinstance(e, ControlEvalResult) for e in out):
        raise ValidationError("validate must return a list of ControlEvalResult")
    return out


def _field(verdict: Any, is_mapping: bool, *names: str) -> Any:
    for name in names:
        if is_mapping:
            if name in verdict:
                return verdict[name]
        elif hasattr(verdict, name):
            return getattr(verdict, name)
    return None


def _verdict(value: Any) -> tuple[bool, bool, str | None, float | None]:
    """(stop, pass, reason, score) of a `should_stop` answer: a mapping or an object with
    `stop`, `pass` (or `pass_`), `reason`, `score`; None means do not stop."""
    if value is None:
        return False, False, None, None
    is_mapping = type(value) is dict or isinstance(value, Mapping)
    stop = _field(value, is_mapping, "stop")
    pass_ = _field(value, is_mapping, "pass", "pass_")
    reason = _field(value, is_mapping, "reason")
    score = _field(value, is_mapping, "score")
    if type(stop) is not bool:
        raise ValidationError("should_stop must return {stop: bool, pass, reason, score?}")
    if pass_ is not None and type(pass_) is not bool:
        raise ValidationError("should_stop: pass must be a bool")
    if reason is not None and not isinstance(reason, str):
        raise ValidationError("should_stop: reason must be a string")
    if score is not None and (type(score) not in (int, float) or not math.isfinite(score)):
        raise ValidationError("should_stop: score must be a finite number")
    return stop, bool(pass_), reason, None if score is None else float(score)


def _cost(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValidationError("get_action_cost_usd must return a non-negative number or None")
    return float(value)


def _default_stop(evals: tuple[ControlEvalResult, ...]) -> tuple[bool, bool, str | None]:
    if not evals or any(e.blocking for e in evals):
        return False, False, None
    return True, True, "all critical evals passed"


class _Loop:
    """One run of the loop (see the module docstring for the order of the checks)."""

    def __init__(
        self,
        *,
        intent: str,
        observe: Callable[..., Any],
        validate: Callable[..., Any],
        decide: Callable[..., Any],
        act: Callable[..., Any],
        should_stop: Callable[..., Any] | None,
        get_action_cost_usd: Callable[..., Any] | None,
        budget: ControlBudget,
        outer: AbortSignal | None,
        store: TraceStore | None,
        labels: dict[str, str],
        on_step: Callable[[ControlStep], Any] | None,
        action_failure: ActionFailure,
        controller: AbortController,
        now_iso: Callable[[], str],
    ) -> None:
        self.intent = intent
        self.observe_fn = observe
        self.validate_fn = validate
        self.decide_fn = decide
        self.act_fn = act
        self.should_stop_fn = should_stop
        self.cost_fn = get_action_cost_usd
        self.budget = budget
        self.outer = outer
        self.store = store
        self.labels = labels
        self.on_step = on_step
        self.action_failure = action_failure
        self.controller = controller
        self.signal = controller.signal
        self.now_iso = now_iso
        self.t0 = time.monotonic()
        self.timed_out = False
        self.run_id: str | None = None
        self.trace_seq = 0
        self.steps: list[ControlStep] = []
        self.state: Any = None
        self.evals: tuple[ControlEvalResult, ...] = ()
        self.spent = 0.0
        self.runtime_errors: list[ControlRuntimeError] = []

    # -- clocks, budget, signal ----------------------------------------------------------------

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.t0) * 1000.0

    def time_out(self) -> None:
        if not self.signal.aborted:
            self.timed_out = True
            self.controller.abort(f"wall time exhausted: maxWallMs={_num(self.budget.max_wall_ms)}")

    def remaining(self) -> float | None:
        cap = self.budget.max_cost_usd
        return None if cap is None else max(0.0, cap - self.spent)

    def abort_stop(self) -> _Stop:
        if self.timed_out:
            reason = str(self.signal.reason)
        else:
            r = self.outer.reason if self.outer is not None else self.signal.reason
            text = r if isinstance(r, str) else (str(r) or type(r).__name__)
            reason = "aborted" if text in ("", "aborted") else f"aborted: {text}"
        limit = "maxWallMs" if self.timed_out else None
        return _Stop("abort", reason, failure_class="timeout", limit=limit)

    def failed_stop(self, failure: _Failed, step_index: int | None) -> _Stop:
        error = ControlRuntimeError(failure.phase, failure.message, step_index)
        reason = f"{failure.phase} failed: {failure.message}"
        return _Stop("runtime-error", reason, failure_class="runtime_error", error=error)

    # -- callbacks -------------------------------------------------------------------------------

    async def call(self, phase: str, fn: Callable[..., Any], /, *a: Any, **kw: Any) -> Any:
        """`call_abortable`, with an error of the callback raised as `_Failed(phase)`."""
        signal = self.signal
        try:
            value = fn(*a, **kw)
            return await _race(value, signal) if _awaitable(value) else value
        except asyncio.CancelledError:
            if _interrupted(signal):
                raise Interrupted from None
            raise
        except Exception as exc:
            if signal.aborted:
                raise Interrupted from None
            raise _Failed(phase, exc) from exc

    async def observe_and_validate(self) -> None:
        """Observe then validate into `self.state`/`self.evals` (both or neither)."""
        history = StepHistory(self.steps)
        signal = self.signal
        state = await self.call("observe", self.observe_fn, history=history, abort_signal=signal)
        value = await self.call(
            "validate", self.validate_fn, state=state, history=history, abort_signal=signal
        )
        try:
            evals = _evals(value)
        except ValidationError as exc:
            raise _Failed("validate", exc) from exc
        self.state, self.evals = state, evals

    def context(self, index: int) -> ControlContext[Any]:
        return ControlContext(
            intent=self.intent,
            state=self.state,
            evals=self.evals,
            history=StepHistory(self.steps),
            budget=self.budget,
            step_index=index,
            wall_ms=self.elapsed_ms(),
            spent_cost_usd=self.spent,
            abort_signal=self.signal,
            remaining_cost_usd=self.remaining(),
        )

    # -- trace -----------------------------------------------------------------------------------

    async def trace(self, kind: EventKind, payload: dict[str, Any]) -> None:
        if self.store is None or self.run_id is None:
            return
        self.trace_seq += 1
        event = TraceEvent(
            event_id=f"evt-{self.trace_seq}",
            run_id=self.run_id,
            span_id=_SPAN_ID,
            kind=kind,
            timestamp=int(time.time() * 1000),
            payload=payload,
        )
        await _settle(self.store.append_event(event))

    async def record(self, step: ControlStep) -> None:
        self.steps.append(step)
        if self.store is not None:
            payload: dict[str, Any] = {
                "phase": "control_step",
                "stepIndex": step.index,
                "decisionType": step.decision.type,
                "durationMs": step.duration_ms,
                "failedEvalIds": [e.id for e in step.evals_after if not e.passed],
            }
            if step.action_ok is not None:
                payload["actionOk"] = step.action_ok
            if step.action_error is not None:
                payload["actionError"] = step.action_error
            await self.trace("log", payload)
            if step.cost_usd is not None:
                budget_payload: dict[str, Any] = {
                    "stepIndex": step.index,
                    "costUsd": step.cost_usd,
                    "spentCostUsd": self.spent,
                }
                remaining = self.remaining()
                if remaining is not None:
                    budget_payload["remainingCostUsd"] = remaining
                await self.trace("budget_decrement", budget_payload)
        if self.on_step is not None:
            await _settle(self.on_step(step))

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> ControlRunResult:
        if self.store is not None:
            run_id = await _settle(
                self.store.start_run(
                    intent=self.intent,
                    scenario_id=self.labels.get("scenarioId"),
                    project_id=self.labels.get("projectId"),
                    variant_id=self.labels.get("variantId"),
                )
            )
            if not isinstance(run_id, str) or not run_id:
                raise ValidationError("TraceStore.start_run must return a non-empty run id")
            self.run_id = run_id
            await self.trace(
                "log",
                {
                    "phase": "control_start",
                    "intent": self.intent,
                    "budget": self.budget.to_dict(),
                    **self.labels,
                },
            )
        outer = self.outer
        remove = None
        if outer is not None:
            relay = outer

            def forward() -> None:
                self.controller.abort(relay.reason)

            remove = outer.add_listener(forward)
        timer = asyncio.get_running_loop().call_later(
            self.budget.max_wall_ms / 1000.0, self.time_out
        )
        try:
            stop = await self.steps_until_stop()
        finally:
            timer.cancel()
            if remove is not None:
                remove()
        return await self.finish(stop)

    async def steps_until_stop(self) -> _Stop:
        if self.signal.aborted:
            return self.abort_stop()
        try:
            await self.observe_and_validate()
        except Interrupted:
            return self.abort_stop()
        except _Failed as failure:
            return self.failed_stop(failure, None)
        budget = self.budget
        index = 0
        while True:
            if not self.signal.aborted and self.elapsed_ms() >= budget.max_wall_ms:
                self.time_out()  # a run of sync callbacks never lets the timer fire
            if self.signal.aborted:
                return self.abort_stop()
            cap = budget.max_cost_usd
            if cap is not None and self.spent > cap:
                return _Stop(
                    "budget",
                    f"budget exhausted: maxCostUsd={_num(cap)}",
                    failure_class="budget_exceeded",
                    limit="maxCostUsd",
                )
            ctx = self.context(index)
            try:
                if self.should_stop_fn is not None:
                    verdict = _verdict(await self.call("should_stop", self.should_stop_fn, ctx))
                    stop, pass_, reason, score = verdict
                else:
                    stop, pass_, reason = _default_stop(self.evals)
                    score = None
            except Interrupted:
                return self.abort_stop()
            except ValidationError as exc:
                return self.failed_stop(_Failed("should_stop", exc), index)
            except _Failed as failure:
                return self.failed_stop(failure, index)
            if stop:
                return _Stop(
                    "stop-policy", reason or "stop policy", pass_=pass_, completed=True, score=score
                )
            if index >= budget.max_steps:
                return _Stop(
                    "budget",
                    f"budget exhausted: maxSteps={budget.max_steps}",
                    failure_class="budget_exceeded",
                    limit="maxSteps",
                )
            started_at, t = self.now_iso(), time.monotonic()
            try:
                decision = await self.call("decide", self.decide_fn, ctx)
                if not isinstance(decision, ControlDecision):
                    raise _Failed("decide", ValidationError("decide must return a ControlDecision"))
            except Interrupted:
                return self.abort_stop()
            except _Failed as failure:
                return self.failed_stop(failure, index)
            if decision.type == "stop":
                await self.record(
                    ControlStep(
                        index=index,
                        decision=decision,
                        evals_before=ctx.evals,
                        evals_after=ctx.evals,
                        started_at=started_at,
                        ended_at=self.now_iso(),
                        duration_ms=(time.monotonic() - t) * 1000.0,
                    )
                )
                return _Stop(
                    "policy",
                    decision.reason or "stopped by decision",
                    pass_=bool(decision.pass_),
                    completed=True,
                    score=decision.score,
                )
            stop_after = await self.act_on(decision, ctx, started_at, t)
            if stop_after is not None:
                return stop_after
            index += 1

    async def act_on(
        self, decision: ControlDecision, ctx: ControlContext[Any], started_at: str, t: float
    ) -> _Stop | None:
        """Act, cost, re-observe, re-validate, record the step; the stop it caused, if any."""
        index = ctx.step_index
        outcome: _Stop | None = None
        ok, result, error, cost = True, None, None, None
        try:
            result = await self.call("act", self.act_fn, decision.action, ctx)
        except Interrupted:
            ok, outcome = False, self.abort_stop()
            error = outcome.reason
        except _Failed as failure:
            ok, error = False, failure.message
            if self.action_failure == "stop":
                outcome = self.failed_stop(failure, index)
        try:
            if outcome is None and ok and self.cost_fn is not None:
                value = await self.call(
                    "get_action_cost_usd",
                    self.cost_fn,
                    action=decision.action,
                    result=result,
                    state=ctx.state,
                    evals=ctx.evals,
                    history=ctx.history,
                )
                try:
                    cost = _cost(value)
                except ValidationError as exc:
                    raise _Failed("get_action_cost_usd", exc) from exc
                if cost is not None:
                    self.spent += cost
            if outcome is None:
                await self.observe_and_validate()
        except Interrupted:
            outcome = self.abort_stop()
        except _Failed as failure:
            outcome = self.failed_stop(failure, index)
        await self.record(
            ControlStep(
                index=index,
                decision=decision,
                evals_before=ctx.evals,
                evals_after=self.evals,
                started_at=started_at,
                ended_at=self.now_iso(),
                duration_ms=(time.monotonic() - t) * 1000.0,
                action_ok=ok,
                result=result,
                action_error=error,
                cost_usd=cost,
            )
        )
        return outcome

    async def finish(self, stop: _Stop) -> ControlRunResult:
        if stop.error is not None:
            self.runtime_errors.append(stop.error)
        result = ControlRunResult(
            intent=self.intent,
            pass_=stop.pass_,
            completed=stop.completed,
            reason=stop.reason,
            stopped_by=stop.stopped_by,
            steps=tuple(self.steps),
            final_evals=self.evals,
            wall_ms=self.elapsed_ms(),
            spent_cost_usd=self.spent,
            score=stop.score,
            final_state=self.state,
            run_id=self.run_id,
            failure_class=stop.failure_class,
            runtime_errors=tuple(self.runtime_errors),
        )
        if self.store is not None and self.run_id is not None:
            if stop.error is not None:
                err: dict[str, Any] = {"phase": stop.error.phase, "message": stop.error.message}
                if stop.error.step_index is not None:
                    err["stepIndex"] = stop.error.step_index
                await self.trace("error", err)
            elif stop.limit is not None:
                await self.trace("budget_breach", {"limit": stop.limit, "reason": stop.reason})
            end: dict[str, Any] = {
                "phase": "control_end",
                "pass": result.pass_,
                "completed": result.completed,
                "reason": result.reason,
                "stoppedBy": result.stopped_by,
                "stepCount": len(result.steps),
                "wallMs": result.wall_ms,
                "spentCostUsd": result.spent_cost_usd,
            }
            if result.failure_class is not None:
                end["failureClass"] = result.failure_class
            await self.trace("log", end)
            await _settle(self.store.end_run(self.run_id, result))
        return result


def _check_callable(value: Any, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise ValidationError(f"run_agent_control_loop: {name} must be callable")


async def run_agent_control_loop(
    *,
    intent: str,
    observe: Callable[..., Any],
    validate: Callable[..., Any],
    decide: Callable[..., Any],
    act: Callable[..., Any],
    should_stop: Callable[..., Any] | None = None,
    get_action_cost_usd: Callable[..., Any] | None = None,
    budget: ControlBudget | None = None,
    signal: AbortSignal | None = None,
    store: TraceStore | None = None,
    scenario_id: str | None = None,
    project_id: str | None = None,
    variant_id: str | None = None,
    on_step: Callable[[ControlStep], Any] | None = None,
    action_failure: ActionFailure = "continue",
) -> ControlRunResult:
    """Run the control loop (see the module docstring) and return how it ended.

    Callbacks may be sync or async: `observe(*, history, abort_signal)` → state;
    `validate(*, state, history, abort_signal)` → evals; `decide(ctx)` → `ControlDecision`;
    `act(action, ctx)` → result; `should_stop(ctx)` → `{stop, pass, reason, score?}`;
    `get_action_cost_usd(*, action, result, state, evals, history)` → USD or None (asked after
    each action that succeeded); `on_step(step)` after each recorded step. Without a `store`
    the result's `run_id` is None.
    """
    from ..types import AbortController, AbortSignal

    where = "run_agent_control_loop"
    if not isinstance(intent, str):
        raise ValidationError(f"{where}: intent must be a string")
    _check_callable(observe, "observe")
    _check_callable(validate, "validate")
    _check_callable(decide, "decide")
    _check_callable(act, "act")
    _check_callable(should_stop, "should_stop", optional=True)
    _check_callable(get_action_cost_usd, "get_action_cost_usd", optional=True)
    _check_callable(on_step, "on_step", optional=True)
    if budget is not None and not isinstance(budget, ControlBudget):
        raise ValidationError(f"{where}: budget must be a ControlBudget")
    if signal is not None and not isinstance(signal, AbortSignal):
        raise ValidationError(f"{where}: signal must be an AbortSignal")
    check_trace_store(store, where)
    labels: dict[str, str] = {}
    for key, value in (
        ("scenarioId", scenario_id),
        ("projectId", project_id),
        ("variantId", variant_id),
    ):
        if value is not None:
            if not isinstance(value, str):
                raise ValidationError(f"{where}: {key} must be a string or None")
            labels[key] = value
    if action_failure not in ("continue", "stop"):
        raise ValidationError(f"{where}: action_failure must be 'continue' or 'stop'")
    loop = _Loop(
        intent=intent,
        observe=observe,
        validate=validate,
        decide=decide,
        act=act,
        should_stop=should_stop,
        get_action_cost_usd=get_action_cost_usd,
        budget=budget if budget is not None else ControlBudget(),
        outer=signal,
        store=store,
        labels=labels,
        on_step=on_step,
        action_failure=action_failure,
        controller=AbortController(),
        now_iso=_Clock(),
    )
    return await loop.run()
