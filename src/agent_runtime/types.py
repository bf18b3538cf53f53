"""Task, backend and event data types.

Events are frozen dataclasses tagged by a `type` string. `RuntimeStreamEvent` is what a backend
yields; `AgentRuntimeEvent` is what the task runner yields (the stream events plus run start,
readiness and the final result). Every event has `to_dict()` / `to_json()`, and `parse_event()`
turns the JSON form back into the typed event, refusing anything malformed with
`EventParseError`. The full vocabulary is documented in docs/events.md.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

import orjson

from .errors import ConfigurationError, DurableValueError, EventParseError
from .jsoncanon import dumps_json, ensure_json
from .knowledge import (
    DataAcquisitionPlan,
    KnowledgeReadinessDecision,
    KnowledgeRequirement,
    UserQuestion,
)

__all__ = [
    "AGENT_RUNTIME_EVENT_TYPES",
    "AGENT_TASK_STATUSES",
    "RUNTIME_STREAM_EVENT_TYPES",
    "AgentBackendContext",
    "AgentBackendInput",
    "AgentMessage",
    "AgentRuntimeEvent",
    "AgentTaskContext",
    "AgentTaskRunResult",
    "AgentTaskRunSummary",
    "AgentTaskSpec",
    "AgentTaskStatus",
    "DoneEvent",
    "ErrorEvent",
    "MessageEvent",
    "ModelPrice",
    "ReadinessEvent",
    "RunFinishedEvent",
    "RunStartedEvent",
    "RuntimeStreamEvent",
    "StatusEvent",
    "TextDeltaEvent",
    "TokenUsage",
    "ToolCallEvent",
    "ToolResultEvent",
    "UsageEvent",
    "parse_event",
    "parse_runtime_stream_event",
]

AgentTaskStatus = Literal["pending", "running", "needs_input", "completed", "failed", "cancelled"]
AGENT_TASK_STATUSES: frozenset[str] = frozenset(
    ("pending", "running", "needs_input", "completed", "failed", "cancelled")
)
MessageRole = Literal["system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset(("system", "user", "assistant", "tool"))


# --- field checkers used by parse_event --------------------------------------------------------

_Checker: TypeAlias = Callable[[Any, str], Any]
_MISSING: Any = object()


def _str(v: Any, where: str) -> str:
    if type(v) is not str:
        raise EventParseError(f"{where} must be a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any, where: str) -> str | None:
    return None if v is None else _str(v, where)


def _count(v: Any, where: str) -> int:
    if type(v) is not int or v < 0:
        raise EventParseError(f"{where} must be a non-negative integer")
    return v


def _opt_count(v: Any, where: str) -> int | None:
    return None if v is None else _count(v, where)


def _bool(v: Any, where: str) -> bool:
    if type(v) is not bool:
        raise EventParseError(f"{where} must be a boolean")
    return v


def _number(v: Any, where: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
        raise EventParseError(f"{where} must be a finite non-negative number")
    return float(v)


def _opt_number(v: Any, where: str) -> float | None:
    return None if v is None else _number(v, where)


def _json(v: Any, where: str) -> Any:
    try:
        ensure_json(v, root=where)
    except DurableValueError as exc:
        raise EventParseError(str(exc)) from None
    except RecursionError:  # nesting deeper than the JSON checker can walk
        raise EventParseError(f"{where} is nested too deeply") from None
    return v


def _opt_obj(v: Any, where: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if type(v) is not dict:
        raise EventParseError(f"{where} must be an object or null")
    return dict(_json(v, where))


def _role(v: Any, where: str) -> str:
    if type(v) is not str or v not in _ROLES:
        raise EventParseError(f"{where} must be one of {sorted(_ROLES)}")
    return str(v)


def _status(v: Any, where: str) -> str:
    if type(v) is not str or v not in AGENT_TASK_STATUSES:
        raise EventParseError(f"{where} must be one of {sorted(AGENT_TASK_STATUSES)}")
    return str(v)


def _wrap_parse(fn: Callable[[Any], Any]) -> _Checker:
    def check(v: Any, where: str) -> Any:
        try:
            return fn(v)
        except EventParseError as exc:
            raise EventParseError(f"{where}: {exc.message}") from None
        except (TypeError, ValueError, KeyError, ConfigurationError) as exc:
            raise EventParseError(f"{where}: {exc}") from None

    return check


# --- base ---------------------------------------------------------------------------------------


class _Event:
    """Shared serialization: `_fields` lists (name, checker, default) in declaration order."""

    __slots__ = ()
    type: str
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: `{"type": ..., <fields>}`."""
        out: dict[str, Any] = {"type": self.type}
        for name, _check, _default in self._fields:
            out[name] = getattr(self, name)
        return out

    def to_json(self) -> str:
        """Compact JSON text of `to_dict()`; refuses non-JSON payloads (NaN, objects)."""
        try:
            return dumps_json(self.to_dict(), root=self.type).decode()
        except DurableValueError as exc:
            raise EventParseError(f"event is not serializable: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for name, check, default in cls._fields:
            if name in data:
                kwargs[name] = check(data[name], f"{data['type']}.{name}")
            elif default is _MISSING:
                raise EventParseError(f"{data['type']}: missing field {name!r}")
            else:
                kwargs[name] = default
        extra = set(data) - {"type"} - {f[0] for f in cls._fields}
        if extra:
            names = sorted(map(repr, extra))
            raise EventParseError(f"{data['type']}: unknown field(s) {', '.join(names)}")
        return cls(**kwargs)


# --- stream events (what a backend yields) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDeltaEvent(_Event):
    """A fragment of assistant text; the fragments of one choice concatenate to the reply."""

    type: Literal["text.delta"] = field(default="text.delta", init=False, repr=False)
    text: str
    index: int = 0
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("text", _str, _MISSING),
        ("index", _count, 0),
    )


