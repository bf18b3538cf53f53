"""A turn's stream log read as the parts a chat UI renders: text, reasoning, tool calls, usage,
and how the turn ended. Both dialect encoders are a `Timeline` plus a `PartSink` of their own.

`Timeline.feed(record)` folds one stream-log record and tells the sink what changed (a part
opened, grew or closed, a tool was called or answered, the turn ended). Part ids derive from the
log (`text-<seq of its first delta>`), so reading the same log from any cursor names the same
parts; the fold state at a cursor is what is open there (`open_part`, `pending_tools`), which is
what a resuming encoder re-opens before it continues. Payloads are our event vocabulary in its
wire form, flat (`{"type": "text_delta", "text": ...}`) or enveloped (`{"type", "data": {...}}`).
Attempts follow the turn log's event ids (`TurnLogCursor`'s rule): a restart marker of a later
attempt closes what was open and switches to it; records of any other attempt are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

from ...chat import parse_turn_event_id
from ...durable import StreamEventRecord
from ...errors import AgentRuntimeError
from ...eval import (
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    user_questions_for_knowledge_gaps,
)

__all__ = [
    "ClosingKind",
    "PartKind",
    "PartSink",
    "PendingTool",
    "Timeline",
    "TimelineState",
    "closing_kind",
]

PartKind: TypeAlias = Literal["text", "reasoning"]
ClosingKind: TypeAlias = Literal["completed", "failed", "stopped", "interrupted"]


class PartSink(Protocol):
    """What a dialect renders. Parts never interleave: a text part closes before reasoning or
    a tool call starts, and every open part closes before the turn's terminal call."""

    def part_start(self, kind: PartKind, part_id: str) -> None: ...

    def part_delta(self, kind: PartKind, part_id: str, delta: str) -> None: ...

    def part_end(self, kind: PartKind, part_id: str) -> None: ...

    def tool_input(self, call_id: str, name: str, args: Any) -> None: ...

    def tool_output(self, call_id: str, name: str, result: Any) -> None: ...

    def usage(self, totals: Mapping[str, Any]) -> None: ...

    def restarted(self, attempt: int) -> None: ...

    def completed(self) -> None: ...

    def failed(self, message: str, code: str | None) -> None: ...

    def stopped(self, reason: str) -> None: ...

    def blocked(self, reason: str, questions: list[dict[str, Any]]) -> None: ...


class TimelineState(NamedTuple):
    """An immutable `Timeline.snapshot()`."""

    seq: int | None
    open_kind: PartKind | None
    open_id: str | None
    last_text_id: str | None
    pending_tools: tuple[tuple[str, str, Any], ...]
    totals: tuple[tuple[str, Any], ...]
    ended: bool
    calls: int
    questions: tuple[dict[str, Any], ...]
    attempt: int


class PendingTool:
    """A tool call the log has seen without its result yet."""

    __slots__ = ("args", "name")

    def __init__(self, name: str, args: Any) -> None:
        self.name = name
        self.args = args


class _Muted:
    """The sink of a silent fold (reading up to a cursor): renders nothing."""

    def part_start(self, kind: PartKind, part_id: str) -> None:
        return None

    def part_delta(self, kind: PartKind, part_id: str, delta: str) -> None:
        return None

    def part_end(self, kind: PartKind, part_id: str) -> None:
        return None

    def tool_input(self, call_id: str, name: str, args: Any) -> None:
        return None

    def tool_output(self, call_id: str, name: str, result: Any) -> None:
        return None

    def usage(self, totals: Mapping[str, Any]) -> None:
        return None

    def restarted(self, attempt: int) -> None:
        return None

    def completed(self) -> None:
        return None

    def failed(self, message: str, code: str | None) -> None:
        return None

    def stopped(self, reason: str) -> None:
        return None

    def blocked(self, reason: str, questions: list[dict[str, Any]]) -> None:
        return None


MUTED: PartSink = _Muted()
_TERMINAL_FINAL = frozenset(("failed", "aborted", "blocked"))


def _field(payload: Mapping[str, Any], name: str) -> Any:
    value = payload.get(name)
    if value is None:
        data = payload.get("data")
        if isinstance(data, Mapping):
            return data.get(name)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def closing_kind(closing: Mapping[str, Any]) -> ClosingKind:
    """How a run stands, from its closing line (`session.run.completed|failed|stopped|…`)."""
    kind = closing.get("type")
    if kind == "session.run.completed":
        return "stopped" if _field(closing, "stopped") is True else "completed"
    if kind == "session.run.failed":
        return "failed"
    if kind in ("session.run.stopped", "session.run.aborted"):
        return "stopped"
    return "interrupted"


