"""Trace bridge (ORIGINAL §11): stream events as agent-eval `TraceEvent`s, so an evaluator
written for agent-eval reads our runs.

Each event maps to one trace event of a fixed kind (`log`, `error`, `policy_violation`,
`state_mutation`) whose payload names the phase and carries ids, statuses and counts, never tool
arguments or results; deltas map to nothing. Ids are `evt-1`, `evt-2`, ... per bridge. Ours:
`proposal_created` (later than the original's bridge) maps like `artifact`, and the payload's
strings are secret-scrubbed (`scrub=`, default `SanitizeOptions()`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ._scrub import SanitizeOptions, sanitize_json
from .errors import EventParseError, ValidationError
from .eval._records import EventKind, TraceEvent
from .readiness import decide_knowledge_readiness
from .types import (
    RUNTIME_STREAM_EVENT_TYPES,
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    ArtifactEvent,
    BackendEndEvent,
    BackendErrorEvent,
    BackendStartEvent,
    FinalEvent,
    LlmCallEvent,
    ProposalCreatedEvent,
    QuestionsEndEvent,
    QuestionsStartEvent,
    ReadinessEndEvent,
    ReadinessStartEvent,
    ReasoningDeltaEvent,
    RuntimeStreamEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    TaskEndEvent,
    TaskStartEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    parse_runtime_stream_event,
)

__all__ = ["TraceBridge", "create_trace_bridge", "to_agent_eval_trace"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _epoch_ms(timestamp: str | None) -> int:
    """The event's ISO timestamp in epoch milliseconds, or now when absent or unparsable."""
    if isinstance(timestamp, str) and timestamp:
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return (parsed - _EPOCH) // _MS
    return time.time_ns() // 1_000_000


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _map(event: Any) -> tuple[EventKind, dict[str, Any]] | None:
    """The trace kind and payload of one stream event (None for deltas)."""
    phase = event.TYPE
    if isinstance(event, TextDeltaEvent | ReasoningDeltaEvent):
        return None
    if isinstance(event, TaskStartEvent):
        return "log", {"phase": phase, "taskId": event.task.id, "intent": event.task.intent}
    if isinstance(event, ReadinessStartEvent):
        return "log", {"phase": phase, "taskId": event.task.id}
    if isinstance(event, ReadinessEndEvent):
        decision = event.decision or decide_knowledge_readiness(event.knowledge)
        return ("log" if decision.passed else "policy_violation"), {
            "phase": phase,
            "taskId": event.task.id,
            "status": decision.status,
            "readinessScore": decision.readiness_score,
            "blockingGapIds": list(decision.blocking_gap_ids),
            "nonBlockingGapIds": list(decision.non_blocking_gap_ids),
            "reason": decision.reason,
        }
    if isinstance(event, QuestionsStartEvent):
        return "log", {"phase": phase, "questionCount": len(event.questions)}
    if isinstance(event, QuestionsEndEvent):
        return "log", {
            "phase": phase,
            "questionCount": len(event.questions),
            "answerCount": len(event.user_answers),
        }
    if isinstance(event, AcquisitionStartEvent):
        return "log", {"phase": phase, "planCount": len(event.acquisition_plans)}
    if isinstance(event, AcquisitionEndEvent):
        return "log", {
            "phase": phase,
            "planCount": len(event.acquisition_plans),
            "evidenceCount": len(event.acquired_evidence_ids),
        }
    if isinstance(event, SessionCreatedEvent | SessionResumedEvent):
        return "log", {
            "phase": phase,
            "sessionId": event.session.id,
            "backend": event.session.backend,
        }
    if isinstance(event, BackendStartEvent | BackendEndEvent):
        return "log", {"phase": phase, "backend": event.backend}
    if isinstance(event, BackendErrorEvent):
        return "error", {
            "backend": event.backend,
            "message": event.message,
            "recoverable": event.recoverable,
        }
    if isinstance(event, ToolCallEvent | ToolResultEvent):
        payload = {"phase": phase, "toolName": event.tool_name}
        _put(payload, "toolCallId", event.tool_call_id)
        return "log", payload
    if isinstance(event, LlmCallEvent):
        payload = {"phase": phase, "model": event.model}
        _put(payload, "tokensIn", event.tokens_in)
        _put(payload, "tokensOut", event.tokens_out)
        _put(payload, "costUsd", event.cost_usd)
        _put(payload, "latencyMs", event.latency_ms)
        _put(payload, "finishReason", event.finish_reason)
        return "log", payload
    if isinstance(event, ArtifactEvent):
        payload = {"phase": phase, "artifactId": event.artifact_id}
        _put(payload, "name", event.name)
        _put(payload, "mimeType", event.mime_type)
        return "state_mutation", payload
    if isinstance(event, ProposalCreatedEvent):
        payload = {"phase": phase, "proposalId": event.proposal_id}
        _put(payload, "status", event.status)
        return "state_mutation", payload
    if isinstance(event, TaskEndEvent | FinalEvent):
        kind: EventKind = "error" if event.status in ("failed", "aborted") else "log"
        return kind, {"phase": phase, "status": event.status, "reason": event.reason}
    raise ValidationError(f"trace bridge: no mapping for {phase!r}")  # pragma: no cover


