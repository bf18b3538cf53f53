"""Task, backend, session and event data types (ORIGINAL §2 to §3).

Records are frozen dataclasses with snake_case fields; `to_dict()` is the original's wire form
(camelCase keys, the original `type` strings, optional keys left out when None) and
`parse_event()` turns that form back into the typed event, refusing anything else with
`EventParseError`. One class stands for each `type` string: the lifecycle events that
`run_agent_task` emits (no timestamp) and those `run_agent_task_stream` yields (always a
timestamp) are the same classes. The vocabulary is documented in docs/events.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

import orjson

from ._wire import WireRecord
from .errors import DurableValueError, EventParseError, ValidationError
from .eval._records import (
    ControlBudget,
    ControlEvalResult,
    ControlRunResult,
    ControlStep,
    DataAcquisitionPlan,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    ReadinessSeverity,
    RecommendedAction,
    RunRecord,
    UserQuestion,
)
from .jsoncanon import ensure_json

__all__ = [
    "AGENT_RUNTIME_EVENT_TYPES",
    "AGENT_TASK_STATUSES",
    "RUNTIME_STREAM_EVENT_TYPES",
    "AbortController",
    "AbortSignal",
    "AcquisitionEndEvent",
    "AcquisitionStartEvent",
    "AgentAdapter",
    "AgentBackendContext",
    "AgentBackendInput",
    "AgentKnowledgeProvider",
    "AgentMessage",
    "AgentRuntimeEvent",
    "AgentTaskContext",
    "AgentTaskRunResult",
    "AgentTaskRunSummary",
    "AgentTaskSpec",
    "AgentTaskStatus",
    "ArtifactEvent",
    "BackendEndEvent",
    "BackendErrorDetail",
    "BackendErrorEvent",
    "BackendStartEvent",
    "ControlEndEvent",
    "ControlStartEvent",
    "ControlStepEvent",
    "FinalEvent",
    "KnowledgeReadinessDecision",
    "LlmCallEvent",
    "ProposalCreatedEvent",
    "QuestionsEndEvent",
    "QuestionsStartEvent",
    "ReadinessEndEvent",
    "ReadinessStartEvent",
    "ReasoningDeltaEvent",
    "RuntimeSession",
    "RuntimeSessionStatus",
    "RuntimeStreamEvent",
    "SessionCreatedEvent",
    "SessionResumedEvent",
    "TaskEndEvent",
    "TaskStartEvent",
    "TextDeltaEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "now_iso",
    "parse_event",
    "parse_runtime_stream_event",
]

AgentTaskStatus: TypeAlias = Literal["completed", "blocked", "failed", "aborted"]
AGENT_TASK_STATUSES: tuple[str, ...] = ("completed", "blocked", "failed", "aborted")
RuntimeSessionStatus: TypeAlias = Literal["active", "completed", "failed", "aborted"]
ReadinessStatus: TypeAlias = Literal["ready", "blocked", "caveat"]
MessageRole: TypeAlias = Literal["system", "user", "assistant", "tool"]
_ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


_iso_cache: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC time as the original writes it (`2026-12-01T08:14:37.123Z`).

    Formatted once per millisecond: backends stamp every delta, and formatting costs more
    than the event itself (the cache is one tuple, swapped atomically)."""
    global _iso_cache
    ms = time.time_ns() // 1_000_000
    cached_ms, iso = _iso_cache
    if ms != cached_ms:
        seconds, frac = divmod(ms, 1000)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:03d}Z"
        _iso_cache = (ms, iso)
    return iso


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ValidationError(message)


def _opt_json_mapping(owner: Any, name: str, where: str) -> None:
    v = getattr(owner, name)
    if v is not None:
        _need(isinstance(v, Mapping), f"{where}.{name} must be a mapping or None")
        object.__setattr__(owner, name, dict(v))