def _gap(raw: Any) -> KnowledgeRequirement | None:
    """A blocking gap as logged: whole, or in the service's sanitized projection (no
    description unless the deployment shows them: the requirement's id stands in)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        return None
    description = raw.get("description")
    required_for = raw.get("requiredFor")
    try:
        return KnowledgeRequirement(
            id=raw["id"],
            description=description if isinstance(description, str) else raw["id"],
            required_for=tuple(required_for) if isinstance(required_for, list) else (),
            acquisition_mode=raw.get("acquisitionMode", "ask_user"),
            importance=raw.get("importance", "blocking"),
            sensitivity=raw.get("sensitivity", "internal"),
            fallback_policy=raw.get("fallbackPolicy", "ask"),
        )
    except (AgentRuntimeError, TypeError, ValueError):
        return None


def _questions(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The readiness gate's questions for a blocked decision's report (none if unreadable)."""
    knowledge = _field(payload, "knowledge")
    if not isinstance(knowledge, Mapping):
        return []
    try:
        gaps = list(KnowledgeReadinessReport.from_dict(dict(knowledge)).blocking_gaps)
    except (AgentRuntimeError, TypeError, ValueError, KeyError):
        raw = knowledge.get("blockingGaps")
        gaps = [g for g in map(_gap, raw if isinstance(raw, list) else []) if g is not None]
    return [q.to_dict() for q in user_questions_for_knowledge_gaps(gaps)]


