"""Full events of every type for the telemetry tests: each user-controlled field holds its own
marker (`LEAK<field>`), so a test names exactly which field escaped a projection."""

from __future__ import annotations

from typing import Any

from agent_runtime.eval import (
    ControlDecision,
    ControlEvalResult,
    ControlRunResult,
    ControlStep,
    DataAcquisitionPlan,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    UserQuestion,
)
from agent_runtime.eval._records import ControlRuntimeError, KnowledgeBundle
from agent_runtime.readiness import decide_knowledge_readiness
from agent_runtime.types import (
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    AgentTaskSpec,
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
    RuntimeSession,
    SessionCreatedEvent,
    SessionResumedEvent,
    TaskEndEvent,
    TaskStartEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

TS = "2026-12-01T08:14:37.123Z"
TS_MS = 1796112877123


def leak(field: str) -> str:
    """The marker of one user-controlled field."""
    return f"LEAK<{field}>"


REQUIREMENT = KnowledgeRequirement(
    id="customer-id",
    description=leak("requirement.description"),
    required_for=("lookup",),
    category="customer",
    acquisition_mode="ask_user",
    importance="blocking",
    evidence_ids=(leak("requirement.evidenceIds"),),
    current_confidence=0.2,
)
SECRET_REQUIREMENT = KnowledgeRequirement(
    id="api-token",
    description=leak("secret.description"),
    acquisition_mode="ask_user",
    importance="high",
    sensitivity="secret",
    fallback_policy="block",
)
TASK = AgentTaskSpec(
    id="task-1",
    intent="answer a customer question",
    domain="support",
    inputs={"question": leak("task.inputs"), leak("task.inputs.key"): 1},
    required_knowledge=(REQUIREMENT, SECRET_REQUIREMENT),
    metadata={"tenant": leak("task.metadata")},
)
SESSION = RuntimeSession(
    id="sess-1",
    backend="tcloud",
    status="active",
    created_at=TS,
    updated_at=TS,
    resume_token=leak("session.resumeToken"),
    metadata={"box": leak("session.metadata")},
)
REPORT = KnowledgeReadinessReport(
    task_id="task-1",
    readiness_score=0.4,
    recommended_action="ask_user",
    severity="critical",
    reason="2 blocking knowledge requirement(s) are missing.",
    blocking_gaps=(REQUIREMENT, SECRET_REQUIREMENT),
    bundle=KnowledgeBundle(
        requirements=(REQUIREMENT, SECRET_REQUIREMENT),
        evidence_ids=(leak("report.evidenceIds"),),
        missing=("customer-id", "api-token"),
    ),
    metadata={"domain": leak("report.metadata")},
)
DECISION = decide_knowledge_readiness(REPORT)
QUESTION = UserQuestion(
    id="question_customer-id",
    requirement_id="customer-id",
    question=leak("question.question"),
    reason=leak("question.reason"),
    importance="blocking",
    impact_if_unknown=leak("question.impactIfUnknown"),
    options=(leak("question.options"), "b"),
)
CREDENTIAL_QUESTION = UserQuestion(
    id="question_api-token",
    requirement_id="api-token",
    question=leak("credential.question"),
    reason="Required for the task.",
    importance="high",
    answer_type="credential",
)
PLAN = DataAcquisitionPlan(
    id="acquire_ask_user",
    requirement_ids=("customer-id",),
    mode="ask_user",
    priority="blocking",
    description=leak("plan.description"),
    expected_evidence_count=1,
    questions=(QUESTION,),
)
ANSWERS = {"question_customer-id": leak("userAnswers")}
EVIDENCE = (leak("acquiredEvidenceIds"),)
EVAL = ControlEvalResult(
    id="tests-pass",
    passed=False,
    severity="error",
    score=0.5,
    objective=True,
    detail=leak("eval.detail"),
    evidence={"log": leak("eval.evidence")},
)
STEP = ControlStep(
    index=0,
    decision=ControlDecision.continue_({"cmd": leak("step.action")}, reason="run the tests"),
    evals_before=(EVAL,),
    evals_after=(EVAL,),
    started_at=TS,
    ended_at=TS,
    duration_ms=12.5,
    action_ok=True,
    result={"out": leak("step.result")},
)
CONTROL = ControlRunResult(
    intent="answer a customer question",
    pass_=False,
    completed=True,
    reason="budget exhausted: maxSteps=1",
    stopped_by="budget",
    steps=(STEP,),
    final_evals=(EVAL,),
    wall_ms=40.0,
    spent_cost_usd=0.25,
    score=0.5,
    final_state={"memo": leak("control.finalState")},
    failure_class="budget_exceeded",
    runtime_errors=(ControlRuntimeError(phase="act", message="boom"),),
)
DETAIL = BackendErrorDetail(
    kind="transport", message="chat backend returned 503", status=503, body=leak("error.body")
)


def agent_events() -> list[Any]:
    """One full event of every `run_agent_task` type."""
    return [
        TaskStartEvent(task=TASK),
        ReadinessStartEvent(task=TASK),
        ReadinessEndEvent(task=TASK, knowledge=REPORT),
        QuestionsStartEvent(task=TASK, questions=(QUESTION, CREDENTIAL_QUESTION)),
        QuestionsEndEvent(
            task=TASK, questions=(QUESTION, CREDENTIAL_QUESTION), user_answers=ANSWERS
        ),
        AcquisitionStartEvent(task=TASK, acquisition_plans=(PLAN,)),
        AcquisitionEndEvent(task=TASK, acquisition_plans=(PLAN,), acquired_evidence_ids=EVIDENCE),
        ControlStartEvent(task=TASK, knowledge=REPORT),
        ControlStepEvent(task=TASK, step=STEP),
        ControlEndEvent(task=TASK, control=CONTROL),
        TaskEndEvent(task=TASK, status="failed", reason="budget exhausted: maxSteps=1"),
    ]


def stream_events() -> list[Any]:
    """One full event of every `run_agent_task_stream` type."""
    common: dict[str, Any] = {"task": TASK, "timestamp": TS}
    backend: dict[str, Any] = {**common, "session": SESSION}
    return [
        TaskStartEvent(**common),
        ReadinessStartEvent(**common),
        ReadinessEndEvent(knowledge=REPORT, decision=DECISION, **common),
        QuestionsStartEvent(questions=(QUESTION, CREDENTIAL_QUESTION), **common),
        QuestionsEndEvent(
            questions=(QUESTION, CREDENTIAL_QUESTION), user_answers=ANSWERS, **common
        ),
        AcquisitionStartEvent(acquisition_plans=(PLAN,), **common),
        AcquisitionEndEvent(acquisition_plans=(PLAN,), acquired_evidence_ids=EVIDENCE, **common),
        SessionCreatedEvent(**backend),
        SessionResumedEvent(**backend),
        BackendStartEvent(backend="tcloud", **backend),
        TextDeltaEvent(text="Hello", **backend),
        ReasoningDeltaEvent(text="thinking", **backend),
        ToolCallEvent(
            tool_name="crm", tool_call_id="call-1", args={"q": leak("tool.args")}, **backend
        ),
        ToolResultEvent(
            tool_name="crm", tool_call_id="call-1", result={"rows": leak("tool.result")}, **backend
        ),
        LlmCallEvent(
            model="gpt-x",
            tokens_in=10,
            tokens_out=5,
            cost_usd=0.01,
            latency_ms=250.0,
            finish_reason="stop",
            **backend,
        ),
        ArtifactEvent(
            artifact_id="art-1",
            name="report.pdf",
            mime_type="application/pdf",
            uri=leak("artifact.uri"),
            content=leak("artifact.content"),
            metadata={"owner": leak("artifact.metadata")},
            **backend,
        ),
        ProposalCreatedEvent(
            proposal_id="prop-1",
            title=leak("proposal.title"),
            status="pending",
            content=leak("proposal.content"),
            **backend,
        ),
        BackendErrorEvent(
            backend="tcloud",
            message="chat backend returned 503",
            recoverable=True,
            error=DETAIL,
            **backend,
        ),
        BackendEndEvent(backend="tcloud", **backend),
        TaskEndEvent(status="failed", reason="chat backend returned 503", **common),
        FinalEvent(
            status="failed",
            reason="chat backend returned 503",
            text=leak("final.text"),
            metadata={"note": leak("final.metadata")},
            error=DETAIL,
            **backend,
        ),
    ]