# --- tasks, sessions, backend inputs -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentTaskSpec(WireRecord):
    """A task: `id`, a fixed `intent` (shown unredacted in telemetry, so never user input),
    an optional `domain`, the user's `inputs`, its knowledge requirements and budget."""

    id: str
    intent: str
    domain: str | None = None
    inputs: Mapping[str, Any] | None = None
    required_knowledge: tuple[KnowledgeRequirement, ...] | None = None
    budget: ControlBudget | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.id, str) and bool(self.id), "AgentTaskSpec.id: a non-empty string")
        _need(isinstance(self.intent, str), "AgentTaskSpec.intent must be a string")
        _need(self.domain is None or isinstance(self.domain, str), "AgentTaskSpec.domain: str")
        _opt_json_mapping(self, "inputs", "AgentTaskSpec")
        _opt_json_mapping(self, "metadata", "AgentTaskSpec")
        if self.required_knowledge is not None:
            reqs = self.required_knowledge
            _need(
                not isinstance(reqs, str | bytes | Mapping) and hasattr(reqs, "__iter__"),
                "AgentTaskSpec.required_knowledge must be a list of KnowledgeRequirement",
            )
            t = tuple(reqs)
            _need(
                all(isinstance(r, KnowledgeRequirement) for r in t),
                "AgentTaskSpec.required_knowledge must be a list of KnowledgeRequirement",
            )
            object.__setattr__(self, "required_knowledge", t)
        _need(
            self.budget is None or isinstance(self.budget, ControlBudget),
            "AgentTaskSpec.budget must be a ControlBudget",
        )


