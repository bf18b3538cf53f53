"""Knowledge readiness: what a task needs to know, what is known, and whether it may start.

A task declares `KnowledgeRequirement`s; an `AgentKnowledgeProvider` reports what is available;
`decide_knowledge_readiness` turns both into a decision the runner obeys before any model call,
so a task never runs on guesses when it could have asked the user or fetched the data first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from .errors import ConfigurationError, EventParseError
from .jsoncanon import ensure_json

if TYPE_CHECKING:
    from .types import AgentTaskSpec

__all__ = [
    "READINESS_OUTCOMES",
    "AgentKnowledgeProvider",
    "DataAcquisitionPlan",
    "DataAcquisitionStep",
    "KnowledgeReadinessDecision",
    "KnowledgeReadinessOutcome",
    "KnowledgeReadinessReport",
    "KnowledgeRequirement",
    "KnowledgeSource",
    "UserQuestion",
    "decide_knowledge_readiness",
]

KnowledgeSource = Literal["user", "data", "either"]
KnowledgeReadinessOutcome = Literal["ready", "ask_user", "acquire_data", "blocked"]
READINESS_OUTCOMES: frozenset[str] = frozenset(("ready", "ask_user", "acquire_data", "blocked"))
_SOURCES: frozenset[str] = frozenset(("user", "data", "either"))


def _need_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if type(value) is not str:
        raise EventParseError(f"{where}.{key} must be a string, got {type(value).__name__}")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and type(value) is not str:
        raise EventParseError(f"{where}.{key} must be a string or null")
    return value


def _str_tuple(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list | tuple) or any(type(v) is not str for v in value):
        raise EventParseError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _need_bool(data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if type(value) is not bool:
        raise EventParseError(f"{where}.{key} must be a boolean")
    return value


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise EventParseError(f"{where} must be an object, got {type(data).__name__}")
    return data


@dataclass(frozen=True, slots=True)
class KnowledgeRequirement:
    """One thing a task must (or would like to) know before it runs.

    `source` says who can supply it: the user (`question` is asked), data (`data_source` is
    queried), or either (data first, the user when the source is unavailable).
    """

    key: str
    description: str
    required: bool = True
    source: KnowledgeSource = "either"
    question: str | None = None
    data_source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigurationError("KnowledgeRequirement.key must be a non-empty string")
        if not isinstance(self.description, str):
            raise ConfigurationError("KnowledgeRequirement.description must be a string")
        if not isinstance(self.source, str) or self.source not in _SOURCES:
            raise ConfigurationError(
                f"KnowledgeRequirement.source must be one of {sorted(_SOURCES)}, "
                f"got {self.source!r}"
            )
        if not isinstance(self.required, bool):
            raise ConfigurationError("KnowledgeRequirement.required must be a boolean")
        for name in ("question", "data_source"):
            if not isinstance(getattr(self, name), str | None):
                raise ConfigurationError(f"KnowledgeRequirement.{name} must be a string or None")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "description": self.description,
            "required": self.required,
            "source": self.source,
            "question": self.question,
            "data_source": self.data_source,
        }

    @classmethod
    def from_dict(cls, data: Any) -> KnowledgeRequirement:
        d = _mapping(data, "requirement")
        source = d.get("source", "either")
        if type(source) is not str or source not in _SOURCES:
            raise EventParseError(f"requirement.source must be one of {sorted(_SOURCES)}")
        key = _need_str(d, "key", "requirement")
        if not key:
            raise EventParseError("requirement.key must not be empty")
        return cls(
            key=key,
            description=_need_str(d, "description", "requirement"),
            required=_need_bool(d, "required", "requirement", True),
            source=cast(KnowledgeSource, source),
            question=_opt_str(d, "question", "requirement"),
            data_source=_opt_str(d, "data_source", "requirement"),
        )


@dataclass(frozen=True, slots=True)
class KnowledgeReadinessReport:
    """What a knowledge provider found: the requirement keys it can satisfy, the data sources it
    could not reach, free-form notes, and `internal` details that never leave the process."""

    available: tuple[str, ...] = ()
    unavailable_sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    provider: str | None = None
    internal: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("available", "unavailable_sources", "notes"):
            value = getattr(self, name)
            if (
                isinstance(value, str)
                or not isinstance(value, Iterable)
                or not all(isinstance(v, str) for v in value)
            ):
                raise ConfigurationError(f"KnowledgeReadinessReport.{name} must hold strings")
            object.__setattr__(self, name, tuple(value))
        if not isinstance(self.provider, str | None):
            raise ConfigurationError("KnowledgeReadinessReport.provider must be a string or None")
        if not isinstance(self.internal, Mapping):
            raise ConfigurationError("KnowledgeReadinessReport.internal must be a mapping")
        ensure_json(dict(self.internal), root="report.internal")

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": list(self.available),
            "unavailable_sources": list(self.unavailable_sources),
            "notes": list(self.notes),
            "provider": self.provider,
            "internal": dict(self.internal),
        }

    @classmethod
    def from_dict(cls, data: Any) -> KnowledgeReadinessReport:
        d = _mapping(data, "report")
        internal = d.get("internal", {})
        if not isinstance(internal, Mapping):
            raise EventParseError("report.internal must be an object")
        return cls(
            available=_str_tuple(d, "available", "report"),
            unavailable_sources=_str_tuple(d, "unavailable_sources", "report"),
            notes=_str_tuple(d, "notes", "report"),
            provider=_opt_str(d, "provider", "report"),
            internal=dict(internal),
        )


@dataclass(frozen=True, slots=True)
class UserQuestion:
    """A question for the user that would satisfy one requirement."""

    requirement_key: str
    question: str
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement_key": self.requirement_key,
            "question": self.question,
            "required": self.required,
        }

    @classmethod
    def from_dict(cls, data: Any) -> UserQuestion:
        d = _mapping(data, "question")
        return cls(
            requirement_key=_need_str(d, "requirement_key", "question"),
            question=_need_str(d, "question", "question"),
            required=_need_bool(d, "required", "question", True),
        )


@dataclass(frozen=True, slots=True)
class DataAcquisitionStep:
    """Fetch one requirement from one data source."""

    requirement_key: str
    source: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "requirement_key": self.requirement_key,
            "source": self.source,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DataAcquisitionStep:
        d = _mapping(data, "step")
        return cls(
            requirement_key=_need_str(d, "requirement_key", "step"),
            source=_need_str(d, "source", "step"),
            description=_need_str(d, "description", "step"),
        )


@dataclass(frozen=True, slots=True)
class DataAcquisitionPlan:
    """The data to fetch before the task can run, in requirement order."""

    steps: tuple[DataAcquisitionStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: Any) -> DataAcquisitionPlan:
        d = _mapping(data, "plan")
        steps = d.get("steps", [])
        if not isinstance(steps, list | tuple):
            raise EventParseError("plan.steps must be a list")
        return cls(steps=tuple(DataAcquisitionStep.from_dict(s) for s in steps))


@dataclass(frozen=True, slots=True)
class KnowledgeReadinessDecision:
    """Whether a task may run: `ready`, or `ask_user` / `acquire_data` / `blocked` with reasons,
    the questions to ask and the data-acquisition plan."""

    outcome: KnowledgeReadinessOutcome
    reasons: tuple[str, ...] = ()
    questions: tuple[UserQuestion, ...] = ()
    acquisition_plan: DataAcquisitionPlan | None = None
    satisfied: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.outcome == "ready"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "questions": [q.to_dict() for q in self.questions],
            "acquisition_plan": (
                self.acquisition_plan.to_dict() if self.acquisition_plan is not None else None
            ),
            "satisfied": list(self.satisfied),
            "missing": list(self.missing),
        }

    @classmethod
    def from_dict(cls, data: Any) -> KnowledgeReadinessDecision:
        d = _mapping(data, "decision")
        outcome = d.get("outcome")
        if type(outcome) is not str or outcome not in READINESS_OUTCOMES:
            raise EventParseError(f"decision.outcome must be one of {sorted(READINESS_OUTCOMES)}")
        questions = d.get("questions", [])
        if not isinstance(questions, list | tuple):
            raise EventParseError("decision.questions must be a list")
        plan = d.get("acquisition_plan")
        return cls(
            outcome=cast(KnowledgeReadinessOutcome, outcome),
            reasons=_str_tuple(d, "reasons", "decision"),
            questions=tuple(UserQuestion.from_dict(q) for q in questions),
            acquisition_plan=DataAcquisitionPlan.from_dict(plan) if plan is not None else None,
            satisfied=_str_tuple(d, "satisfied", "decision"),
            missing=_str_tuple(d, "missing", "decision"),
        )


@runtime_checkable
class AgentKnowledgeProvider(Protocol):
    """Produces a readiness report for a task (looks up profiles, documents, prior answers)."""

    async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport: ...


def decide_knowledge_readiness(
    report: KnowledgeReadinessReport | None,
    requirements: Iterable[KnowledgeRequirement],
) -> KnowledgeReadinessDecision:
    """Decide whether a task may run.

    Each missing requirement becomes a data-acquisition step (when it names a data source the
    report did not mark unavailable and its source allows data), else a question for the user
    (when its source allows the user), else a blocker. Outcome precedence: blocked > ask_user >
    acquire_data > ready. Missing optional requirements are listed but never hold the task.
    """
    if report is not None and not isinstance(report, KnowledgeReadinessReport):
        raise ConfigurationError("report must be a KnowledgeReadinessReport or None")
    if not isinstance(requirements, Iterable) or isinstance(requirements, str):
        raise ConfigurationError("requirements must be KnowledgeRequirement instances")
    reqs: Sequence[KnowledgeRequirement] = tuple(requirements)
    seen: set[str] = set()
    for req in reqs:
        if not isinstance(req, KnowledgeRequirement):
            raise ConfigurationError("requirements must be KnowledgeRequirement instances")
        if req.key in seen:
            raise ConfigurationError(f"duplicate knowledge requirement key {req.key!r}")
        seen.add(req.key)

    available = frozenset(report.available) if report is not None else frozenset()
    broken = frozenset(report.unavailable_sources) if report is not None else frozenset()
    satisfied: list[str] = []
    missing: list[str] = []
    reasons: list[str] = []
    questions: list[UserQuestion] = []
    steps: list[DataAcquisitionStep] = []
    blocked = False

    for req in reqs:
        if req.key in available:
            satisfied.append(req.key)
            continue
        missing.append(req.key)
        if not req.required:
            reasons.append(f"optional {req.key!r} is missing; proceeding without it")
            continue
        data_ok = req.source in ("data", "either") and req.data_source is not None
        if data_ok and req.data_source not in broken:
            steps.append(
                DataAcquisitionStep(
                    requirement_key=req.key,
                    source=req.data_source or "",
                    description=req.description,
                )
            )
            reasons.append(f"{req.key!r} must be fetched from {req.data_source!r}")
        elif req.source in ("user", "either"):
            text = req.question or f"Please provide: {req.description or req.key}"
            questions.append(UserQuestion(requirement_key=req.key, question=text))
            if data_ok:
                reasons.append(
                    f"{req.key!r} source {req.data_source!r} is unavailable; asking the user"
                )
            else:
                reasons.append(f"{req.key!r} must come from the user")
        else:
            blocked = True
            why = (
                f"data source {req.data_source!r} is unavailable"
                if req.data_source is not None
                else "no data source is named"
            )
            reasons.append(f"{req.key!r} cannot be obtained: {why}")

    outcome: KnowledgeReadinessOutcome
    if blocked:
        outcome = "blocked"
    elif questions:
        outcome = "ask_user"
    elif steps:
        outcome = "acquire_data"
    else:
        outcome = "ready"
    return KnowledgeReadinessDecision(
        outcome=outcome,
        reasons=tuple(reasons),
        questions=tuple(questions),
        acquisition_plan=DataAcquisitionPlan(steps=tuple(steps)) if steps else None,
        satisfied=tuple(satisfied),
        missing=tuple(missing),
    )