def _stream_event(event: Any) -> Any:
    if isinstance(event, Mapping | str | bytes):
        try:
            return parse_runtime_stream_event(event)
        except EventParseError as exc:
            raise ValidationError(f"trace bridge: {exc.message}") from None
    kind = getattr(type(event), "TYPE", None)
    if kind not in RUNTIME_STREAM_EVENT_TYPES:
        raise ValidationError(
            f"trace bridge: expected a runtime stream event, got {type(event).__name__}"
        )
    return event


class TraceBridge:
    """Maps stream events to `TraceEvent`s of one run and span (`to_trace_event`, `drain`)."""

    __slots__ = ("_new_event_id", "_scrub", "run_id", "span_id")

    def __init__(
        self,
        run_id: str,
        span_id: str,
        new_event_id: Callable[[], str],
        scrub: SanitizeOptions | None,
    ) -> None:
        self.run_id = run_id
        self.span_id = span_id
        self._new_event_id = new_event_id
        self._scrub = scrub

    def to_trace_event(self, event: RuntimeStreamEvent | Mapping[str, Any]) -> TraceEvent | None:
        """The trace event of `event` (None for text and reasoning deltas)."""
        typed = _stream_event(event)
        mapped = _map(typed)
        if mapped is None:
            return None
        kind, payload = mapped
        event_id = self._new_event_id()
        if not isinstance(event_id, str) or not event_id:
            raise ValidationError("trace bridge: new_event_id must return a non-empty string")
        return TraceEvent(
            event_id=event_id,
            run_id=self.run_id,
            span_id=self.span_id,
            kind=kind,
            timestamp=_epoch_ms(typed.timestamp),
            payload=sanitize_json(payload, self._scrub),
        )

    def drain(self, events: Iterable[RuntimeStreamEvent | Mapping[str, Any]]) -> list[TraceEvent]:
        """The trace events of `events` in order, deltas dropped."""
        out: list[TraceEvent] = []
        for event in events:
            trace = self.to_trace_event(event)
            if trace is not None:
                out.append(trace)
        return out


def create_trace_bridge(
    run_id: str,
    *,
    span_id: str | None = None,
    new_event_id: Callable[[], str] | None = None,
    scrub: SanitizeOptions | None = None,
) -> TraceBridge:
    """A bridge for one run: `span_id` defaults to the run id, ids to `evt-1`, `evt-2`, ...;
    an empty `run_id` is `ValidationError('createTraceBridge: runId is required')`."""
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError("createTraceBridge: runId is required")
    if span_id is not None and (not isinstance(span_id, str) or not span_id):
        raise ValidationError("createTraceBridge: spanId must be a non-empty string")
    if new_event_id is not None and not callable(new_event_id):
        raise ValidationError("createTraceBridge: newEventId must be callable")
    if scrub is not None and not isinstance(scrub, SanitizeOptions):
        raise ValidationError("createTraceBridge: scrub must be SanitizeOptions")
    if new_event_id is None:
        counter = itertools.count(1)

        def new_event_id() -> str:
            return f"evt-{next(counter)}"

    return TraceBridge(run_id, span_id or run_id, new_event_id, scrub)


def to_agent_eval_trace(
    event: RuntimeStreamEvent | Mapping[str, Any],
    *,
    run_id: str,
    span_id: str | None = None,
    new_event_id: Callable[[], str] | None = None,
    scrub: SanitizeOptions | None = None,
) -> TraceEvent | None:
    """One event through a fresh bridge (so its id is `evt-1` unless `new_event_id` is given)."""
    bridge = create_trace_bridge(run_id, span_id=span_id, new_event_id=new_event_id, scrub=scrub)
    return bridge.to_trace_event(event)
