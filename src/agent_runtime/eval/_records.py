"""The records the runtime takes from agent-eval: knowledge requirements and readiness reports,
user questions and acquisition plans, the control loop's budget, decisions, evals, steps and
result, trace events and run records. Frozen dataclasses; `to_dict()` is the original's
camelCase wire form and `from_dict()` its checking inverse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .._wire import WireRecord
from ..errors import ValidationError

__all__ = [
    "ACQUISITION_MODES",
    "EVENT_KINDS",
    "FAILURE_CLASSES",
    "FALLBACK_POLICIES",
    "IMPORTANCES",
    "RECOMMENDED_ACTIONS",
    "SENSITIVITIES",
    "AcquisitionMode",
    "ControlBudget",
    "ControlDecision",
    "ControlEvalResult",
    "ControlRunResult",
    "ControlRuntimeError",
    "ControlStep",
    "DataAcquisitionPlan",
    "EvalSeverity",
    "EventKind",
    "FailureClass",
    "FallbackPolicy",
    "Importance",
    "KnowledgeBundle",
    "KnowledgeReadinessReport",
    "KnowledgeRequirement",
    "ReadinessSeverity",
    "RecommendedAction",
    "RunRecord",
    "Sensitivity",
    "StoppedBy",
    "TraceEvent",
    "UserQuestion",
]

Importance: TypeAlias = Literal["blocking", "high", "medium", "low"]
IMPORTANCES: tuple[str, ...] = ("blocking", "high", "medium", "low")
AcquisitionMode: TypeAlias = Literal[
    "ask_user",
    "query_connectors",
    "inspect_repo",
    "run_command",
    "collect_web_data",
    "infer_low_confidence",
    "not_available",
]
ACQUISITION_MODES: tuple[str, ...] = (
    "ask_user",
    "query_connectors",
    "inspect_repo",
    "run_command",
    "collect_web_data",
    "infer_low_confidence",
    "not_available",
)
FallbackPolicy: TypeAlias = Literal["block", "ask", "continue_with_caveat", "infer"]
FALLBACK_POLICIES: tuple[str, ...] = ("block", "ask", "continue_with_caveat", "infer")
Sensitivity: TypeAlias = Literal["public", "internal", "confidential", "secret"]
SENSITIVITIES: tuple[str, ...] = ("public", "internal", "confidential", "secret")
RecommendedAction: TypeAlias = Literal[
    "run_agent",
    "ask_user",
    "query_connectors",
    "inspect_repo",
    "collect_web_data",
    "abort_or_rescope",
    "build_domain_wiki",
    "continue_with_caveat",
]
RECOMMENDED_ACTIONS: tuple[str, ...] = (
    "run_agent",
    "ask_user",
    "query_connectors",
    "inspect_repo",
    "collect_web_data",
    "abort_or_rescope",
    "build_domain_wiki",
    "continue_with_caveat",
)
ReadinessSeverity: TypeAlias = Literal["critical", "warning", "info"]
EvalSeverity: TypeAlias = Literal["critical", "error", "warning", "info"]
AnswerType: TypeAlias = Literal["free_text", "credential", "choice"]
StoppedBy: TypeAlias = Literal["policy", "stop-policy", "budget", "abort", "runtime-error"]
FailureClass: TypeAlias = Literal[
    "timeout", "budget_exceeded", "runtime_error", "eval_failed", "knowledge_blocked"
]
#: agent-eval's canonical failure taxonomy (what `RunRecord.failure_class` may hold)
FAILURE_CLASSES: tuple[str, ...] = (
    "timeout",
    "budget_exceeded",
    "runtime_error",
    "eval_failed",
    "knowledge_blocked",
)
EventKind: TypeAlias = Literal[
    "log",
    "error",
    "budget_decrement",
    "budget_breach",
    "state_mutation",
    "policy_violation",
    "redaction_applied",
    "custom",
]
EVENT_KINDS: tuple[str, ...] = (
    "log",
    "error",
    "budget_decrement",
    "budget_breach",
    "state_mutation",
    "policy_violation",
    "redaction_applied",
    "custom",
)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ValidationError(message)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _strs(owner: Any, name: str, where: str) -> None:
    """Coerce a list of strings to a tuple in place; refuse anything else."""
    v = getattr(owner, name)
    _need(
        not isinstance(v, str | bytes) and hasattr(v, "__iter__"),
        f"{where}.{name} must be a list of strings",
    )
    t = tuple(v)
    _need(all(isinstance(x, str) for x in t), f"{where}.{name} must be a list of strings")
    object.__setattr__(owner, name, t)


def _records(owner: Any, name: str, cls: type, where: str) -> None:
    v = getattr(owner, name)
    _need(
        not isinstance(v, str | bytes | Mapping) and hasattr(v, "__iter__"),
        f"{where}.{name} must be a list of {cls.__name__}",
    )
    t = tuple(v)
    _need(all(isinstance(x, cls) for x in t), f"{where}.{name} must be a list of {cls.__name__}")
    object.__setattr__(owner, name, t)


def _one_of(v: Any, allowed: tuple[str, ...], where: str) -> None:
    _need(isinstance(v, str) and v in allowed, f"{where} must be one of {', '.join(allowed)}")


def _opt_mapping(owner: Any, name: str, where: str) -> None:
    v = getattr(owner, name)
    if v is not None:
        _need(isinstance(v, Mapping), f"{where}.{name} must be a mapping")
        object.__setattr__(owner, name, dict(v))


# --- knowledge ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnowledgeRequirement(WireRecord):
    """One thing a task needs to know, how badly, how sure we must be, and how to get it."""

    id: str
    description: str
    required_for: tuple[str, ...] = ()
    category: str = "domain"
    acquisition_mode: AcquisitionMode = "ask_user"
    importance: Importance = "medium"
    freshness: str = "static"
    sensitivity: Sensitivity = "internal"
    confidence_needed: float = 0.7
    current_confidence: float = 0.0
    evidence_ids: tuple[str, ...] = ()
    fallback_policy: FallbackPolicy = "ask"
    valid_until: str | None = None

    def __post_init__(self) -> None:
        w = "KnowledgeRequirement"
        _need(_is_str(self.id) and bool(self.id), f"{w}.id must be a non-empty string")
        _need(_is_str(self.description), f"{w}.description must be a string")
        _strs(self, "required_for", w)
        _strs(self, "evidence_ids", w)
        _need(_is_str(self.category), f"{w}.category must be a string")
        _need(_is_str(self.freshness), f"{w}.freshness must be a string")
        _one_of(self.acquisition_mode, ACQUISITION_MODES, f"{w}.acquisition_mode")
        _one_of(self.importance, IMPORTANCES, f"{w}.importance")
        _one_of(self.sensitivity, SENSITIVITIES, f"{w}.sensitivity")
        _one_of(self.fallback_policy, FALLBACK_POLICIES, f"{w}.fallback_policy")
        for name in ("confidence_needed", "current_confidence"):
            _need(_is_num(getattr(self, name)), f"{w}.{name} must be a finite number")
        _need(
            self.valid_until is None or _is_str(self.valid_until),
            f"{w}.valid_until must be an ISO string or None",
        )


@dataclass(frozen=True, slots=True)
class KnowledgeBundle(WireRecord):
    """What the report was computed from: the requirements, every evidence id they cite, and
    the ids of the requirements found missing."""

    requirements: tuple[KnowledgeRequirement, ...] = ()
    evidence_ids: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _records(self, "requirements", KnowledgeRequirement, "KnowledgeBundle")
        _strs(self, "evidence_ids", "KnowledgeBundle")
        _strs(self, "missing", "KnowledgeBundle")


@dataclass(frozen=True, slots=True)
class KnowledgeReadinessReport(WireRecord):
    """How ready a task is to run: a weighted score in [0, 1], the gaps (blocking first), the
    severity, one of three fixed reason sentences and the recommended next action."""

    task_id: str
    readiness_score: float
    recommended_action: RecommendedAction
    severity: ReadinessSeverity
    reason: str
    blocking_gaps: tuple[KnowledgeRequirement, ...] = ()
    non_blocking_gaps: tuple[KnowledgeRequirement, ...] = ()
    bundle: KnowledgeBundle = field(default_factory=KnowledgeBundle)
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        w = "KnowledgeReadinessReport"
        _need(_is_str(self.task_id), f"{w}.task_id must be a string")
        _need(
            _is_num(self.readiness_score) and 0 <= self.readiness_score <= 1,
            f"{w}.readiness_score must be a number in [0, 1]",
        )
        _one_of(self.recommended_action, RECOMMENDED_ACTIONS, f"{w}.recommended_action")
        _one_of(self.severity, ("critical", "warning", "info"), f"{w}.severity")
        _need(_is_str(self.reason), f"{w}.reason must be a string")
        _records(self, "blocking_gaps", KnowledgeRequirement, w)
        _records(self, "non_blocking_gaps", KnowledgeRequirement, w)
        _need(isinstance(self.bundle, KnowledgeBundle), f"{w}.bundle must be a KnowledgeBundle")
        _opt_mapping(self, "metadata", w)

    @property
    def blocking_gap_ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.blocking_gaps)

    @property
    def non_blocking_gap_ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.non_blocking_gaps)


@dataclass(frozen=True, slots=True)
class UserQuestion(WireRecord):
    """A question for the user that would close one knowledge gap."""

    id: str
    requirement_id: str
    question: str
    reason: str
    importance: Importance
    answer_type: AnswerType = "free_text"
    impact_if_unknown: str = ""
    options: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        w = "UserQuestion"
        for name in ("id", "requirement_id", "question", "reason", "impact_if_unknown"):
            _need(_is_str(getattr(self, name)), f"{w}.{name} must be a string")
        _one_of(self.importance, IMPORTANCES, f"{w}.importance")
        _one_of(self.answer_type, ("free_text", "credential", "choice"), f"{w}.answer_type")
        if self.options is not None:
            _strs(self, "options", w)


@dataclass(frozen=True, slots=True)
class DataAcquisitionPlan(WireRecord):
    """How to acquire the evidence for the gaps that share one acquisition mode."""

    id: str
    requirement_ids: tuple[str, ...]
    mode: AcquisitionMode
    priority: Importance
    description: str = ""
    expected_evidence_count: int = 0
    questions: tuple[UserQuestion, ...] = ()

    def __post_init__(self) -> None:
        w = "DataAcquisitionPlan"
        _need(_is_str(self.id), f"{w}.id must be a string")
        _strs(self, "requirement_ids", w)
        _one_of(self.mode, ACQUISITION_MODES, f"{w}.mode")
        _one_of(self.priority, IMPORTANCES, f"{w}.priority")
        _need(_is_str(self.description), f"{w}.description must be a string")
        _need(
            type(self.expected_evidence_count) is int and self.expected_evidence_count >= 0,
            f"{w}.expected_evidence_count must be a non-negative integer",
        )
        _records(self, "questions", UserQuestion, w)


# --- the control loop --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlBudget(WireRecord):
    """Limits of one control loop: steps, wall time and (optionally) spend in USD."""

    max_steps: int = 8
    max_wall_ms: float = 300_000
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        _need(
            type(self.max_steps) is int and self.max_steps >= 0,
            "ControlBudget.max_steps must be a non-negative integer",
        )
        _need(
            _is_num(self.max_wall_ms) and self.max_wall_ms > 0,
            "ControlBudget.max_wall_ms must be a positive number",
        )
        _need(
            self.max_cost_usd is None or (_is_num(self.max_cost_usd) and self.max_cost_usd >= 0),
            "ControlBudget.max_cost_usd must be a non-negative number or None",
        )


@dataclass(frozen=True, slots=True)
class ControlDecision(WireRecord):
    """What `decide` chose: `continue` with an action, or `stop` with pass/score/reason."""

    type: Literal["continue", "stop"]
    action: Any = None
    reason: str | None = None
    pass_: bool | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        _one_of(self.type, ("continue", "stop"), "ControlDecision.type")
        _need(self.reason is None or _is_str(self.reason), "ControlDecision.reason: a string")
        _need(self.pass_ is None or type(self.pass_) is bool, "ControlDecision.pass_: a bool")
        _need(self.score is None or _is_num(self.score), "ControlDecision.score: a number")

    @classmethod
    def continue_(cls, action: Any, reason: str | None = None) -> ControlDecision:
        return cls(type="continue", action=action, reason=reason)

    @classmethod
    def stop(
        cls, *, pass_: bool = False, reason: str | None = None, score: float | None = None
    ) -> ControlDecision:
        return cls(type="stop", pass_=pass_, reason=reason, score=score)


@dataclass(frozen=True, slots=True)
class ControlEvalResult(WireRecord):
    """One evaluation of the state: passed or not, how badly (`severity`), and why."""

    id: str
    passed: bool
    severity: EvalSeverity = "info"
    score: float | None = None
    objective: bool | None = None
    detail: str | None = None
    evidence: Any = None

    def __post_init__(self) -> None:
        _need(_is_str(self.id), "ControlEvalResult.id must be a string")
        _need(type(self.passed) is bool, "ControlEvalResult.passed must be a bool")
        _one_of(self.severity, ("critical", "error", "warning", "info"), "ControlEvalResult")
        _need(self.score is None or _is_num(self.score), "ControlEvalResult.score: a number")
        _need(self.detail is None or _is_str(self.detail), "ControlEvalResult.detail: a string")

    @property
    def blocking(self) -> bool:
        """A failed eval of severity critical or error blocks the default stop policy."""
        return not self.passed and self.severity in ("critical", "error")


@dataclass(frozen=True, slots=True)
class ControlStep(WireRecord):
    """One turn of the loop: the decision, the action's outcome, the evals around it."""

    index: int
    decision: ControlDecision
    evals_before: tuple[ControlEvalResult, ...]
    evals_after: tuple[ControlEvalResult, ...]
    started_at: str
    ended_at: str
    duration_ms: float
    action_ok: bool | None = None
    result: Any = None
    action_error: str | None = None
    cost_usd: float | None = None

    def __post_init__(self) -> None:
        _need(type(self.index) is int and self.index >= 0, "ControlStep.index: an int >= 0")
        _need(isinstance(self.decision, ControlDecision), "ControlStep.decision")
        _records(self, "evals_before", ControlEvalResult, "ControlStep")
        _records(self, "evals_after", ControlEvalResult, "ControlStep")