@dataclass(frozen=True, slots=True)
class RuntimeSession(WireRecord):
    """A backend session: which backend kind owns it, its status, an opaque resume token."""

    id: str
    backend: str
    status: RuntimeSessionStatus
    created_at: str
    updated_at: str
    resume_token: str | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.id, str) and bool(self.id), "RuntimeSession.id: a non-empty str")
        _need(isinstance(self.backend, str), "RuntimeSession.backend must be a string")
        _need(
            self.status in ("active", "completed", "failed", "aborted"),
            "RuntimeSession.status must be active, completed, failed or aborted",
        )
        for name in ("created_at", "updated_at"):
            _need(isinstance(getattr(self, name), str), f"RuntimeSession.{name}: an ISO string")
        _need(
            self.resume_token is None or isinstance(self.resume_token, str),
            "RuntimeSession.resume_token must be a string or None",
        )
        _opt_json_mapping(self, "metadata", "RuntimeSession")

    @classmethod
    def new(
        cls,
        backend: str,
        requested_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RuntimeSession:
        """A fresh `active` session (the original's `newRuntimeSession`): the requested id, or
        a random UUID when it is empty or missing."""
        now = now_iso()
        return cls(
            id=requested_id or str(uuid.uuid4()),
            backend=backend,
            status="active",
            created_at=now,
            updated_at=now,
            metadata=metadata,
        )

    def touched(self, **changes: Any) -> RuntimeSession:
        """A copy with `updated_at` = now (the original's `touchSession`) and `changes`."""
        data: dict[str, Any] = {
            "id": self.id,
            "backend": self.backend,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": now_iso(),
            "resume_token": self.resume_token,
            "metadata": self.metadata,
        }
        data.update(changes)
        return RuntimeSession(**data)


@dataclass(frozen=True, slots=True)
class AgentMessage(WireRecord):
    """One message of the conversation a backend receives (`{role, content}` on the wire)."""

    role: MessageRole
    content: str
    name: str | None = None
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        _need(self.role in _ROLES, f"message role must be one of {', '.join(_ROLES)}")
        _need(isinstance(self.content, str), "message content must be a string")


class AbortSignal:
    """Cancellation a caller hands to a run: `aborted`, `reason`, `await wait()`."""

    __slots__ = ("_event", "_listeners", "_reason", "aborted")

    def __init__(self) -> None:
        self.aborted = False
        self._reason: Any = None
        self._event: asyncio.Event | None = None
        self._listeners: list[Callable[[], None]] = []

    @property
    def reason(self) -> Any:
        return self._reason

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` once on abort (at once when already aborted); returns a remover."""
        if self.aborted:
            callback()
            return lambda: None
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    async def wait(self) -> Any:
        """Wait until aborted; returns the reason."""
        if not self.aborted:
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()
        return self._reason

    def throw_if_aborted(self) -> None:
        """Raise the reason (an exception) or `asyncio.CancelledError` when aborted."""
        if self.aborted:
            if isinstance(self._reason, BaseException):
                raise self._reason
            raise asyncio.CancelledError(str(self._reason) if self._reason else "aborted")

    def _abort(self, reason: Any) -> None:
        if self.aborted:
            return
        self.aborted = True
        self._reason = reason if reason is not None else "aborted"
        if self._event is not None:
            self._event.set()
        listeners, self._listeners = self._listeners, []
        for callback in listeners:
            callback()


class AbortController:
    """Owns an `AbortSignal`: `abort(reason)` trips it (once; later calls do nothing)."""

    __slots__ = ("signal",)

    def __init__(self) -> None:
        self.signal = AbortSignal()

    def abort(self, reason: Any = None) -> None:
        self.signal._abort(reason)


@dataclass(frozen=True, slots=True)
class AgentBackendInput:
    """What a backend receives: the task, an optional message or messages, the inputs."""

    task: AgentTaskSpec
    message: str | None = None
    messages: tuple[AgentMessage, ...] | None = None
    inputs: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.task, AgentTaskSpec), "AgentBackendInput.task: an AgentTaskSpec")
        _need(self.message is None or isinstance(self.message, str), "message must be a str")
        if self.messages is not None:
            out = []
            for m in self.messages:
                if isinstance(m, Mapping):
                    m = AgentMessage(**{k: m[k] for k in m if k in ("role", "content", "name")})
                _need(isinstance(m, AgentMessage), "messages must be AgentMessage or mappings")
                out.append(m)
            object.__setattr__(self, "messages", tuple(out))
        _opt_json_mapping(self, "inputs", "AgentBackendInput")

    @property
    def prompt(self) -> str:
        """`message`, else the last message's content, else the task's intent."""
        if self.message is not None:
            return self.message
        if self.messages:
            return self.messages[-1].content
        return self.task.intent


@dataclass(frozen=True, slots=True)
class AgentBackendContext:
    """What a backend's `start`/`resume`/`stream` see: the task, the readiness report, the
    session (None in `start`), the caller's abort signal and the requested session id."""

    task: AgentTaskSpec
    knowledge: KnowledgeReadinessReport | None = None
    session: RuntimeSession | None = None
    signal: AbortSignal | None = None
    requested_session_id: str | None = None

    @property
    def aborted(self) -> bool:
        return self.signal is not None and self.signal.aborted


# --- readiness decision ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnowledgeReadinessDecision(WireRecord):
    """Whether a task may run: `ready`, `caveat` (runs, below the minimum) or `blocked`."""

    passed: bool
    status: ReadinessStatus
    reason: str
    readiness_score: float
    recommended_action: RecommendedAction
    severity: ReadinessSeverity
    blocking_gap_ids: tuple[str, ...] = ()
    non_blocking_gap_ids: tuple[str, ...] = ()


# --- events ------------------------------------------------------------------------------------


class _Event(WireRecord):
    """Base of every event: a `type` tag (class constant) and the wire codec."""

    __slots__ = ()
    TYPE: ClassVar[str]

    @property
    def type(self) -> str:
        return self.TYPE

    def to_json(self) -> str:
        """Compact JSON text of `to_dict()` (`EventParseError` if a payload is not JSON)."""
        data = self.to_dict()
        try:
            out = orjson.dumps(data)
        except TypeError as exc:
            raise EventParseError(f"{self.TYPE} is not serializable: {exc}") from None
        if b"null" in out:  # the encoder writes NaN and ±inf as null: look closer only then
            try:
                ensure_json(data, root=self.TYPE)
            except DurableValueError as exc:
                raise EventParseError(f"{self.TYPE} is not serializable: {exc}") from None
        return out.decode()


@dataclass(frozen=True, slots=True)
class TaskStartEvent(_Event):
    TYPE: ClassVar[str] = "task_start"
    task: AgentTaskSpec
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ReadinessStartEvent(_Event):
    TYPE: ClassVar[str] = "readiness_start"
    task: AgentTaskSpec
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ReadinessEndEvent(_Event):
    """The readiness report; in the stream also the decision taken on it."""

    TYPE: ClassVar[str] = "readiness_end"
    task: AgentTaskSpec
    knowledge: KnowledgeReadinessReport
    decision: KnowledgeReadinessDecision | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionsStartEvent(_Event):
    TYPE: ClassVar[str] = "questions_start"
    task: AgentTaskSpec
    questions: tuple[UserQuestion, ...]
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionsEndEvent(_Event):
    TYPE: ClassVar[str] = "questions_end"
    task: AgentTaskSpec
    questions: tuple[UserQuestion, ...]
    user_answers: Mapping[str, Any]
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class AcquisitionStartEvent(_Event):
    TYPE: ClassVar[str] = "acquisition_start"
    task: AgentTaskSpec
    acquisition_plans: tuple[DataAcquisitionPlan, ...]
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class AcquisitionEndEvent(_Event):
    TYPE: ClassVar[str] = "acquisition_end"
    task: AgentTaskSpec
    acquisition_plans: tuple[DataAcquisitionPlan, ...]
    acquired_evidence_ids: tuple[str, ...]
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ControlStartEvent(_Event):
    TYPE: ClassVar[str] = "control_start"
    task: AgentTaskSpec
    knowledge: KnowledgeReadinessReport


@dataclass(frozen=True, slots=True)
class ControlStepEvent(_Event):
    TYPE: ClassVar[str] = "control_step"
    task: AgentTaskSpec
    step: ControlStep


@dataclass(frozen=True, slots=True)
class ControlEndEvent(_Event):
    TYPE: ClassVar[str] = "control_end"
    task: AgentTaskSpec
    control: ControlRunResult


@dataclass(frozen=True, slots=True)
class TaskEndEvent(_Event):
    TYPE: ClassVar[str] = "task_end"
    task: AgentTaskSpec
    status: AgentTaskStatus
    reason: str
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class SessionCreatedEvent(_Event):
    TYPE: ClassVar[str] = "session_created"
    task: AgentTaskSpec
    session: RuntimeSession
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class SessionResumedEvent(_Event):
    TYPE: ClassVar[str] = "session_resumed"
    task: AgentTaskSpec
    session: RuntimeSession
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class BackendStartEvent(_Event):
    TYPE: ClassVar[str] = "backend_start"
    task: AgentTaskSpec
    session: RuntimeSession
    backend: str
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class TextDeltaEvent(_Event):
    """A fragment of assistant text; the fragments of a run concatenate to `final.text`."""

    TYPE: ClassVar[str] = "text_delta"
    text: str
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDeltaEvent(_Event):
    TYPE: ClassVar[str] = "reasoning_delta"
    text: str
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallEvent(_Event):
    TYPE: ClassVar[str] = "tool_call"
    tool_name: str
    tool_call_id: str | None = None
    args: Any = None
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResultEvent(_Event):
    TYPE: ClassVar[str] = "tool_result"
    tool_name: str
    tool_call_id: str | None = None
    result: Any = None
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class LlmCallEvent(_Event):
    """One model call's usage; `cost_usd` only when the model is priced (never a made-up 0)."""

    TYPE: ClassVar[str] = "llm_call"
    model: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactEvent(_Event):
    TYPE: ClassVar[str] = "artifact"
    artifact_id: str
    name: str | None = None
    mime_type: str | None = None
    uri: str | None = None
    content: Any = None
    metadata: Mapping[str, Any] | None = None
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ProposalCreatedEvent(_Event):
    TYPE: ClassVar[str] = "proposal_created"
    proposal_id: str
    title: str
    status: Literal["pending", "approved", "rejected"] | None = None
    content: Any = None
    task: AgentTaskSpec | None = None
    session: RuntimeSession | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class BackendErrorDetail(WireRecord):
    """Why a backend failed: `transport` (with the HTTP status, 0 when none arrived, and the
    upstream body cut to 2 KiB) or `backend`."""

    kind: Literal["transport", "backend"]
    message: str
    status: int | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class BackendErrorEvent(_Event):
    TYPE: ClassVar[str] = "backend_error"
    task: AgentTaskSpec
    backend: str
    message: str
    recoverable: bool
    session: RuntimeSession | None = None
    error: BackendErrorDetail | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class BackendEndEvent(_Event):
    TYPE: ClassVar[str] = "backend_end"
    task: AgentTaskSpec
    session: RuntimeSession
    backend: str
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class FinalEvent(_Event):
    """The last event of every stream: status, reason, the concatenated text."""

    TYPE: ClassVar[str] = "final"
    task: AgentTaskSpec
    status: AgentTaskStatus
    reason: str
    session: RuntimeSession | None = None
    text: str | None = None
    metadata: Mapping[str, Any] | None = None
    error: BackendErrorDetail | None = None
    timestamp: str | None = None


RuntimeStreamEvent: TypeAlias = (
    TaskStartEvent
    | ReadinessStartEvent
    | ReadinessEndEvent
    | QuestionsStartEvent
    | QuestionsEndEvent
    | AcquisitionStartEvent
    | AcquisitionEndEvent
    | SessionCreatedEvent
    | SessionResumedEvent
    | BackendStartEvent
    | TextDeltaEvent
    | ReasoningDeltaEvent
    | ToolCallEvent
    | ToolResultEvent
    | LlmCallEvent
    | ArtifactEvent
    | ProposalCreatedEvent
    | BackendErrorEvent
    | BackendEndEvent
    | TaskEndEvent
    | FinalEvent
)
AgentRuntimeEvent: TypeAlias = (
    TaskStartEvent
    | ReadinessStartEvent
    | ReadinessEndEvent
    | QuestionsStartEvent
    | QuestionsEndEvent
    | AcquisitionStartEvent
    | AcquisitionEndEvent
    | ControlStartEvent
    | ControlStepEvent
    | ControlEndEvent
    | TaskEndEvent
)

_STREAM_CLASSES: dict[str, type[_Event]] = {
    c.TYPE: c
    for c in (
        TaskStartEvent,
        ReadinessStartEvent,
        ReadinessEndEvent,
        QuestionsStartEvent,
        QuestionsEndEvent,
        AcquisitionStartEvent,
        AcquisitionEndEvent,
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
}
_ALL_CLASSES: dict[str, type[_Event]] = {
    **_STREAM_CLASSES,
    **{c.TYPE: c for c in (ControlStartEvent, ControlStepEvent, ControlEndEvent)},
}
RUNTIME_STREAM_EVENT_TYPES: frozenset[str] = frozenset(_STREAM_CLASSES)
AGENT_RUNTIME_EVENT_TYPES: frozenset[str] = frozenset(
    (
        "task_start",
        "readiness_start",
        "readiness_end",
        "questions_start",
        "questions_end",
        "acquisition_start",
        "acquisition_end",
        "control_start",
        "control_step",
        "control_end",
        "task_end",
    )
)


def _load(data: str | bytes | bytearray | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(data, str | bytes | bytearray):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventParseError(f"event is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise EventParseError(f"event must be a JSON object, got {type(data).__name__}")
    return dict(data)


def _parse(data: Any, classes: Mapping[str, type[_Event]], what: str) -> Any:
    d = _load(data)
    kind = d.get("type")
    cls = classes.get(kind) if type(kind) is str else None
    if cls is None:
        raise EventParseError(f"unknown {what} type {kind!r}")
    try:
        return cls.from_dict(d)
    except RecursionError:
        raise EventParseError(f"{kind} is nested too deeply") from None


def parse_event(
    data: str | bytes | bytearray | Mapping[str, Any],
) -> RuntimeStreamEvent | AgentRuntimeEvent:
    """Parse the wire form (JSON text or dict) of any event; `EventParseError` otherwise."""
    result: RuntimeStreamEvent | AgentRuntimeEvent = _parse(data, _ALL_CLASSES, "event")
    return result


def parse_runtime_stream_event(
    data: str | bytes | bytearray | Mapping[str, Any],
) -> RuntimeStreamEvent:
    """Like `parse_event`, but only the `RuntimeStreamEvent` vocabulary."""
    result: RuntimeStreamEvent = _parse(data, _STREAM_CLASSES, "stream event")
    return result


# --- run results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentTaskRunResult(WireRecord):
    """What `run_agent_task` returns: the status, the readiness report, the preflight's
    questions, plans, answers and evidence, the control loop's result and the run records."""

    task: AgentTaskSpec
    status: AgentTaskStatus
    knowledge: KnowledgeReadinessReport
    control: ControlRunResult
    questions: tuple[UserQuestion, ...] = ()
    acquisition_plans: tuple[DataAcquisitionPlan, ...] = ()
    user_answers: Mapping[str, Any] = field(default_factory=dict)
    acquired_evidence_ids: tuple[str, ...] = ()
    run_records: tuple[RunRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentTaskRunSummary(WireRecord):
    """The accountable projection of a run (ORIGINAL §4.5)."""

    task_id: str
    status: AgentTaskStatus
    reason: str
    readiness_status: ReadinessStatus
    readiness_score: float
    recommended_action: RecommendedAction
    blocking_gap_ids: tuple[str, ...]
    non_blocking_gap_ids: tuple[str, ...]
    question_count: int
    acquisition_plan_count: int
    acquired_evidence_count: int
    control_step_count: int
    pass_: bool
    wall_ms: float
    cost_usd: float
    domain: str | None = None
    failure_class: str | None = None


_S = TypeVar("_S")
_A = TypeVar("_A")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class AgentTaskContext(Generic[_S, _A, _R]):
    """What `decide`/`act`/`should_stop` of an adapter see at each step."""

    task: AgentTaskSpec
    knowledge: KnowledgeReadinessReport
    state: _S
    evals: tuple[ControlEvalResult, ...]
    history: Sequence[ControlStep]  # a snapshot of the steps so far (not copied per step)
    budget: ControlBudget
    step_index: int
    wall_ms: float
    spent_cost_usd: float
    abort_signal: AbortSignal
    remaining_cost_usd: float | None = None


_T = TypeVar("_T")
MaybeAwaitable: TypeAlias = _T | Awaitable[_T]


@runtime_checkable
class AgentKnowledgeProvider(Protocol):
    """Where readiness comes from; every method is optional and may be sync or async:
    `build_readiness(task)`, `answer_questions(questions, task)` → {question id: answer},
    `execute_acquisition_plans(plans, task)` → evidence ids, `refresh_readiness(*, task,
    previous, user_answers, acquired_evidence_ids)` → a new report."""


@runtime_checkable
class AgentAdapter(Protocol):
    """Drives a task through the control loop; each method may be sync or async.

    Required: `observe(*, task, knowledge, history, abort_signal)` → state;
    `validate(*, task, knowledge, state, history, abort_signal)` → evals;
    `decide(ctx)` → `ControlDecision`; `act(action, ctx)` → the action's result.
    Optional: `should_stop(ctx)` → `{stop, pass, reason, score?}`;
    `on_knowledge_blocked(*, task, knowledge, questions, acquisition_plans)` → a decision;
    `get_action_cost_usd(*, action, result, task, state, evals, history)` → USD or None;
    `project_run_records(control, task)` → `RunRecord`s.
    """

    def observe(self, **kwargs: Any) -> Any: ...

    def validate(self, **kwargs: Any) -> Any: ...

    def decide(self, ctx: AgentTaskContext[Any, Any, Any]) -> Any: ...

    def act(self, action: Any, ctx: AgentTaskContext[Any, Any, Any]) -> Any: ...
