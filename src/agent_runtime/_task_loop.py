"""`run_agent_task`: an `AgentAdapter` driven through the readiness preflight and the budgeted
control loop (ORIGINAL §4.1), and `summarize_agent_task_run` (§4.5).

Beyond the original: the caller's abort signal also interrupts a knowledge provider's await
(an `answer_questions` waiting for a person, say), and once it is aborted no further provider
method is called. The run then goes on with what it has (no answers, no evidence, the previous
report; the task's own scoring in place of `build_readiness`), every phase still emits its end
event, and the control loop, seeing the abort, ends the run `aborted`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ValidationError
from .eval._control import (
    ControlContext,
    Interrupted,
    call_abortable,
    run_agent_control_loop,
)
from .eval._readiness import (
    acquisition_plans_for_knowledge_gaps,
    blocking_knowledge_eval,
    check_minimum_score,
    score_knowledge_readiness,
    user_questions_for_knowledge_gaps,
)
from .eval._records import (
    FAILURE_CLASSES,
    ControlBudget,
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    ControlStep,
    DataAcquisitionPlan,
    KnowledgeReadinessReport,
    RunRecord,
    UserQuestion,
)
from .eval._trace_store import TraceStore, check_trace_store
from .readiness import DEFAULT_MINIMUM_READINESS_SCORE, decide_knowledge_readiness
from .types import (
    AbortSignal,
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    AgentAdapter,
    AgentKnowledgeProvider,
    AgentRuntimeEvent,
    AgentTaskContext,
    AgentTaskRunResult,
    AgentTaskRunSummary,
    AgentTaskSpec,
    AgentTaskStatus,
    ControlEndEvent,
    ControlStartEvent,
    ControlStepEvent,
    QuestionsEndEvent,
    QuestionsStartEvent,
    ReadinessEndEvent,
    ReadinessStartEvent,
    TaskEndEvent,
    TaskStartEvent,
)

__all__ = ["BLOCKED_REASON_PREFIX", "run_agent_task", "summarize_agent_task_run"]

#: the reason prefix of the default decision on blocked knowledge (and what marks `blocked`)
BLOCKED_REASON_PREFIX = "knowledge readiness blocked"
_WHERE = "run_agent_task"


def _method(obj: Any, name: str, owner: str, *, required: bool = False) -> Any:
    fn = getattr(obj, name, None)
    if fn is None and not required:
        return None
    if not callable(fn):
        raise ValidationError(f"{_WHERE}: {owner}.{name} must be callable")
    return fn


def _report(value: Any, where: str) -> KnowledgeReadinessReport:
    if not isinstance(value, KnowledgeReadinessReport):
        raise ValidationError(f"{where} must return a KnowledgeReadinessReport")
    return value


def _answers(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError("answer_questions must return a mapping of question id to answer")
    return dict(value)


def _evidence_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError("execute_acquisition_plans must return a list of evidence ids")
    ids = tuple(value)
    if not all(isinstance(i, str) for i in ids):
        raise ValidationError("execute_acquisition_plans must return a list of evidence ids")
    return ids


def _default_readiness(task: AgentTaskSpec) -> KnowledgeReadinessReport:
    # `{domain, ...metadata}`: an undefined domain is absent on the original's wire, not null
    metadata: dict[str, Any] = {} if task.domain is None else {"domain": task.domain}
    metadata.update(task.metadata or {})
    return score_knowledge_readiness(task.id, task.required_knowledge or (), metadata)


async def _provider_call(
    signal: AbortSignal, fn: Callable[..., Any], fallback: Any, /, *a: Any, **kw: Any
) -> tuple[Any, bool]:
    """(the provider's answer, True), or (`fallback`, False) when the signal interrupted it
    or was aborted before (an aborted run starts no new provider call)."""
    if signal.aborted:
        return fallback, False
    try:
        return await call_abortable(signal, fn, *a, **kw), True
    except Interrupted:
        return fallback, False


def _project_records(
    value: Any, control: ControlRunResult, scenario_id: str
) -> tuple[RunRecord, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError("project_run_records must return a list of RunRecord")
    out = []
    failure = control.failure_class if control.failure_class in FAILURE_CLASSES else None
    for record in value:
        if not isinstance(record, RunRecord):
            raise ValidationError("project_run_records must return a list of RunRecord")
        changes: dict[str, Any] = {}
        if record.scenario_id is None:
            changes["scenario_id"] = scenario_id
        if record.failure_class is None and failure is not None:
            changes["failure_class"] = failure
        out.append(dataclasses.replace(record, **changes) if changes else record)
    return tuple(out)


def _status(control: ControlRunResult) -> AgentTaskStatus:
    if control.stopped_by == "abort":
        return "aborted"
    if BLOCKED_REASON_PREFIX in control.reason:
        return "blocked"
    return "completed" if control.pass_ else "failed"


async def run_agent_task(
    task: AgentTaskSpec,
    adapter: AgentAdapter,
    *,
    knowledge: AgentKnowledgeProvider | None = None,
    on_event: Callable[[AgentRuntimeEvent], Any] | None = None,
    store: TraceStore | None = None,
    signal: AbortSignal | None = None,
    scenario_id: str | None = None,
    project_id: str | None = None,
    variant_id: str | None = None,
    minimum_readiness_score: float | None = None,
    budget: ControlBudget | None = None,
) -> AgentTaskRunResult:
    """Run `task` through `adapter` (ORIGINAL §4.1): readiness, the questions and acquisition
    preflight, a refresh, then the control loop with the `knowledge-ready` eval first; every
    lifecycle event goes to `on_event` (awaited when it returns an awaitable). Errors of the
    provider, of `on_event` and of `project_run_records` propagate."""
    if not isinstance(task, AgentTaskSpec):
        raise ValidationError(f"{_WHERE}: task must be an AgentTaskSpec")
    observe = _method(adapter, "observe", "adapter", required=True)
    validate = _method(adapter, "validate", "adapter", required=True)
    decide = _method(adapter, "decide", "adapter", required=True)
    act = _method(adapter, "act", "adapter", required=True)
    should_stop = _method(adapter, "should_stop", "adapter")
    on_blocked = _method(adapter, "on_knowledge_blocked", "adapter")
    get_cost = _method(adapter, "get_action_cost_usd", "adapter")
    project = _method(adapter, "project_run_records", "adapter")
    build = _method(knowledge, "build_readiness", "knowledge")
    answer = _method(knowledge, "answer_questions", "knowledge")
    acquire = _method(knowledge, "execute_acquisition_plans", "knowledge")
    refresh = _method(knowledge, "refresh_readiness", "knowledge")
    if on_event is not None and not callable(on_event):
        raise ValidationError(f"{_WHERE}: on_event must be callable")
    check_trace_store(store, _WHERE)
    if signal is not None and not isinstance(signal, AbortSignal):
        raise ValidationError(f"{_WHERE}: signal must be an AbortSignal")
    for name, value in (
        ("scenario_id", scenario_id),
        ("project_id", project_id),
        ("variant_id", variant_id),
    ):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{_WHERE}: {name} must be a string or None")
    minimum = (
        DEFAULT_MINIMUM_READINESS_SCORE
        if minimum_readiness_score is None
        else check_minimum_score(minimum_readiness_score, _WHERE)
    )
    if budget is not None and not isinstance(budget, ControlBudget):
        raise ValidationError(f"{_WHERE}: budget must be a ControlBudget")
    control_budget = budget or task.budget or ControlBudget()
    abort = signal if signal is not None else AbortSignal()

    async def emit(event: AgentRuntimeEvent) -> None:
        if on_event is not None:
            value = on_event(event)
            if inspect.isawaitable(value):
                await value

    # 1-2. readiness
    await emit(TaskStartEvent(task=task))
    await emit(ReadinessStartEvent(task=task))
    if build is not None:
        value, done = await _provider_call(abort, build, None, task)
        report = _report(value, "build_readiness") if done else _default_readiness(task)
    else:
        report = _default_readiness(task)
    await emit(ReadinessEndEvent(task=task, knowledge=report))

    # 3-4. questions, acquisition plans, preflight
    questions: tuple[UserQuestion, ...] = user_questions_for_knowledge_gaps(report.blocking_gaps)
    plans: tuple[DataAcquisitionPlan, ...] = acquisition_plans_for_knowledge_gaps(
        (*report.blocking_gaps, *report.non_blocking_gaps)
    )
    user_answers: dict[str, Any] = {}
    evidence_ids: tuple[str, ...] = ()
    if questions and answer is not None:
        await emit(QuestionsStartEvent(task=task, questions=questions))
        value, _ = await _provider_call(abort, answer, None, questions, task)
        user_answers = _answers(value)
        await emit(QuestionsEndEvent(task=task, questions=questions, user_answers=user_answers))
    if plans and acquire is not None:
        await emit(AcquisitionStartEvent(task=task, acquisition_plans=plans))
        value, _ = await _provider_call(abort, acquire, None, plans, task)
        evidence_ids = _evidence_ids(value)
        await emit(
            AcquisitionEndEvent(
                task=task, acquisition_plans=plans, acquired_evidence_ids=evidence_ids
            )
        )

    # 5. refresh
    if refresh is not None and (user_answers or evidence_ids):
        await emit(ReadinessStartEvent(task=task))
        value, done = await _provider_call(
            abort,
            refresh,
            report,
            task=task,
            previous=report,
            user_answers=user_answers,
            acquired_evidence_ids=evidence_ids,
        )
        report = _report(value, "refresh_readiness") if done else report
        await emit(ReadinessEndEvent(task=task, knowledge=report))

    # 6. the control loop
    await emit(ControlStartEvent(task=task, knowledge=report))
    readiness_eval = blocking_knowledge_eval(report, minimum)
    blocked_decision = ControlDecision.stop(
        pass_=False,
        score=report.readiness_score,
        reason=f"{BLOCKED_REASON_PREFIX}: {report.reason}",
    )
    mapped: list[Any] = [None, None]

    def task_context(ctx: ControlContext[Any]) -> AgentTaskContext[Any, Any, Any]:
        if mapped[0] is ctx:
            cached: AgentTaskContext[Any, Any, Any] = mapped[1]
            return cached
        tc: AgentTaskContext[Any, Any, Any] = AgentTaskContext(
            task=task,
            knowledge=report,
            state=ctx.state,
            evals=ctx.evals,
            history=ctx.history,
            budget=ctx.budget,
            step_index=ctx.step_index,
            wall_ms=ctx.wall_ms,
            spent_cost_usd=ctx.spent_cost_usd,
            abort_signal=ctx.abort_signal,
            remaining_cost_usd=ctx.remaining_cost_usd,
        )
        mapped[0], mapped[1] = ctx, tc
        return tc

    def loop_observe(*, history: Any, abort_signal: AbortSignal) -> Any:
        return observe(task=task, knowledge=report, history=history, abort_signal=abort_signal)

    def with_readiness(value: Any) -> tuple[ControlEvalResult, ...]:
        if type(value) is list or type(value) is tuple:
            return (readiness_eval, *value)
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise ValidationError("AgentAdapter.validate must return a list of ControlEvalResult")
        return (readiness_eval, *value)

    async def with_readiness_async(value: Any) -> tuple[ControlEvalResult, ...]:
        return with_readiness(await value)

    def loop_validate(*, state: Any, history: Any, abort_signal: AbortSignal) -> Any:
        value = validate(
            task=task, knowledge=report, state=state, history=history, abort_signal=abort_signal
        )
        if type(value) is list or type(value) is tuple:
            return (readiness_eval, *value)
        if inspect.isawaitable(value):
            return with_readiness_async(value)
        return with_readiness(value)

    def loop_decide(ctx: ControlContext[Any]) -> Any:
        for e in ctx.evals:
            if e.id == "knowledge-ready" and not e.passed:
                if on_blocked is not None:
                    return on_blocked(
                        task=task, knowledge=report, questions=questions, acquisition_plans=plans
                    )
                return blocked_decision
        return decide(task_context(ctx))

    def loop_act(action: Any, ctx: ControlContext[Any]) -> Any:
        return act(action, task_context(ctx))

    def loop_should_stop(ctx: ControlContext[Any]) -> Any:
        return should_stop(task_context(ctx))

    def loop_cost(*, action: Any, result: Any, state: Any, evals: Any, history: Any) -> Any:
        return get_cost(
            action=action, result=result, task=task, state=state, evals=evals, history=history
        )

    def on_step(step: ControlStep) -> Any:
        # the loop awaits what this returns (no coroutine per step when `on_event` is sync)
        return None if on_event is None else on_event(ControlStepEvent(task=task, step=step))

    scenario = scenario_id if scenario_id is not None else task.id
    control = await run_agent_control_loop(
        intent=task.intent,
        observe=loop_observe,
        validate=loop_validate,
        decide=loop_decide,
        act=loop_act,
        should_stop=loop_should_stop if should_stop is not None else None,
        get_action_cost_usd=loop_cost if get_cost is not None else None,
        budget=control_budget,
        signal=abort,
        store=store,
        scenario_id=scenario,
        project_id=project_id,
        variant_id=variant_id,
        on_step=on_step,
    )

    # 7. status
    await emit(ControlEndEvent(task=task, control=control))
    status = _status(control)
    await emit(TaskEndEvent(task=task, status=status, reason=control.reason))

    # 8. run records
    records: tuple[RunRecord, ...] = ()
    if project is not None:
        value = project(control, task)
        if inspect.isawaitable(value):
            value = await value
        records = _project_records(value, control, scenario)
    return AgentTaskRunResult(
        task=task,
        status=status,
        knowledge=report,
        control=control,
        questions=questions,
        acquisition_plans=plans,
        user_answers=user_answers,
        acquired_evidence_ids=evidence_ids,
        run_records=records,
    )


def summarize_agent_task_run(result: AgentTaskRunResult) -> AgentTaskRunSummary:
    """The accountable projection of a run (ORIGINAL §4.5); the readiness status is decided at
    the default minimum score (0.7)."""
    if not isinstance(result, AgentTaskRunResult):
        raise ValidationError("summarize_agent_task_run: result must be an AgentTaskRunResult")
    report, control = result.knowledge, result.control
    return AgentTaskRunSummary(
        task_id=result.task.id,
        domain=result.task.domain,
        status=result.status,
        reason=control.reason,
        readiness_status=decide_knowledge_readiness(report).status,
        readiness_score=report.readiness_score,
        recommended_action=report.recommended_action,
        blocking_gap_ids=report.blocking_gap_ids,
        non_blocking_gap_ids=report.non_blocking_gap_ids,
        question_count=len(result.questions),
        acquisition_plan_count=len(result.acquisition_plans),
        acquired_evidence_count=len(result.acquired_evidence_ids),
        control_step_count=len(control.steps),
        pass_=control.pass_,
        failure_class=control.failure_class,
        wall_ms=control.wall_ms,
        cost_usd=control.spent_cost_usd,
    )