@dataclass(frozen=True, slots=True)
class ControlRuntimeError(WireRecord):
    """An exception the loop caught: the phase it came from and its message."""

    phase: str
    message: str
    step_index: int | None = None


@dataclass(frozen=True, slots=True)
class ControlRunResult(WireRecord):
    """How a control loop ended: pass/completed, why, who stopped it, what it cost."""

    intent: str
    pass_: bool
    completed: bool
    reason: str
    stopped_by: StoppedBy
    steps: tuple[ControlStep, ...] = ()
    final_evals: tuple[ControlEvalResult, ...] = ()
    wall_ms: float = 0.0
    spent_cost_usd: float = 0.0
    score: float | None = None
    final_state: Any = None
    run_id: str | None = field(default=None, metadata={"wire": "runId"})
    failure_class: FailureClass | None = None
    runtime_errors: tuple[ControlRuntimeError, ...] = ()

    def __post_init__(self) -> None:
        _records(self, "steps", ControlStep, "ControlRunResult")
        _records(self, "final_evals", ControlEvalResult, "ControlRunResult")
        _records(self, "runtime_errors", ControlRuntimeError, "ControlRunResult")
        _one_of(
            self.stopped_by,
            ("policy", "stop-policy", "budget", "abort", "runtime-error"),
            "ControlRunResult.stopped_by",
        )

    def to_dict(self) -> dict[str, Any]:
        out = WireRecord.to_dict(self)
        out.setdefault("runId", None)  # null without a store, as the original
        return out


# --- traces and run records --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceEvent(WireRecord):
    """agent-eval's trace event: ids, a kind, an epoch-ms timestamp and a JSON payload."""

    event_id: str
    run_id: str
    span_id: str
    kind: EventKind
    timestamp: int
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _one_of(self.kind, EVENT_KINDS, "TraceEvent.kind")
        _need(type(self.timestamp) is int, "TraceEvent.timestamp must be epoch milliseconds")


@dataclass(frozen=True, slots=True)
class RunRecord(WireRecord):
    """agent-eval's record of one evaluated run (what `project_run_records` returns)."""

    run_id: str
    scenario_id: str | None = None
    project_id: str | None = None
    variant_id: str | None = None
    intent: str | None = None
    pass_: bool | None = None
    score: float | None = None
    failure_class: str | None = None
    wall_ms: float | None = None
    cost_usd: float | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _need(_is_str(self.run_id), "RunRecord.run_id must be a string")
        _opt_mapping(self, "metadata", "RunRecord")
