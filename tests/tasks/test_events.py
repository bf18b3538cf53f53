"""The event wire (ORIGINAL §3.1, §3.2; DESIGN §0.2): every event's `to_dict()` has the
original's `type` string and camelCase keys, optional keys are absent when None, `parse_event`
takes that form back (Hypothesis: any event round-trips through the dict and the JSON text) and
refuses anything malformed with `EventParseError` and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime import (
    AgentTaskSpec,
    ControlBudget,
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    ControlStep,
    DataAcquisitionPlan,
    EventParseError,
    KnowledgeReadinessDecision,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    RuntimeSession,
    UserQuestion,
    ValidationError,
    parse_event,
    parse_runtime_stream_event,
    score_knowledge_readiness,
)
from agent_runtime._wire import camel
from agent_runtime.eval import (
    ACQUISITION_MODES,
    FAILURE_CLASSES,
    FALLBACK_POLICIES,
    IMPORTANCES,
    RECOMMENDED_ACTIONS,
    SENSITIVITIES,
    ControlRuntimeError,
    KnowledgeBundle,
)
from agent_runtime.types import (
    AGENT_RUNTIME_EVENT_TYPES,
    RUNTIME_STREAM_EVENT_TYPES,
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    ArtifactEvent,
    BackendEndEvent,
    BackendErrorDetail,
    BackendErrorEvent,
    BackendStartEvent,
    ControlEndEvent,
    ControlStartEvent,
    ControlStepEvent,
    FinalEvent,
    LlmCallEvent,
    ProposalCreatedEvent,
    QuestionsEndEvent,
    QuestionsStartEvent,
    ReadinessEndEvent,
    ReadinessStartEvent,
    ReasoningDeltaEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    TaskEndEvent,
    TaskStartEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

ALL_EVENT_CLASSES: tuple[type[Any], ...] = (
    TaskStartEvent,
    ReadinessStartEvent,
    ReadinessEndEvent,
    QuestionsStartEvent,
    QuestionsEndEvent,
    AcquisitionStartEvent,
    AcquisitionEndEvent,
    ControlStartEvent,
    ControlStepEvent,
    ControlEndEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    BackendStartEvent,
    TextDeltaEvent,
    ReasoningDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    LlmCallEvent,
    ArtifactEvent,
    ProposalCreatedEvent,
    BackendErrorEvent,
    BackendEndEvent,
    TaskEndEvent,
    FinalEvent,
)
CONTROL_CLASSES = (ControlStartEvent, ControlStepEvent, ControlEndEvent)
STREAM_CLASSES = tuple(c for c in ALL_EVENT_CLASSES if c not in CONTROL_CLASSES)
TS = "2026-12-01T08:14:37.123Z"

# --- fixtures of every nested record ------------------------------------------------------------

REQ = KnowledgeRequirement(
    id="city",
    description="the city",
    required_for=("shipping",),
    evidence_ids=("e1",),
    valid_until="2027-01-01T00:00:00Z",
)
TASK = AgentTaskSpec(
    id="t1",
    intent="Answer a question.",
    domain="support",
    inputs={"q": "hi"},
    required_knowledge=(REQ,),
    budget=ControlBudget(max_steps=3, max_wall_ms=1000, max_cost_usd=0.5),
    metadata={"m": 1},
)
BARE_TASK = AgentTaskSpec(id="t1", intent="Answer a question.")
SESSION = RuntimeSession(
    id="s1",
    backend="tcloud",
    status="active",
    created_at=TS,
    updated_at=TS,
    resume_token="tok",
    metadata={"resumable": True},
)
REPORT = score_knowledge_readiness("t1", [REQ], {"domain": "support"})
DECISION = KnowledgeReadinessDecision(
    passed=False,
    status="caveat",
    reason="r",
    readiness_score=0.5,
    recommended_action="ask_user",
    severity="warning",
    blocking_gap_ids=(),
    non_blocking_gap_ids=("city",),
)
QUESTION = UserQuestion(
    id="question_city",
    requirement_id="city",
    question="Please provide: the city",
    reason="Required for shipping.",
    importance="medium",
    impact_if_unknown="i",
    options=("Paris",),
)
PLAN = DataAcquisitionPlan(
    id="acquire_ask_user",
    requirement_ids=("city",),
    mode="ask_user",
    priority="medium",
    description="d",
    expected_evidence_count=1,
    questions=(QUESTION,),
)
EVAL = ControlEvalResult(
    id="knowledge-ready",
    passed=True,
    severity="info",
    score=1.0,
    objective=True,
    detail="d",
    evidence={"k": 1},
)
STEP = ControlStep(
    index=0,
    decision=ControlDecision(type="continue", action={"x": 1}, reason="go", pass_=True, score=1.0),
    evals_before=(EVAL,),
    evals_after=(EVAL,),
    started_at=TS,
    ended_at=TS,
    duration_ms=1.5,
    action_ok=True,
    result={"ok": True},
    action_error="e",
    cost_usd=0.01,
)
CONTROL = ControlRunResult(
    intent="i",
    pass_=True,
    completed=True,
    reason="all critical evals passed",
    stopped_by="stop-policy",
    steps=(STEP,),
    final_evals=(EVAL,),
    wall_ms=2.0,
    spent_cost_usd=0.01,
    score=1.0,
    final_state={"s": 1},
    run_id="run-1",
    failure_class="timeout",
    runtime_errors=(ControlRuntimeError(phase="act", message="m", step_index=0),),
)
DETAIL = BackendErrorDetail(kind="transport", message="m", status=502, body="b")

#: every class with every field set, and the wire keys the original gives it
FULL: list[tuple[Any, str, set[str]]] = [
    (TaskStartEvent(task=TASK, timestamp=TS), "task_start", {"task", "timestamp"}),
    (ReadinessStartEvent(task=TASK, timestamp=TS), "readiness_start", {"task", "timestamp"}),
    (
        ReadinessEndEvent(task=TASK, knowledge=REPORT, decision=DECISION, timestamp=TS),
        "readiness_end",
        {"task", "knowledge", "decision", "timestamp"},
    ),
    (
        QuestionsStartEvent(task=TASK, questions=(QUESTION,), timestamp=TS),
        "questions_start",
        {"task", "questions", "timestamp"},
    ),
    (
        QuestionsEndEvent(
            task=TASK, questions=(QUESTION,), user_answers={"question_city": "Paris"}, timestamp=TS
        ),
        "questions_end",
        {"task", "questions", "userAnswers", "timestamp"},
    ),
    (
        AcquisitionStartEvent(task=TASK, acquisition_plans=(PLAN,), timestamp=TS),
        "acquisition_start",
        {"task", "acquisitionPlans", "timestamp"},
    ),
    (
        AcquisitionEndEvent(
            task=TASK, acquisition_plans=(PLAN,), acquired_evidence_ids=("e9",), timestamp=TS
        ),
        "acquisition_end",
        {"task", "acquisitionPlans", "acquiredEvidenceIds", "timestamp"},
    ),
    (ControlStartEvent(task=TASK, knowledge=REPORT), "control_start", {"task", "knowledge"}),
    (ControlStepEvent(task=TASK, step=STEP), "control_step", {"task", "step"}),
    (ControlEndEvent(task=TASK, control=CONTROL), "control_end", {"task", "control"}),
    (
        SessionCreatedEvent(task=TASK, session=SESSION, timestamp=TS),
        "session_created",
        {"task", "session", "timestamp"},
    ),
    (
        SessionResumedEvent(task=TASK, session=SESSION, timestamp=TS),
        "session_resumed",
        {"task", "session", "timestamp"},
    ),
    (
        BackendStartEvent(task=TASK, session=SESSION, backend="tcloud", timestamp=TS),
        "backend_start",
        {"task", "session", "backend", "timestamp"},
    ),
    (
        TextDeltaEvent(text="he", task=TASK, session=SESSION, timestamp=TS),
        "text_delta",
        {"task", "session", "text", "timestamp"},
    ),
    (
        ReasoningDeltaEvent(text="hm", task=TASK, session=SESSION, timestamp=TS),
        "reasoning_delta",
        {"task", "session", "text", "timestamp"},
    ),
    (
        ToolCallEvent(
            tool_name="search",
            tool_call_id="c1",
            args={"q": "x"},
            task=TASK,
            session=SESSION,
            timestamp=TS,
        ),
        "tool_call",
        {"task", "session", "toolName", "toolCallId", "args", "timestamp"},
    ),
    (
        ToolResultEvent(
            tool_name="search",
            tool_call_id="c1",
            result=["r"],
            task=TASK,
            session=SESSION,
            timestamp=TS,
        ),
        "tool_result",
        {"task", "session", "toolName", "toolCallId", "result", "timestamp"},
    ),
    (
        LlmCallEvent(
            model="m",
            tokens_in=10,
            tokens_out=5,
            cost_usd=0.001,
            latency_ms=12.5,
            finish_reason="stop",
            task=TASK,
            session=SESSION,
            timestamp=TS,
        ),
        "llm_call",
        {
            "task",
            "session",
            "model",
            "tokensIn",
            "tokensOut",
            "costUsd",
            "latencyMs",
            "finishReason",
            "timestamp",
        },
    ),
    (
        ArtifactEvent(
            artifact_id="a1",
            name="report.pdf",
            mime_type="application/pdf",
            uri="s3://b/k",
            content="...",
            metadata={"pages": 2},
            task=TASK,
            session=SESSION,
            timestamp=TS,
        ),
        "artifact",
        {
            "task",
            "session",
            "artifactId",
            "name",
            "mimeType",
            "uri",
            "content",
            "metadata",
            "timestamp",
        },
    ),
    (
        ProposalCreatedEvent(
            proposal_id="p1",
            title="File it",
            status="pending",
            content={"x": 1},
            task=TASK,
            session=SESSION,
            timestamp=TS,
        ),
        "proposal_created",
        {"task", "session", "proposalId", "title", "status", "content", "timestamp"},
    ),
    (
        BackendErrorEvent(
            task=TASK,
            backend="tcloud",
            message="boom",
            recoverable=True,
            session=SESSION,
            error=DETAIL,
            timestamp=TS,
        ),
        "backend_error",
        {"task", "session", "backend", "message", "recoverable", "error", "timestamp"},
    ),
    (
        BackendEndEvent(task=TASK, session=SESSION, backend="tcloud", timestamp=TS),
        "backend_end",
        {"task", "session", "backend", "timestamp"},
    ),
    (
        TaskEndEvent(task=TASK, status="completed", reason="backend completed", timestamp=TS),
        "task_end",
        {"task", "status", "reason", "timestamp"},
    ),
    (
        FinalEvent(
            task=TASK,
            status="failed",
            reason="boom",
            session=SESSION,
            text="partial",
            metadata={"k": "v"},
            error=DETAIL,
            timestamp=TS,
        ),
        "final",
        {"task", "session", "status", "reason", "text", "metadata", "error", "timestamp"},
    ),
]

#: the same classes with only the required fields (optional keys must then be absent)
MINIMAL: list[tuple[Any, set[str]]] = [
    (TaskStartEvent(task=BARE_TASK), {"task"}),
    (ReadinessStartEvent(task=BARE_TASK), {"task"}),
    (ReadinessEndEvent(task=BARE_TASK, knowledge=REPORT), {"task", "knowledge"}),
    (QuestionsStartEvent(task=BARE_TASK, questions=()), {"task", "questions"}),
    (
        QuestionsEndEvent(task=BARE_TASK, questions=(), user_answers={}),
        {"task", "questions", "userAnswers"},
    ),
    (AcquisitionStartEvent(task=BARE_TASK, acquisition_plans=()), {"task", "acquisitionPlans"}),
    (
        AcquisitionEndEvent(task=BARE_TASK, acquisition_plans=(), acquired_evidence_ids=()),
        {"task", "acquisitionPlans", "acquiredEvidenceIds"},
    ),
    (SessionCreatedEvent(task=BARE_TASK, session=SESSION), {"task", "session"}),
    (SessionResumedEvent(task=BARE_TASK, session=SESSION), {"task", "session"}),
    (
        BackendStartEvent(task=BARE_TASK, session=SESSION, backend="b"),
        {"task", "session", "backend"},
    ),
    (TextDeltaEvent(text="x"), {"text"}),
    (ReasoningDeltaEvent(text="x"), {"text"}),
    (ToolCallEvent(tool_name="t"), {"toolName"}),
    (ToolResultEvent(tool_name="t"), {"toolName"}),
    (LlmCallEvent(model="m"), {"model"}),
    (ArtifactEvent(artifact_id="a"), {"artifactId"}),
    (ProposalCreatedEvent(proposal_id="p", title="t"), {"proposalId", "title"}),
    (
        BackendErrorEvent(task=BARE_TASK, backend="b", message="m", recoverable=False),
        {"task", "backend", "message", "recoverable"},
    ),
    (BackendEndEvent(task=BARE_TASK, session=SESSION, backend="b"), {"task", "session", "backend"}),
    (TaskEndEvent(task=BARE_TASK, status="blocked", reason="r"), {"task", "status", "reason"}),
    (FinalEvent(task=BARE_TASK, status="aborted", reason="r"), {"task", "status", "reason"}),
]


def full(kind: str) -> Any:
    """The fully populated event of that type."""
    return next(e for e, k, _ in FULL if k == kind)


@pytest.mark.parametrize(("event", "kind", "keys"), FULL, ids=[k for _, k, _ in FULL])
def test_every_event_has_the_original_type_and_camel_case_keys(
    event: Any, kind: str, keys: set[str]
) -> None:
    wire = event.to_dict()
    assert event.type == kind
    assert next(iter(wire)) == "type" and wire["type"] == kind
    assert set(wire) == {"type", *keys}
    assert parse_event(wire) == event
    assert parse_event(event.to_json()) == event


def test_every_event_class_is_covered() -> None:
    assert {type(e) for e, _, _ in FULL} == set(ALL_EVENT_CLASSES)
    assert {k for _, k, _ in FULL} == RUNTIME_STREAM_EVENT_TYPES | AGENT_RUNTIME_EVENT_TYPES
    assert {type(e) for e, _ in MINIMAL} == set(ALL_EVENT_CLASSES) - set(CONTROL_CLASSES)


@pytest.mark.parametrize(("event", "keys"), MINIMAL, ids=[e.type for e, _ in MINIMAL])
def test_optional_keys_are_absent_when_none(event: Any, keys: set[str]) -> None:
    wire = event.to_dict()
    assert set(wire) == {"type", *keys}
    assert None not in wire.values()
    assert parse_event(wire) == event


def test_nested_records_use_camel_case_keys() -> None:
    wire = full("task_start").to_dict()
    assert set(wire["task"]) == {
        "id",
        "intent",
        "domain",
        "inputs",
        "requiredKnowledge",
        "budget",
        "metadata",
    }
    assert wire["task"]["budget"] == {"maxSteps": 3, "maxWallMs": 1000, "maxCostUsd": 0.5}
    assert set(wire["task"]["requiredKnowledge"][0]) == {
        "id",
        "description",
        "requiredFor",
        "category",
        "acquisitionMode",
        "importance",
        "freshness",
        "sensitivity",
        "confidenceNeeded",
        "currentConfidence",
        "evidenceIds",
        "fallbackPolicy",
        "validUntil",
    }
    assert BARE_TASK.to_dict() == {"id": "t1", "intent": "Answer a question."}
    assert set(SESSION.to_dict()) == {
        "id",
        "backend",
        "status",
        "resumeToken",
        "createdAt",
        "updatedAt",
        "metadata",
    }
    assert set(REPORT.to_dict()) == {
        "taskId",
        "readinessScore",
        "recommendedAction",
        "severity",
        "reason",
        "blockingGaps",
        "nonBlockingGaps",
        "bundle",
        "metadata",
    }
    assert set(REPORT.bundle.to_dict()) == {"requirements", "evidenceIds", "missing"}
    assert set(DECISION.to_dict()) == {
        "passed",
        "status",
        "reason",
        "readinessScore",
        "recommendedAction",
        "severity",
        "blockingGapIds",
        "nonBlockingGapIds",
    }
    assert set(QUESTION.to_dict()) == {
        "id",
        "requirementId",
        "question",
        "reason",
        "importance",
        "answerType",
        "impactIfUnknown",
        "options",
    }
    assert set(PLAN.to_dict()) == {
        "id",
        "requirementIds",
        "mode",
        "priority",
        "description",
        "expectedEvidenceCount",
        "questions",
    }
    assert DETAIL.to_dict() == {"kind": "transport", "message": "m", "status": 502, "body": "b"}


def test_control_records_use_camel_case_keys_and_pass() -> None:
    step = STEP.to_dict()
    assert set(step) == {
        "index",
        "decision",
        "evalsBefore",
        "evalsAfter",
        "startedAt",
        "endedAt",
        "durationMs",
        "actionOk",
        "result",
        "actionError",
        "costUsd",
    }
    assert step["decision"] == {
        "type": "continue",
        "action": {"x": 1},
        "reason": "go",
        "pass": True,
        "score": 1.0,
    }
    assert set(step["evalsBefore"][0]) == {
        "id",
        "passed",
        "severity",
        "score",
        "objective",
        "detail",
        "evidence",
    }
    control = CONTROL.to_dict()
    assert set(control) == {
        "intent",
        "pass",
        "completed",
        "reason",
        "stoppedBy",
        "steps",
        "finalEvals",
        "wallMs",
        "spentCostUsd",
        "score",
        "finalState",
        "runId",
        "failureClass",
        "runtimeErrors",
    }
    assert control["runtimeErrors"] == [{"phase": "act", "message": "m", "stepIndex": 0}]
    # runId is null without a trace store, as the original writes it
    bare = ControlRunResult(
        intent="i", pass_=False, completed=False, reason="r", stopped_by="abort"
    )
    assert bare.to_dict()["runId"] is None
    assert ControlRunResult.from_dict(bare.to_dict()) == bare


def test_text_delta_from_the_original_wire() -> None:
    event = parse_event({"type": "text_delta", "text": "x"})
    assert event == TextDeltaEvent(text="x")
    assert parse_runtime_stream_event('{"type":"text_delta","text":"x"}') == event
    assert parse_event(b'{"type":"text_delta","text":"x"}') == event
    assert TextDeltaEvent(text="x").to_dict() == {"type": "text_delta", "text": "x"}
    assert TextDeltaEvent(text="x").to_json() == '{"type":"text_delta","text":"x"}'


def test_original_tool_call_and_llm_call_lines_parse() -> None:
    call = parse_event(
        {"type": "tool_call", "toolName": "search", "toolCallId": "c1", "args": {"q": 1}}
    )
    assert call == ToolCallEvent(tool_name="search", tool_call_id="c1", args={"q": 1})
    usage = parse_event(
        {
            "type": "llm_call",
            "model": "m",
            "tokensIn": 3,
            "tokensOut": 4,
            "latencyMs": 5,
            "finishReason": "stop",
        }
    )
    assert usage == LlmCallEvent(
        model="m", tokens_in=3, tokens_out=4, latency_ms=5.0, finish_reason="stop"
    )
    assert "costUsd" not in usage.to_dict()


@pytest.mark.parametrize("event", [e for e, _, _ in FULL if isinstance(e, CONTROL_CLASSES)])
def test_stream_parser_refuses_control_events(event: Any) -> None:
    assert parse_event(event.to_dict()) == event
    with pytest.raises(EventParseError):
        parse_runtime_stream_event(event.to_dict())
    with pytest.raises(EventParseError):
        parse_runtime_stream_event(event.to_json())


def test_to_json_refuses_a_non_json_payload() -> None:
    with pytest.raises(EventParseError):
        ToolResultEvent(tool_name="t", result=float("nan")).to_json()
    with pytest.raises(EventParseError):
        ToolCallEvent(tool_name="t", args={1: "int key"}).to_json()


# --- records validate on construction ----------------------------------------------------------


def test_knowledge_requirement_needs_only_id_and_description() -> None:
    r = KnowledgeRequirement(id="city", description="the city")
    assert (r.importance, r.acquisition_mode, r.fallback_policy, r.sensitivity) == (
        "medium",
        "ask_user",
        "ask",
        "internal",
    )
    assert (r.confidence_needed, r.current_confidence) == (0.7, 0.0)
    assert r.required_for == () and r.evidence_ids == () and r.valid_until is None
    listed = KnowledgeRequirement(id="c", description="d", required_for=["a", "b"])
    assert listed.required_for == ("a", "b")


@pytest.mark.parametrize(
    "kw",
    [
        {"importance": "critical"},
        {"acquisition_mode": "guess"},
        {"sensitivity": "top"},
        {"fallback_policy": "retry"},
        {"confidence_needed": float("nan")},
        {"current_confidence": "high"},
        {"current_confidence": True},
        {"required_for": "shipping"},
        {"evidence_ids": [1]},
        {"valid_until": 5},
        {"id": ""},
        {"description": None},
    ],
)
def test_a_bad_requirement_is_a_validation_error(kw: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"id": "city", "description": "the city", **kw}
    with pytest.raises(ValidationError):
        KnowledgeRequirement(**fields)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AgentTaskSpec(id="", intent="i"),
        lambda: AgentTaskSpec(id="t", intent="i", required_knowledge=[{"id": "a"}]),
        lambda: AgentTaskSpec(id="t", intent="i", inputs=["x"]),
        lambda: RuntimeSession(id="s", backend="b", status="done", created_at=TS, updated_at=TS),
        lambda: ControlBudget(max_steps=-1),
        lambda: ControlBudget(max_cost_usd=-1.0),
        lambda: ControlDecision(type="pause"),
        lambda: ControlEvalResult(id="e", passed="yes"),
        lambda: UserQuestion(id="q", requirement_id="r", question="q", reason="r", importance="x"),
        lambda: DataAcquisitionPlan(
            id="p", requirement_ids=(), mode="ask_user", priority="low", expected_evidence_count=-1
        ),
        lambda: KnowledgeReadinessReport(
            task_id="t",
            readiness_score=1.5,
            recommended_action="run_agent",
            severity="info",
            reason="r",
        ),
        lambda: KnowledgeBundle(requirements=["x"]),
        lambda: ControlRunResult(
            intent="i", pass_=True, completed=True, reason="r", stopped_by="x"
        ),
    ],
)
def test_records_validate_on_construction(make: Any) -> None:
    with pytest.raises(ValidationError):
        make()


# --- strategies for every event ----------------------------------------------------------------

text = st.text(max_size=12)
ident = st.text(min_size=1, max_size=8)
opt_text = st.none() | text
floats = st.floats(allow_nan=False, allow_infinity=False)
opt_float = st.none() | floats
unit = st.floats(min_value=0.0, max_value=1.0)
ints = st.integers(min_value=0, max_value=2**53)
texts = st.lists(text, max_size=2).map(tuple)
json_leaf = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63) | floats | text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
json_obj = st.dictionaries(text, json_value, max_size=3)
opt_obj = st.none() | json_obj


def tuples(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, max_size=2).map(tuple)


requirements = st.builds(
    KnowledgeRequirement,
    id=ident,
    description=text,
    required_for=texts,
    category=text,
    acquisition_mode=st.sampled_from(ACQUISITION_MODES),
    importance=st.sampled_from(IMPORTANCES),
    freshness=text,
    sensitivity=st.sampled_from(SENSITIVITIES),
    confidence_needed=floats,
    current_confidence=floats,
    evidence_ids=texts,
    fallback_policy=st.sampled_from(FALLBACK_POLICIES),
    valid_until=opt_text,
)
budgets = st.builds(
    ControlBudget,
    max_steps=st.integers(0, 100),
    max_wall_ms=st.integers(1, 10**9),
    max_cost_usd=st.none() | st.floats(min_value=0, max_value=1e9),
)
tasks = st.builds(
    AgentTaskSpec,
    id=ident,
    intent=text,
    domain=opt_text,
    inputs=opt_obj,
    required_knowledge=st.none() | tuples(requirements),
    budget=st.none() | budgets,
    metadata=opt_obj,
)
opt_tasks = st.none() | tasks
sessions = st.builds(
    RuntimeSession,
    id=ident,
    backend=text,
    status=st.sampled_from(["active", "completed", "failed", "aborted"]),
    created_at=text,
    updated_at=text,
    resume_token=opt_text,
    metadata=opt_obj,
)
opt_sessions = st.none() | sessions
severities = st.sampled_from(["critical", "warning", "info"])
reports = st.builds(
    KnowledgeReadinessReport,
    task_id=text,
    readiness_score=unit,
    recommended_action=st.sampled_from(RECOMMENDED_ACTIONS),
    severity=severities,
    reason=text,
    blocking_gaps=tuples(requirements),
    non_blocking_gaps=tuples(requirements),
    bundle=st.builds(
        KnowledgeBundle, requirements=tuples(requirements), evidence_ids=texts, missing=texts
    ),
    metadata=opt_obj,
) | st.builds(score_knowledge_readiness, text, tuples(requirements), opt_obj)
decisions = st.builds(
    KnowledgeReadinessDecision,
    passed=st.booleans(),
    status=st.sampled_from(["ready", "blocked", "caveat"]),
    reason=text,
    readiness_score=unit,
    recommended_action=st.sampled_from(RECOMMENDED_ACTIONS),
    severity=severities,
    blocking_gap_ids=texts,
    non_blocking_gap_ids=texts,
)
questions = st.builds(
    UserQuestion,
    id=text,
    requirement_id=text,
    question=text,
    reason=text,
    importance=st.sampled_from(IMPORTANCES),
    answer_type=st.sampled_from(["free_text", "credential", "choice"]),
    impact_if_unknown=text,
    options=st.none() | texts,
)
plans = st.builds(
    DataAcquisitionPlan,
    id=text,
    requirement_ids=texts,
    mode=st.sampled_from(ACQUISITION_MODES),
    priority=st.sampled_from(IMPORTANCES),
    description=text,
    expected_evidence_count=st.integers(0, 100),
    questions=tuples(questions),
)
control_decisions = st.builds(
    ControlDecision,
    type=st.sampled_from(["continue", "stop"]),
    action=json_value,
    reason=opt_text,
    pass_=st.none() | st.booleans(),
    score=opt_float,
)
evals = st.builds(
    ControlEvalResult,
    id=text,
    passed=st.booleans(),
    severity=st.sampled_from(["critical", "error", "warning", "info"]),
    score=opt_float,
    objective=st.none() | st.booleans(),
    detail=opt_text,
    evidence=json_value,
)
steps = st.builds(
    ControlStep,
    index=st.integers(0, 100),
    decision=control_decisions,
    evals_before=tuples(evals),
    evals_after=tuples(evals),
    started_at=text,
    ended_at=text,
    duration_ms=floats,
    action_ok=st.none() | st.booleans(),
    result=json_value,
    action_error=opt_text,
    cost_usd=opt_float,
)
controls = st.builds(
    ControlRunResult,
    intent=text,
    pass_=st.booleans(),
    completed=st.booleans(),
    reason=text,
    stopped_by=st.sampled_from(["policy", "stop-policy", "budget", "abort", "runtime-error"]),
    steps=tuples(steps),
    final_evals=tuples(evals),
    wall_ms=floats,
    spent_cost_usd=floats,
    score=opt_float,
    final_state=json_value,
    run_id=opt_text,
    failure_class=st.none() | st.sampled_from(FAILURE_CLASSES),
    runtime_errors=tuples(
        st.builds(
            ControlRuntimeError,
            phase=text,
            message=text,
            step_index=st.none() | st.integers(0, 100),
        )
    ),
)
error_details = st.builds(
    BackendErrorDetail,
    kind=st.sampled_from(["transport", "backend"]),
    message=text,
    status=st.none() | st.integers(0, 599),
    body=opt_text,
)
statuses = st.sampled_from(["completed", "blocked", "failed", "aborted"])
timestamps = st.none() | text

#: one strategy per event class, every field drawn (nested tasks, sessions, reports, steps)
EVENT_STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    TaskStartEvent: st.builds(TaskStartEvent, task=tasks, timestamp=timestamps),
    ReadinessStartEvent: st.builds(ReadinessStartEvent, task=tasks, timestamp=timestamps),
    ReadinessEndEvent: st.builds(
        ReadinessEndEvent,
        task=tasks,
        knowledge=reports,
        decision=st.none() | decisions,
        timestamp=timestamps,
    ),
    QuestionsStartEvent: st.builds(
        QuestionsStartEvent, task=tasks, questions=tuples(questions), timestamp=timestamps
    ),
    QuestionsEndEvent: st.builds(
        QuestionsEndEvent,
        task=tasks,
        questions=tuples(questions),
        user_answers=json_obj,
        timestamp=timestamps,
    ),
    AcquisitionStartEvent: st.builds(
        AcquisitionStartEvent, task=tasks, acquisition_plans=tuples(plans), timestamp=timestamps
    ),
    AcquisitionEndEvent: st.builds(
        AcquisitionEndEvent,
        task=tasks,
        acquisition_plans=tuples(plans),
        acquired_evidence_ids=texts,
        timestamp=timestamps,
    ),
    SessionCreatedEvent: st.builds(
        SessionCreatedEvent, task=tasks, session=sessions, timestamp=timestamps
    ),
    SessionResumedEvent: st.builds(
        SessionResumedEvent, task=tasks, session=sessions, timestamp=timestamps
    ),
    BackendStartEvent: st.builds(
        BackendStartEvent, task=tasks, session=sessions, backend=text, timestamp=timestamps
    ),
    TextDeltaEvent: st.builds(
        TextDeltaEvent, text=text, task=opt_tasks, session=opt_sessions, timestamp=timestamps
    ),
    ReasoningDeltaEvent: st.builds(
        ReasoningDeltaEvent, text=text, task=opt_tasks, session=opt_sessions, timestamp=timestamps
    ),
    ToolCallEvent: st.builds(
        ToolCallEvent,
        tool_name=text,
        tool_call_id=opt_text,
        args=json_value,
        task=opt_tasks,
        session=opt_sessions,
        timestamp=timestamps,
    ),
    ToolResultEvent: st.builds(
        ToolResultEvent,
        tool_name=text,
        tool_call_id=opt_text,
        result=json_value,
        task=opt_tasks,
        session=opt_sessions,
        timestamp=timestamps,
    ),
    LlmCallEvent: st.builds(
        LlmCallEvent,
        model=text,
        tokens_in=st.none() | ints,
        tokens_out=st.none() | ints,
        cost_usd=opt_float,
        latency_ms=opt_float,
        finish_reason=opt_text,
        task=opt_tasks,
        session=opt_sessions,
        timestamp=timestamps,
    ),
    ArtifactEvent: st.builds(
        ArtifactEvent,
        artifact_id=text,
        name=opt_text,
        mime_type=opt_text,
        uri=opt_text,
        content=json_value,
        metadata=opt_obj,
        task=opt_tasks,
        session=opt_sessions,
        timestamp=timestamps,
    ),
    ProposalCreatedEvent: st.builds(
        ProposalCreatedEvent,
        proposal_id=text,
        title=text,
        status=st.none() | st.sampled_from(["pending", "approved", "rejected"]),
        content=json_value,
        task=opt_tasks,
        session=opt_sessions,
        timestamp=timestamps,
    ),
    BackendErrorEvent: st.builds(
        BackendErrorEvent,
        task=tasks,
        backend=text,
        message=text,
        recoverable=st.booleans(),
        session=opt_sessions,
        error=st.none() | error_details,
        timestamp=timestamps,
    ),
    BackendEndEvent: st.builds(
        BackendEndEvent, task=tasks, session=sessions, backend=text, timestamp=timestamps
    ),
    TaskEndEvent: st.builds(
        TaskEndEvent, task=tasks, status=statuses, reason=text, timestamp=timestamps
    ),
    FinalEvent: st.builds(
        FinalEvent,
        task=tasks,
        status=statuses,
        reason=text,
        session=opt_sessions,
        text=opt_text,
        metadata=opt_obj,
        error=st.none() | error_details,
        timestamp=timestamps,
    ),
    ControlStartEvent: st.builds(ControlStartEvent, task=tasks, knowledge=reports),
    ControlStepEvent: st.builds(ControlStepEvent, task=tasks, step=steps),
    ControlEndEvent: st.builds(ControlEndEvent, task=tasks, control=controls),
}
stream_events = st.one_of([EVENT_STRATEGIES[c] for c in STREAM_CLASSES])
control_events = st.one_of([EVENT_STRATEGIES[c] for c in CONTROL_CLASSES])
all_events = stream_events | control_events
HYPO = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_there_is_a_strategy_for_every_class() -> None:
    assert set(EVENT_STRATEGIES) == set(ALL_EVENT_CLASSES)


@pytest.mark.parametrize("cls", ALL_EVENT_CLASSES, ids=lambda c: c.TYPE)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_class_round_trips(cls: type[Any], data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[cls])
    assert type(event) is cls
    assert parse_event(event.to_dict()) == event
    assert parse_event(event.to_json()) == event


@HYPO
@given(all_events)
def test_any_event_round_trips(event: Any) -> None:
    wire = event.to_dict()
    back = parse_event(wire)
    assert back == event and type(back) is type(event)
    assert back.to_dict() == wire
    json_text = event.to_json()
    again = parse_event(json_text)
    assert again == event and type(again) is type(event)
    assert again.to_json() == json_text
    assert parse_event(json_text.encode()) == event
    assert orjson.loads(json_text) == wire


@HYPO
@given(stream_events)
def test_any_stream_event_round_trips_through_the_stream_parser(event: Any) -> None:
    assert parse_runtime_stream_event(event.to_json()) == event
    assert parse_runtime_stream_event(event.to_dict()) == event


@HYPO
@given(control_events)
def test_the_stream_parser_refuses_any_control_event(event: Any) -> None:
    with pytest.raises(EventParseError):
        parse_runtime_stream_event(event.to_dict())


# --- malformed input: EventParseError and nothing else -----------------------------------------


def required_keys(cls: type[Any]) -> list[str]:
    return [
        camel(f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def all_keys(cls: type[Any]) -> set[str]:
    return {f.metadata.get("wire", camel(f.name)) for f in dataclasses.fields(cls)}


#: payload fields that accept any JSON value
ANY_KEYS = {"args", "result", "content"}


def other_kind(value: Any) -> st.SearchStrategy[Any]:
    """A JSON value of another kind than `value` (a number for a string, a list for an
    object...); int and float count as one kind, as a float field takes an int."""
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "str": text,
        "number": st.integers(-5, 5) | floats,
        "bool": st.booleans(),
        "list": st.lists(json_value, max_size=2),
        "dict": st.dictionaries(ident, json_value, min_size=1, max_size=2),
    }
    mine = (
        "bool"
        if type(value) is bool
        else "number"
        if type(value) in (int, float)
        else type(value).__name__
    )
    return st.one_of([s for k, s in kinds.items() if k != mine])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), json_obj)
def test_unknown_type(kind: str, fields: dict[str, Any]) -> None:
    if kind in RUNTIME_STREAM_EVENT_TYPES | AGENT_RUNTIME_EVENT_TYPES:
        return
    with pytest.raises(EventParseError):
        parse_event({**fields, "type": kind})
    with pytest.raises(EventParseError):
        parse_event({k: v for k, v in fields.items() if k != "type"})


@HYPO
@given(all_events, st.data())
def test_missing_required_field(event: Any, data: st.DataObject) -> None:
    wire = event.to_dict()
    key = data.draw(st.sampled_from(required_keys(type(event))))
    del wire[key]
    with pytest.raises(EventParseError):
        parse_event(wire)
    with pytest.raises(EventParseError):
        parse_event(orjson.dumps(wire))


@HYPO
@given(all_events, st.data())
def test_missing_nested_field(event: Any, data: st.DataObject) -> None:
    wire = event.to_dict()
    if "task" not in wire:
        return
    wire["task"] = dict(wire["task"])
    del wire["task"][data.draw(st.sampled_from(["id", "intent"]))]
    with pytest.raises(EventParseError):
        parse_event(wire)


@HYPO
@given(all_events, st.data())
def test_wrong_field_type(event: Any, data: st.DataObject) -> None:
    wire = event.to_dict()
    key = data.draw(st.sampled_from(sorted(set(wire) - {"type"} - ANY_KEYS)))
    wire[key] = data.draw(other_kind(wire[key]), label=f"new {key}")
    with pytest.raises(EventParseError):
        parse_event(wire)


@HYPO
@given(all_events, st.data())
def test_wrong_nested_field_type(event: Any, data: st.DataObject) -> None:
    wire = event.to_dict()
    if "task" not in wire:
        return
    task = dict(wire["task"])
    key = data.draw(st.sampled_from(sorted(task)))
    task[key] = data.draw(other_kind(task[key]), label=f"new task.{key}")
    wire["task"] = task
    with pytest.raises(EventParseError):
        parse_event(wire)


@HYPO
@given(all_events, st.text(max_size=12), json_value)
def test_unknown_extra_field(event: Any, key: str, value: Any) -> None:
    if key in all_keys(type(event)) or key == "type":
        return
    wire = event.to_dict()
    wire[key] = value
    with pytest.raises(EventParseError):
        parse_event(wire)
    if "task" in wire and key not in all_keys(AgentTaskSpec):
        wire.pop(key)
        wire["task"] = {**wire["task"], key: value}
        with pytest.raises(EventParseError):
            parse_event(wire)


@settings(max_examples=200, deadline=None)
@given(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | floats
    | st.lists(json_value, max_size=3)
    | st.tuples(text)
)
def test_non_object(value: Any) -> None:
    with pytest.raises(EventParseError):
        parse_event(value)
    if not isinstance(value, tuple):
        with pytest.raises(EventParseError):
            parse_event(orjson.dumps(value))
        with pytest.raises(EventParseError):
            parse_runtime_stream_event(orjson.dumps(value).decode())


@settings(max_examples=200, deadline=None)
@given(all_events, st.data())
def test_invalid_json_text(event: Any, data: st.DataObject) -> None:
    json_text = event.to_json()
    cut = data.draw(st.integers(1, len(json_text) - 1))
    with pytest.raises(EventParseError):
        parse_event(json_text[:cut])
    with pytest.raises(EventParseError):
        parse_event(json_text + data.draw(st.sampled_from(["x", "}", ",", "]"])))


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b" ",
        b"{",
        b"{'type': 'text_delta'}",
        b'{"type": "text_delta", "text": "x",}',
        b'{"type": "text_delta", "text": NaN}',
        b"\xff\xfe",
        "not json",
        '{"type": "text_delta", "text": "\\ud800"}',
    ],
)
def test_invalid_json_examples(bad: Any) -> None:
    with pytest.raises(EventParseError):
        parse_event(bad)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [255, 300, 1_200, 50_000])
@pytest.mark.parametrize("where", ["args", "inputs", "userAnswers", "evidence"])
def test_deeply_nested_payload(depth: int, where: str) -> None:
    payload = nested(depth)
    if where == "args":
        wire: dict[str, Any] = {"type": "tool_call", "toolName": "t", "args": payload}
    elif where == "inputs":
        wire = {"type": "task_start", "task": {"id": "t", "intent": "i", "inputs": {"k": payload}}}
    elif where == "userAnswers":
        wire = {**full("questions_end").to_dict(), "userAnswers": {"q": payload}}
    else:
        wire = full("control_end").to_dict()
        wire["control"]["steps"][0]["evalsBefore"][0]["evidence"] = payload
    with pytest.raises(EventParseError):
        parse_event(wire)
    if depth < 1_000:  # deeper text is refused by the JSON parser itself (also EventParseError)
        json_text = json.dumps(wire)  # orjson itself cannot write that deep
        with pytest.raises(EventParseError):
            parse_event(json_text)


@pytest.mark.parametrize("depth", [200, 236, 238, 240, 250, 253])
@pytest.mark.parametrize("where", ["args", "inputs", "evidence", "action"])
def test_what_parses_also_serializes(depth: int, where: str) -> None:
    """Whatever nesting `parse_event` accepts, `to_json()` can write again: a payload is
    checked with room for the records around it."""
    payload = nested(depth)
    if where == "args":
        wire: dict[str, Any] = {"type": "tool_call", "toolName": "t", "args": payload}
    elif where == "inputs":
        wire = {"type": "task_start", "task": {"id": "t", "intent": "i", "inputs": {"k": payload}}}
    elif where == "evidence":
        wire = full("control_end").to_dict()
        wire["control"]["steps"][0]["evalsBefore"][0]["evidence"] = payload
    else:
        wire = full("control_end").to_dict()
        wire["control"]["steps"][0]["decision"]["action"] = payload
    try:
        event = parse_event(wire)
    except EventParseError:
        assert depth > 200  # ordinary nesting is accepted
        return
    assert parse_event(event.to_json()) == event


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "text_delta", "text": "\ud800"},  # a lone surrogate is no JSON string
        {"type": "tool_call", "toolName": "t\udfff"},
        {"type": "task_start", "task": {"id": "t", "intent": "i\ud800"}},
        {"type": "llm_call", "model": "m", "tokensIn": 2**64},  # beyond what JSON carries
        {"type": "llm_call", "model": "m", "tokensOut": -(2**63) - 1},
        {
            "type": "backend_error",
            "task": {"id": "t", "intent": "i"},
            "backend": "b",
            "message": "m",
            "recoverable": True,
            "error": {"kind": "transport", "message": "m", "status": 2**70},
        },
    ],
)
def test_values_no_json_can_carry_are_refused(wire: dict[str, Any]) -> None:
    with pytest.raises(EventParseError):
        parse_event(wire)


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "text_delta"},
        {"type": "text_delta", "text": 5},
        {"type": "text_delta", "text": None},
        {"type": "text_delta", "text": "a", "extra": 1},
        {"type": "text_delta", "text": "a", "task": "t1"},
        {"type": "text_delta", "text": "a", "timestamp": 1},
        {"type": "text_delta", "text": "a", 1: 2},
        {"type": "text.delta", "text": "a"},
        {"type": None, "text": "a"},
        {"type": ["text_delta"], "text": "a"},
        {"type": "task_end", "task": {"id": "t", "intent": "i"}, "status": "done", "reason": "r"},
        {"type": "task_start", "task": {"id": "", "intent": "i"}},
        {"type": "task_start", "task": {"id": "t", "intent": "i", "budget": {"maxSteps": -1}}},
        {"type": "task_start", "task": {"id": "t", "intent": "i", "requiredKnowledge": [{}]}},
        {
            "type": "task_start",
            "task": {
                "id": "t",
                "intent": "i",
                "requiredKnowledge": [{"id": "a", "description": "d", "importance": "critical"}],
            },
        },
        {"type": "task_start", "task": {"id": "t", "intent": "i", "inputs": {"k": float("nan")}}},
        {"type": "task_start", "task": {"id": "t", "intent": "i", "inputs": {1: "int key"}}},
        {"type": "llm_call", "model": "m", "tokensIn": 1.5},
        {"type": "llm_call", "model": "m", "tokensIn": True},
        {"type": "llm_call", "model": "m", "costUsd": float("inf")},
        {"type": "llm_call", "model": "m", "costUsd": "0.1"},
        {"type": "tool_call", "toolName": "t", "args": {"x": {1, 2}}},
        {"type": "proposal_created", "proposalId": "p", "title": "t", "status": "maybe"},
        {
            "type": "backend_error",
            "task": {"id": "t", "intent": "i"},
            "backend": "b",
            "message": "m",
            "recoverable": "yes",
        },
        {
            "type": "final",
            "task": {"id": "t", "intent": "i"},
            "status": "failed",
            "reason": "r",
            "error": {"kind": "network", "message": "m"},
        },
        {
            "type": "session_created",
            "task": {"id": "t", "intent": "i"},
            "session": {"id": "s", "backend": "b", "status": "active", "createdAt": "x"},
        },
        {
            "type": "readiness_end",
            "task": {"id": "t", "intent": "i"},
            "knowledge": {**REPORT.to_dict(), "readinessScore": 1.5},
        },
        {
            "type": "control_end",
            "task": {"id": "t", "intent": "i"},
            "control": {**CONTROL.to_dict(), "stoppedBy": "user"},
        },
        {
            "type": "control_step",
            "task": {"id": "t", "intent": "i"},
            "step": {**STEP.to_dict(), "decision": {"type": "pause"}},
        },
    ],
)
def test_known_bad_dicts(wire: dict[Any, Any]) -> None:
    with pytest.raises(EventParseError):
        parse_event(wire)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(RUNTIME_STREAM_EVENT_TYPES | AGENT_RUNTIME_EVENT_TYPES)),
    st.dictionaries(
        st.sampled_from(sorted(set().union(*(all_keys(c) for c in ALL_EVENT_CLASSES)))),
        json_value | st.builds(lambda t: t.to_dict(), tasks) | st.just(SESSION.to_dict()),
        max_size=6,
    ),
)
def test_fuzzed_fields_either_parse_to_a_round_tripping_event_or_fail_typed(
    kind: str, fields: dict[str, Any]
) -> None:
    try:
        event = parse_event({"type": kind, **fields})
    except EventParseError:
        return
    assert event.type == kind
    assert parse_event(event.to_json()) == event