@dataclass(frozen=True, slots=True)
class MessageEvent(_Event):
    """A complete message (an agent's assistant turn, a system note, a tool message)."""

    type: Literal["message"] = field(default="message", init=False, repr=False)
    role: MessageRole
    content: str
    name: str | None = None
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("role", _role, _MISSING),
        ("content", _str, _MISSING),
        ("name", _opt_str, None),
    )


@dataclass(frozen=True, slots=True)
class ToolCallEvent(_Event):
    """A complete tool call; `arguments` is the model's raw JSON text (possibly invalid)."""

    type: Literal["tool.call"] = field(default="tool.call", init=False, repr=False)
    call_id: str
    name: str
    arguments: str = ""
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("call_id", _str, _MISSING),
        ("name", _str, _MISSING),
        ("arguments", _str, ""),
    )

    def parsed_arguments(self) -> Any:
        """The arguments as JSON, or None when the model produced invalid JSON."""
        try:
            return orjson.loads(self.arguments) if self.arguments else {}
        except orjson.JSONDecodeError:
            return None


@dataclass(frozen=True, slots=True)
class ToolResultEvent(_Event):
    """The JSON output of a tool call; `is_error` marks a failed tool."""

    type: Literal["tool.result"] = field(default="tool.result", init=False, repr=False)
    call_id: str
    output: Any = None
    name: str | None = None
    is_error: bool = False
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("call_id", _str, _MISSING),
        ("output", _json, None),
        ("name", _opt_str, None),
        ("is_error", _bool, False),
    )


@dataclass(frozen=True, slots=True)
class UsageEvent(_Event):
    """Token usage of one model call. Usage events of a run are summed, so a backend reports
    each call once (never a running total)."""

    type: Literal["usage"] = field(default="usage", init=False, repr=False)
    input_tokens: int
    output_tokens: int
    total_tokens: int | None = None
    model: str | None = None
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("input_tokens", _count, _MISSING),
        ("output_tokens", _count, _MISSING),
        ("total_tokens", _opt_count, None),
        ("model", _opt_str, None),
    )


@dataclass(frozen=True, slots=True)
class StatusEvent(_Event):
    """A progress note: the run's status or a backend phase (`thinking`, `tool_running`)."""

    type: Literal["status"] = field(default="status", init=False, repr=False)
    status: str
    message: str | None = None
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("status", _str, _MISSING),
        ("message", _opt_str, None),
    )


