"""Sanitized telemetry (ORIGINAL §9): projections of events that leave nothing user-controlled
unless the caller opts in, then secret scrubbing over every string that remains.

`RuntimeTelemetryOptions` holds the original's include flags (all off by default). The
projections keep the fields the original shows (ids, statuses, counts, the fixed `intent`,
reasons, the text of deltas) and replace or drop what users control (inputs, metadata,
requirement descriptions, evidence ids, answers, tool arguments and results, final text). The
output is a JSON dict in the original's camelCase wire form. On top of it, every remaining string
goes through `sanitize_json` (ours: `[REDACTED:<8 hex>]` markers), deltas included unless
`scrub_deltas=False`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from ._scrub import (
    DEFAULT_INTERNAL_KEYS,
    DEFAULT_SECRET_KEYS,
    SanitizeOptions,
    contains_secret,
    redaction_marker,
    sanitize_json,
    sanitize_text,
    scrub_payload,
    scrub_repeated_text,
)
from .errors import EventParseError, ValidationError
from .eval._records import (
    ControlEvalResult,
    ControlRunResult,
    ControlStep,
    DataAcquisitionPlan,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    UserQuestion,
)
from .types import (
    AGENT_RUNTIME_EVENT_TYPES,
    RUNTIME_STREAM_EVENT_TYPES,
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    AgentRuntimeEvent,
    AgentTaskSpec,
    ArtifactEvent,
    BackendEndEvent,
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
    RuntimeStreamEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    TaskEndEvent,
    TaskStartEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    parse_event,
)

__all__ = [
    "DEFAULT_INTERNAL_KEYS",
    "DEFAULT_SECRET_KEYS",
    "REDACTED",
    "RuntimeTelemetryOptions",
    "SanitizeOptions",
    "SanitizedKnowledgeReadinessReport",
    "SanitizedKnowledgeRequirement",
    "contains_secret",
    "redaction_marker",
    "sanitize_agent_runtime_event",
    "sanitize_control_run",
    "sanitize_control_step",
    "sanitize_data_acquisition_plan",
    "sanitize_eval_summary",
    "sanitize_json",
    "sanitize_knowledge_readiness_report",
    "sanitize_knowledge_requirement",
    "sanitize_runtime_session",
    "sanitize_runtime_stream_event",
    "sanitize_task",
    "sanitize_text",
    "sanitize_user_answers",
    "sanitize_user_question",
]

REDACTED = "[redacted]"
"""What stands in for a user-controlled value that exists but is not shown."""


@dataclass(frozen=True, slots=True)
class RuntimeTelemetryOptions:
    """What sanitized telemetry may show beyond ids, statuses and counts; every flag is off by
    default (the original's). `scrub` keys the secret markers (ours, default `SanitizeOptions()`);
    `scrub_deltas=False` sends text and reasoning deltas without secret scrubbing."""

    include_inputs: bool = False
    include_requirement_descriptions: bool = False
    include_evidence_ids: bool = False
    include_user_answers: bool = False
    include_control_payloads: bool = False
    include_metadata: bool = False
    include_eval_details: bool = False
    scrub: SanitizeOptions | None = None
    scrub_deltas: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name != "scrub" and type(getattr(self, f.name)) is not bool:
                raise ValidationError(f"RuntimeTelemetryOptions.{f.name} must be a bool")
        if self.scrub is not None and not isinstance(self.scrub, SanitizeOptions):
            raise ValidationError("RuntimeTelemetryOptions.scrub must be SanitizeOptions or None")

    @classmethod
    def of(
        cls, options: RuntimeTelemetryOptions | None = None, **flags: Any
    ) -> RuntimeTelemetryOptions:
        """`options` (default all off) with the keyword `flags` applied; an unknown name is a
        `ValidationError` (how the SSE helpers take telemetry and SSE options in one call)."""
        base = _options(options, "options")
        if not flags:
            return base
        unknown = sorted(set(flags) - _OPTION_NAMES)
        if unknown:
            raise ValidationError(f"unknown telemetry option(s): {', '.join(unknown)}")
        return dataclasses.replace(base, **flags)


_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(RuntimeTelemetryOptions))
_DEFAULT = RuntimeTelemetryOptions()


def _options(options: Any, who: str) -> RuntimeTelemetryOptions:
    if options is None:
        return _DEFAULT
    if not isinstance(options, RuntimeTelemetryOptions):
        raise ValidationError(f"{who}: options must be RuntimeTelemetryOptions or None")
    return options


class SanitizedKnowledgeRequirement(TypedDict, total=False):
    """The wire shape of a sanitized requirement (`description`, `evidenceIds` opt-in)."""

    id: str
    description: str
    requiredFor: list[str]
    category: str
    acquisitionMode: str
    importance: str
    freshness: str
    sensitivity: str
    confidenceNeeded: float
    currentConfidence: float
    evidenceCount: int
    evidenceIds: list[str]
    fallbackPolicy: str


class SanitizedKnowledgeReadinessReport(TypedDict, total=False):
    """The wire shape of a sanitized readiness report (`evidenceIds` opt-in)."""

    taskId: str
    readinessScore: float
    recommendedAction: str
    severity: str
    reason: str
    blockingGaps: list[SanitizedKnowledgeRequirement]
    nonBlockingGaps: list[SanitizedKnowledgeRequirement]
    evidenceCount: int
    evidenceIds: list[str]
    missingRequirementIds: list[str]


# --- projections ------------------------------------------------------------------------------
# Each builder scrubs as it goes: a string of the schema through `_s` (remembered, since ids and
# intents repeat on every event), a user payload through `_p` (`sanitize_json` of its wire form).


def _s(value: str, o: RuntimeTelemetryOptions) -> str:
    return scrub_repeated_text(value, o.scrub) if type(value) is str else _p(value, o)


def _p(value: Any, o: RuntimeTelemetryOptions) -> Any:
    return scrub_payload(value, o.scrub)


def _strs(values: Any, o: RuntimeTelemetryOptions) -> list[str]:
    return [_s(v, o) for v in values]


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless `value` is None (the original's undefined keys are left out)."""
    if value is not None:
        out[key] = value


def _put_s(out: dict[str, Any], key: str, value: str | None, o: RuntimeTelemetryOptions) -> None:
    if value is not None:
        out[key] = _s(value, o)


def _put_p(out: dict[str, Any], key: str, value: Any, o: RuntimeTelemetryOptions) -> None:
    if value is not None:
        out[key] = _p(value, o)


def _redactable(value: Any, include: bool, o: RuntimeTelemetryOptions) -> Any:
    """The value itself when opted in, else `"[redacted]"` when it exists, else absent."""
    if value is None:
        return None
    return _p(value, o) if include else REDACTED


def _task(task: AgentTaskSpec, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _s(task.id, o), "intent": _s(task.intent, o)}
    _put_s(out, "domain", task.domain, o)
    _put(out, "inputs", _redactable(task.inputs, o.include_inputs, o))
    if task.required_knowledge is not None:
        out["requiredKnowledge"] = [_requirement(r, o) for r in task.required_knowledge]
    _put(out, "metadata", _redactable(task.metadata, o.include_metadata, o))
    return out


def _session(session: RuntimeSession, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": _s(session.id, o),
        "backend": _s(session.backend, o),
        "status": _s(session.status, o),
        "hasResumeToken": bool(session.resume_token),
        "createdAt": _s(session.created_at, o),
        "updatedAt": _s(session.updated_at, o),
    }
    _put(out, "metadata", _redactable(session.metadata, o.include_metadata, o))
    return out


def _requirement(r: KnowledgeRequirement, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _s(r.id, o)}
    if o.include_requirement_descriptions and r.sensitivity != "secret":
        out["description"] = _s(r.description, o)
    out["requiredFor"] = _strs(r.required_for, o)
    out["category"] = _s(r.category, o)
    out["acquisitionMode"] = r.acquisition_mode
    out["importance"] = r.importance
    out["freshness"] = _s(r.freshness, o)
    out["sensitivity"] = r.sensitivity
    out["confidenceNeeded"] = r.confidence_needed
    out["currentConfidence"] = r.current_confidence
    out["evidenceCount"] = len(r.evidence_ids)
    if o.include_evidence_ids:
        out["evidenceIds"] = _strs(r.evidence_ids, o)
    out["fallbackPolicy"] = r.fallback_policy
    return out


def _report(report: KnowledgeReadinessReport, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "taskId": _s(report.task_id, o),
        "readinessScore": report.readiness_score,
        "recommendedAction": report.recommended_action,
        "severity": report.severity,
        "reason": _s(report.reason, o),
        "blockingGaps": [_requirement(r, o) for r in report.blocking_gaps],
        "nonBlockingGaps": [_requirement(r, o) for r in report.non_blocking_gaps],
        "evidenceCount": len(report.bundle.evidence_ids),
    }
    if o.include_evidence_ids:
        out["evidenceIds"] = _strs(report.bundle.evidence_ids, o)
    out["missingRequirementIds"] = _strs(report.bundle.missing, o)
    return out


def _question(q: UserQuestion, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _s(q.id, o)}
    described = o.include_requirement_descriptions
    if described and q.answer_type != "credential":
        out["question"] = _s(q.question, o)
    if described:
        out["reason"] = _s(q.reason, o)
        out["impactIfUnknown"] = _s(q.impact_if_unknown, o)
    out["requirementId"] = _s(q.requirement_id, o)
    out["importance"] = q.importance
    out["answerType"] = q.answer_type
    out["optionCount"] = len(q.options) if q.options is not None else 0
    return out


def _plan(p: DataAcquisitionPlan, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    return {
        "id": _s(p.id, o),
        "requirementIds": _strs(p.requirement_ids, o),
        "mode": p.mode,
        "priority": p.priority,
        "expectedEvidenceCount": p.expected_evidence_count,
        "questionCount": len(p.questions),
    }


def _answers(answers: Mapping[str, Any], o: RuntimeTelemetryOptions) -> dict[str, Any]:
    if o.include_user_answers:
        return cast(dict[str, Any], _p({str(k): v for k, v in answers.items()}, o))
    return {_s(str(k), o): REDACTED for k in answers}


def _eval(e: ControlEvalResult, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _s(e.id, o), "passed": e.passed}
    _put(out, "score", e.score)
    out["severity"] = e.severity
    _put(out, "objective", e.objective)
    if o.include_eval_details:
        _put_s(out, "detail", e.detail, o)
        _put_p(out, "evidence", e.evidence, o)
    return out


def _step(s: ControlStep, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"index": s.index, "decisionType": s.decision.type}
    _put_s(out, "reason", s.decision.reason, o)
    payloads = o.include_control_payloads
    if payloads and s.decision.type == "continue":
        _put_p(out, "action", s.decision.action, o)
    if payloads and s.action_ok is True:
        _put_p(out, "result", s.result, o)
    _put(out, "actionOk", s.action_ok)
    _put_s(out, "actionError", s.action_error, o)
    out["durationMs"] = s.duration_ms
    out["evalsBefore"] = [_eval(e, o) for e in s.evals_before]
    out["evalsAfter"] = [_eval(e, o) for e in s.evals_after]
    out["startedAt"] = _s(s.started_at, o)
    out["endedAt"] = _s(s.ended_at, o)
    return out


def _control(c: ControlRunResult, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"pass": c.pass_, "completed": c.completed, "reason": _s(c.reason, o)}
    _put(out, "score", c.score)
    out["stepCount"] = len(c.steps)
    out["wallMs"] = c.wall_ms
    out["spentCostUsd"] = c.spent_cost_usd
    _put(out, "failureClass", c.failure_class)
    out["stoppedBy"] = c.stopped_by
    # null without a trace store, as the original
    out["runId"] = _s(c.run_id, o) if c.run_id is not None else None
    out["runtimeErrorCount"] = len(c.runtime_errors)
    out["finalEvals"] = [_eval(e, o) for e in c.final_evals]
    return out


def _shared_fields(event: Any, o: RuntimeTelemetryOptions, out: dict[str, Any]) -> bool:
    """The per-type fields both vocabularies share; False when `event` is not one of them."""
    if isinstance(event, QuestionsStartEvent | QuestionsEndEvent):
        out["questions"] = [_question(q, o) for q in event.questions]
        if isinstance(event, QuestionsEndEvent):
            out["userAnswers"] = _answers(event.user_answers, o)
    elif isinstance(event, AcquisitionStartEvent | AcquisitionEndEvent):
        out["acquisitionPlans"] = [_plan(p, o) for p in event.acquisition_plans]
        if isinstance(event, AcquisitionEndEvent):
            out["acquiredEvidenceCount"] = len(event.acquired_evidence_ids)
            if o.include_evidence_ids:
                out["acquiredEvidenceIds"] = _strs(event.acquired_evidence_ids, o)
    elif isinstance(event, TaskEndEvent):
        out["status"] = _s(event.status, o)
        out["reason"] = _s(event.reason, o)
    else:
        return False
    return True


def _agent_event(event: Any, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event.TYPE, "task": _task(event.task, o)}
    if _shared_fields(event, o, out):
        return out
    if isinstance(event, ReadinessEndEvent | ControlStartEvent):
        out["knowledge"] = _report(event.knowledge, o)
    elif isinstance(event, ControlStepEvent):
        out["step"] = _step(event.step, o)
    elif isinstance(event, ControlEndEvent):
        out["control"] = _control(event.control, o)
    return out


# The events of one stream carry the same task and session objects: their projections are
# remembered by identity (with the objects, so an id is never reused while cached) when flat,
# and handed out as copies.
_FLAT = (str, int, float, bool)
_REMEMBERED: dict[tuple[int, int], tuple[Any, RuntimeTelemetryOptions, dict[str, Any]]] = {}
_REMEMBER_AT_MOST = 256


def _remembered(
    value: Any, o: RuntimeTelemetryOptions, project: Callable[[Any, RuntimeTelemetryOptions], Any]
) -> dict[str, Any]:
    key = (id(value), id(o))
    hit = _REMEMBERED.get(key)
    if hit is not None and hit[0] is value and hit[1] is o:
        return dict(hit[2])
    out: dict[str, Any] = project(value, o)
    if all(type(v) in _FLAT for v in out.values()):
        if len(_REMEMBERED) >= _REMEMBER_AT_MOST:
            _REMEMBERED.clear()
        _REMEMBERED[key] = (value, o, dict(out))
    return out


_DELTAS = (TextDeltaEvent, ReasoningDeltaEvent)


def _stream_event(event: Any, o: RuntimeTelemetryOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event.TYPE}
    task = event.task
    if task is not None:
        out["task"] = _remembered(task, o, _task)
    session = getattr(event, "session", None)
    if session is not None:
        out["session"] = _remembered(session, o, _session)
    if event.timestamp is not None:
        out["timestamp"] = scrub_repeated_text(event.timestamp, o.scrub)
    if type(event) in _DELTAS:
        out["text"] = scrub_repeated_text(event.text, o.scrub) if o.scrub_deltas else event.text
        return out
    if _shared_fields(event, o, out):
        return out
    payloads = o.include_control_payloads
    if isinstance(event, _DELTAS):
        out["text"] = scrub_repeated_text(event.text, o.scrub) if o.scrub_deltas else event.text
    elif isinstance(event, ReadinessEndEvent):
        if event.decision is not None:
            out["decision"] = _p(event.decision, o)
        out["knowledge"] = _report(event.knowledge, o)
    elif isinstance(event, ToolCallEvent | ToolResultEvent):
        out["toolName"] = _s(event.tool_name, o)
        _put_s(out, "toolCallId", event.tool_call_id, o)
        if payloads and isinstance(event, ToolCallEvent):
            _put_p(out, "args", event.args, o)
        elif payloads and isinstance(event, ToolResultEvent):
            _put_p(out, "result", event.result, o)
    elif isinstance(event, LlmCallEvent):
        out["model"] = _s(event.model, o)
        _put(out, "tokensIn", event.tokens_in)
        _put(out, "tokensOut", event.tokens_out)
        _put(out, "costUsd", event.cost_usd)
        _put(out, "latencyMs", event.latency_ms)
        _put_s(out, "finishReason", event.finish_reason, o)
    elif isinstance(event, ArtifactEvent):
        out["artifactId"] = _s(event.artifact_id, o)
        _put_s(out, "name", event.name, o)
        _put_s(out, "mimeType", event.mime_type, o)
        if o.include_evidence_ids:
            _put_s(out, "uri", event.uri, o)
        if payloads:
            _put_p(out, "content", event.content, o)
        if o.include_metadata:
            _put_p(out, "metadata", event.metadata, o)
    elif isinstance(event, ProposalCreatedEvent):
        out["proposalId"] = _s(event.proposal_id, o)
        _put_s(out, "status", event.status, o)
        if payloads:
            out["title"] = _s(event.title, o)
            _put_p(out, "content", event.content, o)
    elif isinstance(event, BackendStartEvent | BackendEndEvent):
        out["backend"] = _s(event.backend, o)
    elif isinstance(event, BackendErrorEvent):
        out["backend"] = _s(event.backend, o)
        out["message"] = _s(event.message, o)
        out["recoverable"] = event.recoverable
        if event.error is not None:
            detail: dict[str, Any] = {"kind": _s(event.error.kind, o)}
            _put(detail, "status", event.error.status)
            out["error"] = detail
    elif isinstance(event, FinalEvent):
        out["status"] = _s(event.status, o)
        out["reason"] = _s(event.reason, o)
        if payloads:
            _put_s(out, "text", event.text, o)
        if o.include_metadata:
            _put_p(out, "metadata", event.metadata, o)
        if event.error is not None:
            error: dict[str, Any] = {
                "kind": _s(event.error.kind, o),
                "message": _s(event.error.message, o),
            }
            _put(error, "status", event.error.status)
            if payloads:
                _put_s(error, "body", event.error.body, o)
            out["error"] = error
    return out


# --- the public functions ----------------------------------------------------------------------


_EVENT_CLASSES: tuple[type[Any], ...] = (
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    ArtifactEvent,
    BackendEndEvent,
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
_STREAM_CLASSES = tuple(c for c in _EVENT_CLASSES if c.TYPE in RUNTIME_STREAM_EVENT_TYPES)
_AGENT_CLASSES = tuple(c for c in _EVENT_CLASSES if c.TYPE in AGENT_RUNTIME_EVENT_TYPES)


def _coerce(event: Any, classes: tuple[type, ...], who: str) -> Any:
    """A typed event of the vocabulary `classes` (its wire dict is parsed first)."""
    if type(event) in classes:
        return event
    if isinstance(event, Mapping | str | bytes):
        try:
            event = parse_event(event)
        except EventParseError as exc:
            raise ValidationError(f"{who}: {exc.message}") from None
    if isinstance(event, classes):
        return event
    kind = getattr(type(event), "TYPE", None)
    if isinstance(kind, str):
        raise ValidationError(f"{who}: {kind!r} is not an event of this vocabulary")
    raise ValidationError(f"{who}: expected an event, got {type(event).__name__}")


def _check(value: Any, cls: type, who: str) -> None:
    if not isinstance(value, cls):
        raise ValidationError(f"{who}: expected a {cls.__name__}, got {type(value).__name__}")


def sanitize_agent_runtime_event(
    event: AgentRuntimeEvent | Mapping[str, Any] | str | bytes,
    options: RuntimeTelemetryOptions | None = None,
) -> dict[str, Any]:
    """The telemetry-safe wire dict of a `run_agent_task` event (`{type, task}` plus the
    per-type fields of ORIGINAL §9); its wire dict or JSON text is accepted too."""
    o = _options(options, "sanitize_agent_runtime_event")
    typed = _coerce(event, _AGENT_CLASSES, "sanitize_agent_runtime_event")
    return _agent_event(typed, o)


def sanitize_runtime_stream_event(
    event: RuntimeStreamEvent | Mapping[str, Any] | str | bytes,
    options: RuntimeTelemetryOptions | None = None,
) -> dict[str, Any]:
    """The telemetry-safe wire dict of a stream event (`{type, task?, session?, timestamp}`
    plus the per-type fields of ORIGINAL §9: llm_call always visible, deltas not redacted,
    payloads opt-in); its wire dict or JSON text is accepted too."""
    o = _options(options, "sanitize_runtime_stream_event")
    typed = _coerce(event, _STREAM_CLASSES, "sanitize_runtime_stream_event")
    return _stream_event(typed, o)


def sanitize_knowledge_readiness_report(
    report: KnowledgeReadinessReport, options: RuntimeTelemetryOptions | None = None
) -> SanitizedKnowledgeReadinessReport:
    """A readiness report without what users control: score, action, severity, reason, the
    sanitized gaps, evidence counts (ids opt-in) and the missing requirement ids."""
    o = _options(options, "sanitize_knowledge_readiness_report")
    _check(report, KnowledgeReadinessReport, "sanitize_knowledge_readiness_report")
    return cast(SanitizedKnowledgeReadinessReport, _report(report, o))


def sanitize_knowledge_requirement(
    requirement: KnowledgeRequirement, options: RuntimeTelemetryOptions | None = None
) -> SanitizedKnowledgeRequirement:
    """A requirement; its description only with `include_requirement_descriptions` and never
    for a secret one, its evidence ids only with `include_evidence_ids`."""
    o = _options(options, "sanitize_knowledge_requirement")
    _check(requirement, KnowledgeRequirement, "sanitize_knowledge_requirement")
    return cast(SanitizedKnowledgeRequirement, _requirement(requirement, o))


def sanitize_task(
    task: AgentTaskSpec, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A task: id, intent, domain always; inputs and metadata as `"[redacted]"` unless opted in."""
    o = _options(options, "sanitize_task")
    _check(task, AgentTaskSpec, "sanitize_task")
    return _task(task, o)


def sanitize_runtime_session(
    session: RuntimeSession, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A session with `hasResumeToken` in place of the token (never shown)."""
    o = _options(options, "sanitize_runtime_session")
    _check(session, RuntimeSession, "sanitize_runtime_session")
    return _session(session, o)


def sanitize_user_question(
    question: UserQuestion, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A question; its text only with descriptions and never for a credential."""
    o = _options(options, "sanitize_user_question")
    _check(question, UserQuestion, "sanitize_user_question")
    return _question(question, o)


def sanitize_data_acquisition_plan(
    plan: DataAcquisitionPlan, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A plan: ids, mode, priority and counts only."""
    o = _options(options, "sanitize_data_acquisition_plan")
    _check(plan, DataAcquisitionPlan, "sanitize_data_acquisition_plan")
    return _plan(plan, o)


def sanitize_user_answers(
    answers: Mapping[str, Any], options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """The answers with `include_user_answers`, else the same keys with `"[redacted]"` values."""
    o = _options(options, "sanitize_user_answers")
    _check(answers, Mapping, "sanitize_user_answers")
    return _answers(answers, o)


def sanitize_eval_summary(
    result: ControlEvalResult, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """An eval: id, passed, score, severity, objective; detail and evidence opt-in."""
    o = _options(options, "sanitize_eval_summary")
    _check(result, ControlEvalResult, "sanitize_eval_summary")
    return _eval(result, o)


def sanitize_control_step(
    step: ControlStep, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A control step; the action and result only with `include_control_payloads`."""
    o = _options(options, "sanitize_control_step")
    _check(step, ControlStep, "sanitize_control_step")
    return _step(step, o)


def sanitize_control_run(
    control: ControlRunResult, options: RuntimeTelemetryOptions | None = None
) -> dict[str, Any]:
    """A control loop's result: outcome, counts, cost, who stopped it, the final evals."""
    o = _options(options, "sanitize_control_run")
    _check(control, ControlRunResult, "sanitize_control_run")
    return _control(control, o)
