"""run_agent_task (ORIGINAL §4.1) and summarize_agent_task_run (§4.5): the event sequence,
readiness (the provider's or the task's own), questions and acquisition preflight then refresh,
the knowledge-ready gate and the blocked decision, each status, aborts, budgets, run records,
sync and async adapters and providers, typed refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from agent_runtime import (
    AbortController,
    AgentTaskContext,
    AgentTaskRunResult,
    AgentTaskSpec,
    ControlBudget,
    ControlDecision,
    ControlEvalResult,
    InMemoryTraceStore,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    RunRecord,
    ValidationError,
    parse_event,
    run_agent_task,
    score_knowledge_readiness,
    summarize_agent_task_run,
)

OK_EVAL = ControlEvalResult(id="answer", passed=True)
TODO_EVAL = ControlEvalResult(id="answer", passed=False, severity="critical")


def req(rid: str, **kw: Any) -> KnowledgeRequirement:
    return KnowledgeRequirement(id=rid, description=f"the {rid}", **kw)


BLOCKING = req("tax_year", importance="blocking", required_for=("filing",))
SECRET = req(
    "api_key", sensitivity="secret", acquisition_mode="query_connectors", fallback_policy="block"
)
SOFT = req("style", importance="low", acquisition_mode="inspect_repo")


def spec(*reqs: KnowledgeRequirement, **kw: Any) -> AgentTaskSpec:
    return AgentTaskSpec(id="t1", intent="File the return.", required_knowledge=reqs, **kw)


class Adapter:
    """Counts to `goal` and then passes; records every call and its keyword arguments."""

    def __init__(self, goal: int = 2) -> None:
        self.goal = goal
        self.count = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.contexts: list[AgentTaskContext[Any, Any, Any]] = []

    def observe(
        self, *, task: Any, knowledge: Any, history: Any, abort_signal: Any
    ) -> dict[str, int]:
        self.calls.append(("observe", {"task": task, "knowledge": knowledge}))
        return {"count": self.count}

    def validate(
        self, *, task: Any, knowledge: Any, state: Any, history: Any, abort_signal: Any
    ) -> list[ControlEvalResult]:
        self.calls.append(("validate", {"state": state}))
        return [OK_EVAL if state["count"] >= self.goal else TODO_EVAL]

    def decide(self, ctx: AgentTaskContext[Any, Any, Any]) -> ControlDecision:
        self.calls.append(("decide", {}))
        self.contexts.append(ctx)
        return ControlDecision.continue_({"add": 1})

    def act(self, action: Any, ctx: AgentTaskContext[Any, Any, Any]) -> dict[str, int]:
        self.calls.append(("act", {"action": action}))
        self.count += action["add"]
        return {"count": self.count}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class AsyncAdapter(Adapter):
    """The same adapter with every method a coroutine."""

    async def observe(self, **kw: Any) -> dict[str, int]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Adapter.observe(self, **kw)

    async def validate(self, **kw: Any) -> list[ControlEvalResult]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Adapter.validate(self, **kw)

    async def decide(self, ctx: Any) -> ControlDecision:  # type: ignore[override]
        await asyncio.sleep(0)
        return Adapter.decide(self, ctx)

    async def act(self, action: Any, ctx: Any) -> dict[str, int]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Adapter.act(self, action, ctx)


@pytest.fixture(params=[Adapter, AsyncAdapter], ids=["sync", "async"])
def make_adapter(request: pytest.FixtureRequest) -> Callable[..., Adapter]:
    cls: Callable[..., Adapter] = request.param
    return cls


class Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


# --- the sequence and a completed run ----------------------------------------------------------


async def test_a_ready_task_runs_to_completion(make_adapter: Callable[..., Adapter]) -> None:
    adapter, sink = make_adapter(), Events()
    result = await run_agent_task(spec(), adapter, on_event=sink)
    assert sink.types == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "control_start",
        "control_step",
        "control_step",
        "control_end",
        "task_end",
    ]
    assert result.status == "completed" and result.control.pass_
    assert result.control.stopped_by == "stop-policy"
    assert result.control.reason == "all critical evals passed"
    # the readiness eval comes first, then the adapter's
    assert [e.id for e in result.control.final_evals] == ["knowledge-ready", "answer"]
    assert [e.step.index for e in sink.events if e.type == "control_step"] == [0, 1]
    assert sink.events[-2].control == result.control
    assert (sink.events[-1].status, sink.events[-1].reason) == ("completed", result.control.reason)
    readiness_end = sink.events[2]
    assert readiness_end.knowledge == result.knowledge and readiness_end.decision is None
    assert readiness_end.timestamp is None
    assert result.control.run_id is None and result.run_records == ()
    assert (result.questions, result.acquisition_plans, result.user_answers) == ((), (), {})
    # every event is the wire vocabulary and parses back
    for event in sink.events:
        assert parse_event(event.to_dict()) == event


async def test_adapter_methods_get_keyword_arguments_and_a_task_context(
    make_adapter: Callable[..., Adapter],
) -> None:
    adapter = make_adapter(goal=1)
    task = spec(domain="tax")
    controller = AbortController()
    result = await run_agent_task(task, adapter, signal=controller.signal)
    observe = next(kw for name, kw in adapter.calls if name == "observe")
    assert observe == {"task": task, "knowledge": result.knowledge}
    ctx = adapter.contexts[0]
    assert ctx.task is task and ctx.knowledge == result.knowledge
    assert ctx.state == {"count": 0} and ctx.step_index == 0 and ctx.history == ()
    assert [e.id for e in ctx.evals] == ["knowledge-ready", "answer"]
    assert ctx.budget == ControlBudget() and ctx.spent_cost_usd == 0
    assert ctx.remaining_cost_usd is None and ctx.wall_ms >= 0
    assert not ctx.abort_signal.aborted


async def test_on_event_may_be_async_and_is_awaited_in_order() -> None:
    seen: list[str] = []

    async def sink(event: Any) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)

    await run_agent_task(spec(), Adapter(goal=0), on_event=sink)
    assert seen == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "control_start",
        "control_end",
        "task_end",
    ]


async def test_an_on_event_error_propagates() -> None:
    def sink(event: Any) -> None:
        if event.type == "control_step":
            raise OSError("sink down")

    with pytest.raises(OSError, match="sink down"):
        await run_agent_task(spec(), Adapter(), on_event=sink)


# --- readiness ---------------------------------------------------------------------------------


async def test_default_readiness_scores_the_tasks_own_requirements() -> None:
    task = spec(SOFT, domain="tax", metadata={"region": "EU"})
    result = await run_agent_task(task, Adapter(goal=0))
    expected = score_knowledge_readiness("t1", (SOFT,), {"domain": "tax", "region": "EU"})
    assert result.knowledge == expected
    assert result.knowledge.metadata == {"domain": "tax", "region": "EU"}
    no_domain = await run_agent_task(spec(metadata={"k": 1}), Adapter(goal=0))
    assert no_domain.knowledge.metadata == {"k": 1}  # an absent domain is not null


class Provider:
    """A knowledge provider: a fixed first report, answers, evidence, a refreshed report."""

    def __init__(
        self,
        first: KnowledgeReadinessReport,
        refreshed: KnowledgeReadinessReport | None = None,
        *,
        answers: dict[str, Any] | None = None,
        evidence: list[str] | None = None,
    ) -> None:
        self.first, self.refreshed = first, refreshed
        self.answers = answers if answers is not None else {}
        self.evidence = evidence if evidence is not None else []
        self.calls: list[tuple[str, Any]] = []

    def build_readiness(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
        self.calls.append(("build_readiness", task))
        return self.first

    def answer_questions(self, questions: Any, task: AgentTaskSpec) -> dict[str, Any]:
        self.calls.append(("answer_questions", questions))
        return self.answers

    def execute_acquisition_plans(self, plans: Any, task: AgentTaskSpec) -> list[str]:
        self.calls.append(("execute_acquisition_plans", plans))
        return self.evidence

    def refresh_readiness(self, **kw: Any) -> KnowledgeReadinessReport:
        self.calls.append(("refresh_readiness", kw))
        assert self.refreshed is not None
        return self.refreshed


class AsyncProvider(Provider):
    async def build_readiness(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:  # type: ignore[override]
        await asyncio.sleep(0)
        return Provider.build_readiness(self, task)

    async def answer_questions(self, questions: Any, task: AgentTaskSpec) -> dict[str, Any]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Provider.answer_questions(self, questions, task)

    async def execute_acquisition_plans(self, plans: Any, task: AgentTaskSpec) -> list[str]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Provider.execute_acquisition_plans(self, plans, task)

    async def refresh_readiness(self, **kw: Any) -> KnowledgeReadinessReport:  # type: ignore[override]
        await asyncio.sleep(0)
        return Provider.refresh_readiness(self, **kw)


BLOCKED_REPORT = score_knowledge_readiness("t1", (BLOCKING, SECRET, SOFT))
READY_REPORT = score_knowledge_readiness("t1", ())


@pytest.mark.parametrize("provider_cls", [Provider, AsyncProvider], ids=["sync", "async"])
async def test_preflight_answers_and_evidence_then_refresh(provider_cls: type[Provider]) -> None:
    provider = provider_cls(
        BLOCKED_REPORT, READY_REPORT, answers={"question_tax_year": "2025"}, evidence=["ev-1"]
    )
    sink = Events()
    task = spec(BLOCKING, SECRET, SOFT)
    result = await run_agent_task(task, Adapter(goal=0), knowledge=provider, on_event=sink)
    assert sink.types == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "questions_start",
        "questions_end",
        "acquisition_start",
        "acquisition_end",
        "readiness_start",
        "readiness_end",
        "control_start",
        "control_end",
        "task_end",
    ]
    # questions come from the blocking gaps only; plans from blocking and non-blocking ones
    assert [q.id for q in result.questions] == ["question_tax_year"]
    assert [p.id for p in result.acquisition_plans] == [
        "acquire_ask_user",
        "acquire_query_connectors",
        "acquire_inspect_repo",
    ]
    assert result.user_answers == {"question_tax_year": "2025"}
    assert result.acquired_evidence_ids == ("ev-1",)
    refresh = dict(provider.calls)["refresh_readiness"]
    assert refresh == {
        "task": task,
        "previous": BLOCKED_REPORT,
        "user_answers": {"question_tax_year": "2025"},
        "acquired_evidence_ids": ("ev-1",),
    }
    assert sink.events[2].knowledge == BLOCKED_REPORT and sink.events[8].knowledge == READY_REPORT
    assert sink.events[4].user_answers == {"question_tax_year": "2025"}
    assert sink.events[6].acquired_evidence_ids == ("ev-1",)
    assert result.knowledge == READY_REPORT and result.status == "completed"


async def test_no_refresh_without_answers_or_evidence() -> None:
    provider = Provider(BLOCKED_REPORT, READY_REPORT)
    sink = Events()
    result = await run_agent_task(spec(), Adapter(), knowledge=provider, on_event=sink)
    assert "refresh_readiness" not in dict(provider.calls)
    assert sink.types.count("readiness_start") == 1
    assert result.status == "blocked"


async def test_a_provider_without_methods_is_the_default_path() -> None:
    result = await run_agent_task(spec(SOFT), Adapter(goal=0), knowledge=object())  # type: ignore[arg-type]
    assert result.knowledge == score_knowledge_readiness("t1", (SOFT,), {})
    assert result.questions == () and [p.id for p in result.acquisition_plans] == [
        "acquire_inspect_repo"
    ]


@pytest.mark.parametrize(
    "method",
    ["build_readiness", "answer_questions", "execute_acquisition_plans", "refresh_readiness"],
)
async def test_provider_errors_propagate(method: str) -> None:
    provider = Provider(BLOCKED_REPORT, READY_REPORT, answers={"q": 1}, evidence=["e"])

    def fail(*_a: Any, **_k: Any) -> Any:
        raise LookupError(f"{method} broke")

    setattr(provider, method, fail)
    sink = Events()
    with pytest.raises(LookupError, match=f"{method} broke"):
        await run_agent_task(spec(), Adapter(), knowledge=provider, on_event=sink)
    assert "control_start" not in sink.types


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("build_readiness", {"readinessScore": 1}),
        ("answer_questions", ["not", "a", "mapping"]),
        ("execute_acquisition_plans", [1, 2]),
        ("refresh_readiness", None),
    ],
)
async def test_unusable_provider_answers_are_refused(method: str, value: Any) -> None:
    provider = Provider(BLOCKED_REPORT, READY_REPORT, answers={"q": 1}, evidence=["e"])
    setattr(provider, method, lambda *_a, **_k: value)
    with pytest.raises(ValidationError):
        await run_agent_task(spec(), Adapter(), knowledge=provider)


# --- the knowledge gate ------------------------------------------------------------------------


async def test_blocked_knowledge_stops_with_the_default_decision() -> None:
    adapter, sink = Adapter(), Events()
    result = await run_agent_task(spec(BLOCKING), adapter, on_event=sink)
    assert result.status == "blocked"
    assert result.control.reason == (
        "knowledge readiness blocked: 1 blocking knowledge requirement(s) are missing."
    )
    assert result.control.pass_ is False and result.control.stopped_by == "policy"
    assert result.control.score == result.knowledge.readiness_score
    assert "decide" not in adapter.names() and "act" not in adapter.names()
    (step,) = result.control.steps
    assert step.decision.type == "stop" and step.action_ok is None
    assert sink.events[-1].status == "blocked"
    ready = next(e for e in result.control.final_evals if e.id == "knowledge-ready")
    assert not ready.passed and ready.severity == "critical"


async def test_on_knowledge_blocked_decides_for_a_blocked_task() -> None:
    received: dict[str, Any] = {}

    class Blocked(Adapter):
        def on_knowledge_blocked(self, **kw: Any) -> ControlDecision:
            received.update(kw)
            return ControlDecision.stop(pass_=False, reason="waiting for the tax year")

    task = spec(BLOCKING, SOFT)
    result = await run_agent_task(task, Blocked())
    assert set(received) == {"task", "knowledge", "questions", "acquisition_plans"}
    assert received["task"] is task and received["knowledge"] == result.knowledge
    assert received["questions"] == result.questions
    assert received["acquisition_plans"] == result.acquisition_plans
    # its own reason does not mark the run blocked: a stop without pass is failed
    assert result.status == "failed" and result.control.reason == "waiting for the tax year"


async def test_on_knowledge_blocked_may_act_anyway() -> None:
    class Proceed(Adapter):
        async def on_knowledge_blocked(self, **kw: Any) -> ControlDecision:
            return ControlDecision.continue_({"add": 5})

    adapter = Proceed()
    result = await run_agent_task(spec(BLOCKING), adapter, budget=ControlBudget(max_steps=1))
    assert adapter.count == 5 and "decide" not in adapter.names()
    assert result.status == "failed" and result.control.stopped_by == "budget"


class NeverStops(Adapter):
    def should_stop(self, ctx: Any) -> dict[str, Any]:
        return {"stop": False, "pass": False, "reason": "go on"}


@pytest.mark.parametrize(("minimum", "blocked"), [(None, True), (0.7, True), (0.4, False)])
async def test_the_minimum_readiness_score_gates_decide(
    minimum: float | None, blocked: bool
) -> None:
    # one medium requirement half known: score 0.5, no blocking gap
    half = req("context", confidence_needed=0.8, current_confidence=0.4)
    adapter = NeverStops()
    result = await run_agent_task(
        spec(half), adapter, minimum_readiness_score=minimum, budget=ControlBudget(max_steps=1)
    )
    assert result.knowledge.readiness_score == 0.5
    assert (result.status == "blocked") is blocked
    assert ("decide" in adapter.names()) is not blocked


# --- statuses, abort, budget -------------------------------------------------------------------


async def test_a_stop_without_pass_is_failed() -> None:
    class GiveUp(Adapter):
        def decide(self, ctx: Any) -> ControlDecision:
            return ControlDecision.stop(pass_=False, reason="cannot do it")

    result = await run_agent_task(spec(), GiveUp())
    assert (result.status, result.control.reason) == ("failed", "cannot do it")


async def test_an_aborted_signal_ends_aborted_before_the_adapter_runs() -> None:
    controller = AbortController()
    controller.abort("user left")
    adapter, sink = Adapter(), Events()
    provider = Provider(BLOCKED_REPORT, READY_REPORT, answers={"q": 1}, evidence=["e"])
    result = await run_agent_task(
        spec(), adapter, knowledge=provider, signal=controller.signal, on_event=sink
    )
    assert result.status == "aborted" and adapter.calls == [] and provider.calls == []
    assert result.control.reason == "aborted: user left"
    assert result.control.failure_class == "timeout"
    assert (sink.events[-1].type, sink.events[-1].status) == ("task_end", "aborted")


async def test_abort_interrupts_a_slow_act() -> None:
    controller = AbortController()
    started, cancelled = asyncio.Event(), asyncio.Event()

    class Slow(Adapter):
        async def act(self, action: Any, ctx: Any) -> Any:  # type: ignore[override]
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    async def stop_it() -> None:
        await started.wait()
        controller.abort()

    helper = asyncio.create_task(stop_it())
    result = await run_agent_task(spec(), Slow(), signal=controller.signal)
    await helper
    assert cancelled.is_set() and result.status == "aborted"
    assert result.control.steps[0].action_ok is False
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_abort_interrupts_a_provider_waiting_for_answers() -> None:
    controller = AbortController()
    cancelled = asyncio.Event()

    class Waiting(Provider):
        async def answer_questions(self, questions: Any, task: Any) -> dict[str, Any]:  # type: ignore[override]
            controller.abort("no answer")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return {}

    sink = Events()
    adapter = Adapter()
    result = await run_agent_task(
        spec(BLOCKING),
        adapter,
        knowledge=Waiting(BLOCKED_REPORT, READY_REPORT),
        signal=controller.signal,
        on_event=sink,
    )
    assert cancelled.is_set() and result.status == "aborted" and adapter.calls == []
    questions_end = next(e for e in sink.events if e.type == "questions_end")
    assert questions_end.user_answers == {} and result.user_answers == {}


@pytest.mark.parametrize("method", ["build_readiness", "refresh_readiness"])
async def test_an_interrupted_readiness_call_falls_back(method: str) -> None:
    controller = AbortController()

    async def hang(*_a: Any, **_k: Any) -> Any:
        controller.abort()
        await asyncio.sleep(3600)

    provider = Provider(BLOCKED_REPORT, READY_REPORT, answers={"question_tax_year": "x"})
    setattr(provider, method, hang)
    task = spec(BLOCKING)
    result = await run_agent_task(task, Adapter(), knowledge=provider, signal=controller.signal)
    assert result.status == "aborted"
    # build_readiness: the task's own scoring; refresh_readiness: the previous report
    expected = (
        score_knowledge_readiness("t1", (BLOCKING,), {})
        if method == "build_readiness"
        else BLOCKED_REPORT
    )
    assert result.knowledge == expected


async def test_a_wall_time_budget_on_the_task_aborts_a_slow_act() -> None:
    class Slow(Adapter):
        async def act(self, action: Any, ctx: Any) -> Any:  # type: ignore[override]
            await asyncio.Event().wait()

    result = await run_agent_task(spec(budget=ControlBudget(max_wall_ms=1)), Slow())
    assert result.status == "aborted"
    assert result.control.reason == "wall time exhausted: maxWallMs=1"


@pytest.mark.parametrize(
    ("task_budget", "budget", "reason"),
    [
        (None, None, "budget exhausted: maxSteps=8"),
        (ControlBudget(max_steps=2), None, "budget exhausted: maxSteps=2"),
        (ControlBudget(max_steps=2), ControlBudget(max_steps=1), "budget exhausted: maxSteps=1"),
    ],
)
async def test_the_budget_argument_wins_over_the_tasks_budget(
    task_budget: ControlBudget | None, budget: ControlBudget | None, reason: str
) -> None:
    result = await run_agent_task(spec(budget=task_budget), Adapter(goal=99), budget=budget)
    assert (result.status, result.control.reason) == ("failed", reason)
    assert result.control.failure_class == "budget_exceeded"


async def test_action_cost_is_asked_with_the_task_and_spent_against_the_budget() -> None:
    received: list[dict[str, Any]] = []

    class Costly(Adapter):
        def get_action_cost_usd(self, **kw: Any) -> float:
            received.append(kw)
            return 0.75

    task = spec()
    result = await run_agent_task(task, Costly(goal=99), budget=ControlBudget(max_cost_usd=1.0))
    assert set(received[0]) == {"action", "result", "task", "state", "evals", "history"}
    assert received[0]["task"] is task and received[0]["result"] == {"count": 1}
    assert result.control.stopped_by == "budget" and result.control.spent_cost_usd == 1.5
    assert result.control.reason == "budget exhausted: maxCostUsd=1"
    assert summarize_agent_task_run(result).cost_usd == 1.5


async def test_should_stop_gets_the_task_context() -> None:
    class Stopper(Adapter):
        def should_stop(self, ctx: AgentTaskContext[Any, Any, Any]) -> Any:
            if ctx.state["count"] >= 1:
                return {"stop": True, "pass": True, "reason": f"done on step {ctx.step_index}"}
            return None

    result = await run_agent_task(spec(), Stopper())
    assert (result.status, result.control.reason) == ("completed", "done on step 1")


# --- trace store and run records ---------------------------------------------------------------


async def test_a_trace_store_labels_the_run_with_the_scenario() -> None:
    store = InMemoryTraceStore()
    result = await run_agent_task(spec(), Adapter(), store=store, project_id="p", variant_id="v")
    assert result.control.run_id is not None
    run = store.get_run(result.control.run_id)
    assert run is not None and run.result == result.control
    assert (run.intent, run.scenario_id, run.project_id, run.variant_id) == (
        "File the return.",
        "t1",
        "p",
        "v",
    )
    other = await run_agent_task(spec(), Adapter(), store=store, scenario_id="s9")
    assert store.get_run(other.control.run_id or "").scenario_id == "s9"  # type: ignore[union-attr]


async def test_run_records_get_the_scenario_and_the_failure_class() -> None:
    seen: list[Any] = []

    class Projecting(Adapter):
        async def project_run_records(self, control: Any, task: Any) -> list[RunRecord]:
            seen.append((control, task))
            return [
                RunRecord(run_id="a"),
                RunRecord(run_id="b", scenario_id="own", failure_class="eval_failed"),
            ]

    task = spec()
    result = await run_agent_task(task, Projecting(goal=99), budget=ControlBudget(max_steps=1))
    assert seen == [(result.control, task)]
    a, b = result.run_records
    assert (a.scenario_id, a.failure_class) == ("t1", "budget_exceeded")
    assert (b.scenario_id, b.failure_class) == ("own", "eval_failed")
    passed = await run_agent_task(task, Projecting(goal=0), scenario_id="s2")
    assert [(r.scenario_id, r.failure_class) for r in passed.run_records] == [
        ("s2", None),
        ("own", "eval_failed"),
    ]


async def test_unusable_run_records_are_refused() -> None:
    class Bad(Adapter):
        def project_run_records(self, control: Any, task: Any) -> Any:
            return [{"runId": "x"}]

    with pytest.raises(ValidationError):
        await run_agent_task(spec(), Bad(goal=0))


# --- summary -----------------------------------------------------------------------------------


async def test_summary_projects_the_run() -> None:
    provider = Provider(BLOCKED_REPORT, READY_REPORT, answers={"question_tax_year": "2025"})
    result = await run_agent_task(spec(domain="tax"), Adapter(), knowledge=provider)
    s = summarize_agent_task_run(result)
    assert (s.task_id, s.domain, s.status, s.reason) == (
        "t1",
        "tax",
        "completed",
        "all critical evals passed",
    )
    assert (s.readiness_status, s.readiness_score, s.recommended_action) == (
        "ready",
        1.0,
        "run_agent",
    )
    assert (s.question_count, s.acquisition_plan_count, s.acquired_evidence_count) == (1, 3, 0)
    assert (s.control_step_count, s.pass_, s.failure_class) == (2, True, None)
    assert s.wall_ms == result.control.wall_ms and s.cost_usd == 0
    data = s.to_dict()
    assert (
        data["pass"] is True and data["readinessStatus"] == "ready" and "failureClass" not in data
    )


async def test_summary_of_a_blocked_and_a_caveat_run() -> None:
    blocked = summarize_agent_task_run(await run_agent_task(spec(BLOCKING, SOFT), Adapter()))
    assert (blocked.status, blocked.readiness_status, blocked.pass_) == (
        "blocked",
        "blocked",
        False,
    )
    assert blocked.blocking_gap_ids == ("tax_year",) and blocked.non_blocking_gap_ids == ("style",)
    assert blocked.recommended_action == "ask_user"
    half = req("context", confidence_needed=0.8, current_confidence=0.4)
    caveat = summarize_agent_task_run(await run_agent_task(spec(half), Adapter()))
    assert caveat.readiness_status == "caveat" and caveat.readiness_score == 0.5


def test_summary_refuses_what_is_not_a_result() -> None:
    with pytest.raises(ValidationError):
        summarize_agent_task_run({"task": "x"})  # type: ignore[arg-type]
    assert AgentTaskRunResult  # the type the summary takes


# --- validation --------------------------------------------------------------------------------


class NoAct:
    def observe(self, **_: Any) -> None: ...

    def validate(self, **_: Any) -> list[Any]:
        return []

    def decide(self, ctx: Any) -> Any: ...


class NotCallableStop(Adapter):
    should_stop = "yes"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (({"id": "t", "intent": "x"}, Adapter()), {}),
        ((spec(), NoAct()), {}),
        ((spec(), NotCallableStop()), {}),
        ((spec(), Adapter()), {"knowledge": type("K", (), {"build_readiness": 3})()}),
        ((spec(), Adapter()), {"on_event": "print"}),
        ((spec(), Adapter()), {"store": object()}),
        ((spec(), Adapter()), {"signal": asyncio.Event()}),
        ((spec(), Adapter()), {"scenario_id": 1}),
        ((spec(), Adapter()), {"minimum_readiness_score": 1.5}),
        ((spec(), Adapter()), {"minimum_readiness_score": float("nan")}),
        ((spec(), Adapter()), {"budget": {"max_steps": 1}}),
    ],
)
async def test_bad_arguments_are_refused_before_any_event(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sink = Events()
    with pytest.raises(ValidationError):
        await run_agent_task(*args, on_event=kwargs.pop("on_event", sink), **kwargs)
    assert sink.events == []