class Timeline:
    """The fold of one turn's stream log; see the module docstring."""

    __slots__ = (
        "_calls",
        "_questions",
        "attempt",
        "ended",
        "last_text_id",
        "open_id",
        "open_kind",
        "pending_tools",
        "seq",
        "sink",
        "totals",
    )

    def __init__(self, sink: PartSink) -> None:
        self.sink = sink
        self.seq: int | None = None
        self.open_kind: PartKind | None = None
        self.open_id: str | None = None
        self.last_text_id: str | None = None
        self.pending_tools: dict[str, PendingTool] = {}
        self.totals: dict[str, Any] = {}
        self.ended = False
        self.attempt = 1
        self._calls = 0
        self._questions: list[dict[str, Any]] = []

    def snapshot(self) -> TimelineState:
        """The fold state (what is open, pending, summed), to restore into another timeline."""
        return TimelineState(
            self.seq,
            self.open_kind,
            self.open_id,
            self.last_text_id,
            tuple((c, t.name, t.args) for c, t in self.pending_tools.items()),
            tuple(self.totals.items()),
            self.ended,
            self._calls,
            tuple(self._questions),
            self.attempt,
        )

    def restore(self, state: TimelineState) -> None:
        """Continue from `state` (a `snapshot()` of a timeline over the same log)."""
        self.seq = state.seq
        self.open_kind = state.open_kind
        self.open_id = state.open_id
        self.last_text_id = state.last_text_id
        self.pending_tools = {c: PendingTool(n, a) for c, n, a in state.pending_tools}
        self.totals = dict(state.totals)
        self.ended = state.ended
        self._calls = state.calls
        self._questions = list(state.questions)
        self.attempt = state.attempt

    # -- folding ---------------------------------------------------------------------------

    def feed(self, record: StreamEventRecord) -> None:
        """Fold one record (records at or before the last folded seq are ignored)."""
        seq = record.seq
        if self.seq is not None and seq <= self.seq:
            return
        self.seq = seq
        event_id = record.event_id
        if self.attempt != 1 or event_id.count(":") != 1:  # not a plain first-attempt record
            attempt, restart = parse_turn_event_id(event_id)
            if restart:
                if attempt > self.attempt:
                    self._restart(attempt)  # a retry may follow an attempt that ended failed
                return
            if attempt != self.attempt:
                return  # appended late by a worker the log has left behind
        if self.ended:
            return
        payload = record.payload
        if not isinstance(payload, Mapping):
            return
        kind = payload.get("type")
        if kind == "text_delta":
            self._delta("text", _text(_field(payload, "text")), seq)
        elif kind == "reasoning_delta":
            self._delta("reasoning", _text(_field(payload, "text")), seq)
        elif kind == "message.part.updated":
            self._delta("text", _text(_field(payload, "delta")), seq)
        elif kind == "tool_call":
            self._tool_call(payload, seq)
        elif kind == "tool_result":
            self._tool_result(payload, seq)
        elif kind == "llm_call":
            self._usage(payload)
        elif kind == "readiness_end":
            decision = _field(payload, "decision")
            if isinstance(decision, Mapping) and decision.get("status") == "blocked":
                self._questions = _questions(payload)
        elif kind == "final":
            self._final(payload)
        elif kind in ("result", "turn.replayed"):
            replay = _field(payload, "finalText") if kind == "result" else payload.get("text")
            self._delta("text", _text(replay), seq)
        elif kind in ("backend_error", "error", "session.run.failed"):
            message = _field(payload, "message") or _field(payload, "reason") or "the turn failed"
            code = _field(payload, "code")
            if not isinstance(code, str):
                code = "backend_error" if kind == "backend_error" else None
            self.fail(str(message), code)
        elif kind == "session.run.restarted":  # a log whose event ids are not a turn's own
            attempt = _field(payload, "attempt")
            self._restart(attempt if type(attempt) is int else self.attempt + 1)

    def _restart(self, attempt: int) -> None:
        """A new attempt of the turn starts: what the last one had open is over."""
        self.attempt = attempt
        self.close_part()
        self.pending_tools.clear()
        self.last_text_id = None
        self._questions = []
        self.ended = False
        self.sink.restarted(attempt)

    def _delta(self, kind: PartKind, delta: str, seq: int) -> None:
        if not delta:
            return
        if self.open_kind != kind:
            self.close_part()
            self.open_kind = kind
            self.open_id = part_id = f"{kind}-{seq}"
            if kind == "text":
                self.last_text_id = part_id
            self.sink.part_start(kind, part_id)
        else:
            part_id = self.open_id  # type: ignore[assignment]
        self.sink.part_delta(kind, part_id, delta)

    def close_part(self) -> None:
        """Close the open text or reasoning part, if any."""
        if self.open_kind is not None:
            kind, part_id = self.open_kind, self.open_id
            self.open_kind = self.open_id = None
            self.sink.part_end(kind, part_id)  # type: ignore[arg-type]

    def _tool_call(self, payload: Mapping[str, Any], seq: int) -> None:
        self.close_part()
        name = _field(payload, "toolName")
        name = name if isinstance(name, str) and name else "tool"
        call_id = _field(payload, "toolCallId")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"call-{seq}"
        args = _field(payload, "args")
        self.pending_tools[call_id] = PendingTool(name, args)
        self.sink.tool_input(call_id, name, args)

    def _tool_result(self, payload: Mapping[str, Any], seq: int) -> None:
        self.close_part()
        name = _field(payload, "toolName")
        name = name if isinstance(name, str) and name else "tool"
        call_id = _field(payload, "toolCallId")
        if not isinstance(call_id, str) or not call_id:
            call_id = next((c for c, t in self.pending_tools.items() if t.name == name), None)
        if call_id is None or call_id not in self.pending_tools:
            # a result whose call the log never showed: show the call first
            call_id = call_id or f"call-{seq}"
            self.sink.tool_input(call_id, name, None)
        else:
            del self.pending_tools[call_id]
        self.sink.tool_output(call_id, name, _field(payload, "result"))

    def _usage(self, payload: Mapping[str, Any]) -> None:
        totals = self.totals
        self._calls += 1
        totals["llmCalls"] = self._calls
        model = _field(payload, "model")
        if isinstance(model, str):
            totals["model"] = model
        for key in ("tokensIn", "tokensOut", "costUsd"):
            value = _field(payload, key)
            if type(value) in (int, float):
                totals[key] = totals.get(key, 0) + value
        self.sink.usage(dict(totals))

    def _final(self, payload: Mapping[str, Any]) -> None:
        status = _field(payload, "status")
        if status not in _TERMINAL_FINAL:
            return
        reason = _field(payload, "reason")
        reason = reason if isinstance(reason, str) else str(status)
        if status == "failed":
            self.fail(reason, None)
        elif status == "aborted":
            self.stop(reason)
        else:
            self.close_part()
            self.ended = True
            self.sink.blocked(reason, self._questions)

    # -- terminals ---------------------------------------------------------------------------

    def fail(self, message: str, code: str | None) -> None:
        """End the turn as failed (once)."""
        if not self.ended:
            self.close_part()
            self.ended = True
            self.sink.failed(message, code)

    def stop(self, reason: str) -> None:
        """End the turn as stopped by its user (once)."""
        if not self.ended:
            self.close_part()
            self.ended = True
            self.sink.stopped(reason)

    def close(self, closing: Mapping[str, Any]) -> ClosingKind:
        """End the turn as its closing line says, unless the log already ended it; returns how
        it stands. `interrupted` (its worker died and the turn is not over) ends nothing."""
        kind = closing_kind(closing)
        if self.ended or kind == "interrupted":
            return kind
        if kind == "completed":
            self.close_part()
            self.ended = True
            self.sink.completed()
        elif kind == "failed":
            error = _field(closing, "error")
            message = _field(error, "message") if isinstance(error, Mapping) else None
            message = message or _field(closing, "message") or "the turn failed"
            code = _field(error, "code") if isinstance(error, Mapping) else None
            self.fail(str(message), code if isinstance(code, str) else None)
        else:
            reason = _field(closing, "reason")
            self.stop(reason if isinstance(reason, str) else "stopped")
        return kind