@dataclass(frozen=True, slots=True)
class ErrorEvent(_Event):
    """A typed failure: `code` is stable (`backend.stream_interrupted`, `backend.transport`)."""

    type: Literal["error"] = field(default="error", init=False, repr=False)
    code: str
    message: str
    retryable: bool = False
    status: int | None = None
    details: dict[str, Any] | None = None
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("code", _str, _MISSING),
        ("message", _str, _MISSING),
        ("retryable", _bool, False),
        ("status", _opt_count, None),
        ("details", _opt_obj, None),
    )


@dataclass(frozen=True, slots=True)
class DoneEvent(_Event):
    """The backend finished its stream normally; `finish_reason` as the model reported it."""

    type: Literal["done"] = field(default="done", init=False, repr=False)
    finish_reason: str | None = None
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (("finish_reason", _opt_str, None),)


RuntimeStreamEvent: TypeAlias = (
    TextDeltaEvent
    | MessageEvent
    | ToolCallEvent
    | ToolResultEvent
    | UsageEvent
    | StatusEvent
    | ErrorEvent
    | DoneEvent
)


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token totals of a run."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TokenUsage:
        if type(data) is not dict:
            raise EventParseError("usage must be an object")
        return cls(
            input_tokens=_count(data.get("input_tokens", 0), "usage.input_tokens"),
            output_tokens=_count(data.get("output_tokens", 0), "usage.output_tokens"),
            total_tokens=_count(data.get("total_tokens", 0), "usage.total_tokens"),
        )


def _event_list(cls: type[_Event]) -> _Checker:
    def check(v: Any, where: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise EventParseError(f"{where} must be a list")
        out = []
        for i, item in enumerate(v):
            event = parse_event(item)
            if not isinstance(event, cls):
                raise EventParseError(f"{where}[{i}] must be a {cls.__name__}")
            out.append(event)
        return tuple(out)

    return check


def _opt_error(v: Any, where: str) -> ErrorEvent | None:
    if v is None:
        return None
    event = parse_event(v)
    if not isinstance(event, ErrorEvent):
        raise EventParseError(f"{where} must be an error event")
    return event


@dataclass(frozen=True, slots=True)
class AgentTaskRunResult:
    """Everything a finished run produced: final status, text, tool calls, usage, cost, error,
    and the readiness decision (with questions and plan when the status is `needs_input`)."""

    run_id: str
    task_id: str
    status: AgentTaskStatus
    backend: str
    started_at_ms: int
    duration_ms: float
    text: str = ""
    model: str | None = None
    messages: tuple[MessageEvent, ...] = ()
    tool_calls: tuple[ToolCallEvent, ...] = ()
    tool_results: tuple[ToolResultEvent, ...] = ()
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    error: ErrorEvent | None = None
    readiness: KnowledgeReadinessDecision | None = None
    time_to_first_event_ms: float | None = None
    cost_usd: float | None = None
    event_count: int = 0

    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("run_id", _str, _MISSING),
        ("task_id", _str, _MISSING),
        ("status", _status, _MISSING),
        ("backend", _str, _MISSING),
        ("started_at_ms", _count, _MISSING),
        ("duration_ms", _number, _MISSING),
        ("text", _str, ""),
        ("model", _opt_str, None),
        ("messages", _event_list(MessageEvent), ()),
        ("tool_calls", _event_list(ToolCallEvent), ()),
        ("tool_results", _event_list(ToolResultEvent), ()),
        (
            "usage",
            lambda v, w: None if v is None else _wrap_parse(TokenUsage.from_dict)(v, w),
            None,
        ),
        ("finish_reason", _opt_str, None),
        ("error", _opt_error, None),
        (
            "readiness",
            lambda v, w: (
                None if v is None else _wrap_parse(KnowledgeReadinessDecision.from_dict)(v, w)
            ),
            None,
        ),
        ("time_to_first_event_ms", _opt_number, None),
        ("cost_usd", _opt_number, None),
        ("event_count", _count, 0),
    )

    @property
    def questions(self) -> tuple[UserQuestion, ...]:
        return self.readiness.questions if self.readiness is not None else ()

    @property
    def acquisition_plan(self) -> DataAcquisitionPlan | None:
        return self.readiness.acquisition_plan if self.readiness is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "status": self.status,
            "backend": self.backend,
            "started_at_ms": self.started_at_ms,
            "duration_ms": self.duration_ms,
            "text": self.text,
            "model": self.model,
            "messages": [m.to_dict() for m in self.messages],
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "tool_results": [r.to_dict() for r in self.tool_results],
            "usage": self.usage.to_dict() if self.usage is not None else None,
            "finish_reason": self.finish_reason,
            "error": self.error.to_dict() if self.error is not None else None,
            "readiness": self.readiness.to_dict() if self.readiness is not None else None,
            "time_to_first_event_ms": self.time_to_first_event_ms,
            "cost_usd": self.cost_usd,
            "event_count": self.event_count,
        }

    @classmethod
    def from_dict(cls, data: Any) -> AgentTaskRunResult:
        """Validating inverse of `to_dict` (raises `EventParseError`)."""
        if type(data) is not dict:
            raise EventParseError("result must be an object")
        kwargs: dict[str, Any] = {}
        for name, check, default in cls._fields:
            if name in data:
                kwargs[name] = check(data[name], f"result.{name}")
            elif default is _MISSING:
                raise EventParseError(f"result: missing field {name!r}")
            else:
                kwargs[name] = default
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class AgentTaskRunSummary:
    """The accountable numbers of a run: status, durations, tokens, cost (None = unknown)."""

    run_id: str
    task_id: str
    status: AgentTaskStatus
    backend: str
    model: str | None
    duration_ms: float
    time_to_first_event_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    tool_call_count: int
    text_chars: int
    finish_reason: str | None
    error_code: str | None
    question_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "status": self.status,
            "backend": self.backend,
            "model": self.model,
            "duration_ms": self.duration_ms,
            "time_to_first_event_ms": self.time_to_first_event_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "tool_call_count": self.tool_call_count,
            "text_chars": self.text_chars,
            "finish_reason": self.finish_reason,
            "error_code": self.error_code,
            "question_count": self.question_count,
        }


# --- runner events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStartedEvent(_Event):
    """First event of every run."""

    type: Literal["run.started"] = field(default="run.started", init=False, repr=False)
    run_id: str
    task_id: str
    backend: str
    model: str | None = None
    started_at_ms: int = 0
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("run_id", _str, _MISSING),
        ("task_id", _str, _MISSING),
        ("backend", _str, _MISSING),
        ("model", _opt_str, None),
        ("started_at_ms", _count, 0),
    )


@dataclass(frozen=True, slots=True)
class ReadinessEvent(_Event):
    """The knowledge-readiness decision taken before the backend is called."""

    type: Literal["readiness"] = field(default="readiness", init=False, repr=False)
    decision: KnowledgeReadinessDecision
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("decision", _wrap_parse(KnowledgeReadinessDecision.from_dict), _MISSING),
    )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "decision": self.decision.to_dict()}


@dataclass(frozen=True, slots=True)
class RunFinishedEvent(_Event):
    """Last event of every run; carries the full result."""

    type: Literal["run.finished"] = field(default="run.finished", init=False, repr=False)
    result: AgentTaskRunResult
    _fields: ClassVar[tuple[tuple[str, _Checker, Any], ...]] = (
        ("result", _wrap_parse(AgentTaskRunResult.from_dict), _MISSING),
    )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "result": self.result.to_dict()}


AgentRuntimeEvent: TypeAlias = (
    RuntimeStreamEvent | RunStartedEvent | ReadinessEvent | RunFinishedEvent
)

_STREAM_CLASSES: dict[str, type[_Event]] = {
    "text.delta": TextDeltaEvent,
    "message": MessageEvent,
    "tool.call": ToolCallEvent,
    "tool.result": ToolResultEvent,
    "usage": UsageEvent,
    "status": StatusEvent,
    "error": ErrorEvent,
    "done": DoneEvent,
}
_ALL_CLASSES: dict[str, type[_Event]] = {
    **_STREAM_CLASSES,
    "run.started": RunStartedEvent,
    "readiness": ReadinessEvent,
    "run.finished": RunFinishedEvent,
}
RUNTIME_STREAM_EVENT_TYPES: frozenset[str] = frozenset(_STREAM_CLASSES)
AGENT_RUNTIME_EVENT_TYPES: frozenset[str] = frozenset(_ALL_CLASSES)


def _load(data: str | bytes | bytearray | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, str | bytes | bytearray):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventParseError(f"event is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise EventParseError(f"event must be a JSON object, got {type(data).__name__}")
    return data


def parse_event(data: str | bytes | bytearray | Mapping[str, Any]) -> AgentRuntimeEvent:
    """Parse the JSON text (or dict) form of any event; `EventParseError` on anything invalid."""
    d = _load(data)
    kind = d.get("type")
    cls = _ALL_CLASSES.get(kind) if type(kind) is str else None
    if cls is None:
        raise EventParseError(f"unknown event type {kind!r}")
    event: AgentRuntimeEvent = cls._from_dict(d)
    return event


def parse_runtime_stream_event(
    data: str | bytes | bytearray | Mapping[str, Any],
) -> RuntimeStreamEvent:
    """Like `parse_event` but accepts only the backend stream vocabulary."""
    d = _load(data)
    kind = d.get("type")
    cls = _STREAM_CLASSES.get(kind) if type(kind) is str else None
    if cls is None:
        raise EventParseError(f"unknown stream event type {kind!r}")
    event: RuntimeStreamEvent = cls._from_dict(d)
    return event


# --- tasks and backend inputs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentMessage:
    """One chat message sent to a backend."""

    role: MessageRole
    content: str
    name: str | None = None
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or self.role not in _ROLES:
            raise ConfigurationError(f"message role must be one of {sorted(_ROLES)}")
        if not isinstance(self.content, str):
            raise ConfigurationError("message content must be a string")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per one million input and output tokens for one model."""

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million"):
            v = getattr(self, name)
            if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
                raise ConfigurationError(f"ModelPrice.{name} must be a finite number >= 0")

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class AgentTaskSpec:
    """A task: id, the user's ask (`intent`), domain, knowledge requirements, optional model."""

    id: str
    intent: str
    domain: str | None = None
    requirements: tuple[KnowledgeRequirement, ...] = ()
    model: str | None = None
    system_prompt: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigurationError("AgentTaskSpec.id must be a non-empty string")
        if not isinstance(self.intent, str) or not self.intent.strip():
            raise ConfigurationError("AgentTaskSpec.intent must be a non-empty string")
        for name in ("domain", "model", "system_prompt"):
            if not isinstance(getattr(self, name), str | None):
                raise ConfigurationError(f"AgentTaskSpec.{name} must be a string or None")
        if not isinstance(self.requirements, Iterable) or isinstance(self.requirements, str):
            raise ConfigurationError("AgentTaskSpec.requirements must be KnowledgeRequirements")
        if not isinstance(self.metadata, Mapping):
            raise ConfigurationError("AgentTaskSpec.metadata must be a mapping")
        reqs = tuple(self.requirements)
        if not all(isinstance(r, KnowledgeRequirement) for r in reqs):
            raise ConfigurationError("AgentTaskSpec.requirements must be KnowledgeRequirements")
        object.__setattr__(self, "requirements", reqs)
        try:
            ensure_json(dict(self.metadata), root="task.metadata")
        except DurableValueError as exc:
            raise ConfigurationError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "intent": self.intent,
            "domain": self.domain,
            "requirements": [r.to_dict() for r in self.requirements],
            "model": self.model,
            "system_prompt": self.system_prompt,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class AgentBackendInput:
    """What a backend receives: the task, the messages to send (or a bare prompt) and ids."""

    task: AgentTaskSpec
    messages: tuple[AgentMessage, ...]
    run_id: str
    model: str | None = None
    session_id: str | None = None

    @property
    def prompt(self) -> str:
        """The last user message (what a single-prompt backend such as a sandbox sends)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return self.task.intent


@dataclass(frozen=True, slots=True)
class AgentBackendContext:
    """Per-run signals for a backend: cancellation, the session and an optional event sink."""

    cancelled: asyncio.Event
    run_id: str
    session_id: str | None = None
    emit: Callable[[RuntimeStreamEvent], None] | None = None

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()


@dataclass(frozen=True, slots=True)
class AgentTaskContext:
    """Caller-side handle for a run: call `cancel()` to stop the backend and end `cancelled`."""

    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    session_id: str | None = None
    run_id: str | None = None

    def cancel(self) -> None:
        self.cancelled.set()

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()
