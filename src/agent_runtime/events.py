"""Event collectors: fold a stream of runtime events into text, usage, tool calls and errors.

A collector is also a callable sink (`collector(event)`), so it plugs straight into
`AgentBackendContext.emit` or a chat turn's `on_event`. Dict events are parsed (and
validated) into the typed events first.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any

from .errors import EventParseError, InvalidArgumentError
from .knowledge import KnowledgeReadinessDecision
from .types import (
    AgentRuntimeEvent,
    AgentTaskRunResult,
    DoneEvent,
    ErrorEvent,
    MessageEvent,
    ReadinessEvent,
    RunFinishedEvent,
    RunStartedEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
    TokenUsage,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    parse_event,
    parse_runtime_stream_event,
)

__all__ = [
    "RuntimeEventCollector",
    "RuntimeStreamEventCollector",
    "create_runtime_event_collector",
    "create_runtime_stream_event_collector",
]


class RuntimeStreamEventCollector:
    """Collects backend stream events: text (per choice index), messages, tool calls and
    results, summed usage, errors and the finish reason."""

    _stream_only = True

    def __init__(self, *, keep_events: bool = True) -> None:
        self.keep_events = keep_events
        self.events: list[Any] = []
        self.count = 0
        self._text: dict[int, list[str]] = {}
        self.messages: list[MessageEvent] = []
        self.tool_calls: list[ToolCallEvent] = []
        self.tool_results: list[ToolResultEvent] = []
        self.errors: list[ErrorEvent] = []
        self.finish_reason: str | None = None
        self.done = False
        self._input = 0
        self._output = 0
        self._total = 0
        self._usage_seen = False
        self.model: str | None = None

    def _parse(self, event: Any) -> Any:
        if isinstance(event, Mapping | str | bytes):
            try:
                return (
                    parse_runtime_stream_event(event) if self._stream_only else parse_event(event)
                )
            except EventParseError as exc:
                raise InvalidArgumentError(exc.message, path="event") from None
        if not hasattr(event, "type") or not callable(getattr(event, "to_dict", None)):
            raise InvalidArgumentError(
                f"expected a runtime event, got {type(event).__name__}", path="event"
            )
        return event

    def add(self, event: RuntimeStreamEvent | Mapping[str, Any]) -> Any:
        """Fold one event in; returns the typed event."""
        typed = self._parse(event)
        self.count += 1
        if self.keep_events:
            self.events.append(typed)
        self._fold(typed)
        return typed

    __call__ = add

    def _fold(self, event: Any) -> None:
        if isinstance(event, TextDeltaEvent):
            self._text.setdefault(event.index, []).append(event.text)
        elif isinstance(event, MessageEvent):
            self.messages.append(event)
        elif isinstance(event, ToolCallEvent):
            self.tool_calls.append(event)
        elif isinstance(event, ToolResultEvent):
            self.tool_results.append(event)
        elif isinstance(event, UsageEvent):
            self._usage_seen = True
            self._input += event.input_tokens
            self._output += event.output_tokens
            self._total += (
                event.total_tokens
                if event.total_tokens is not None
                else event.input_tokens + event.output_tokens
            )
            if event.model is not None:
                self.model = event.model
        elif isinstance(event, ErrorEvent):
            self.errors.append(event)
        elif isinstance(event, DoneEvent):
            self.done = True
            self.finish_reason = event.finish_reason

    async def drain(self, stream: AsyncIterable[Any]) -> RuntimeStreamEventCollector:
        """Collect every event of an async stream; returns self."""
        async for event in stream:
            self.add(event)
        return self

    def text_for(self, index: int = 0) -> str:
        return "".join(self._text.get(index, ()))

    @property
    def text(self) -> str:
        """The assistant text: the deltas of choice 0, else the last assistant message."""
        if 0 in self._text:
            return self.text_for(0)
        for message in reversed(self.messages):
            if message.role == "assistant":
                return message.content
        return ""

    @property
    def usage(self) -> TokenUsage | None:
        """Summed token usage, or None when no usage was reported (unknown, not zero)."""
        if not self._usage_seen:
            return None
        return TokenUsage(self._input, self._output, self._total)

    @property
    def error(self) -> ErrorEvent | None:
        return self.errors[-1] if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "text": self.text,
            "count": self.count,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "tool_results": [r.to_dict() for r in self.tool_results],
            "usage": usage.to_dict() if usage is not None else None,
            "finish_reason": self.finish_reason,
            "errors": [e.to_dict() for e in self.errors],
        }


class RuntimeEventCollector(RuntimeStreamEventCollector):
    """Collects the task runner's events: the stream events plus run start, the readiness
    decision and the final result."""

    _stream_only = False

    def __init__(self, *, keep_events: bool = True) -> None:
        super().__init__(keep_events=keep_events)
        self.started: RunStartedEvent | None = None
        self.readiness: KnowledgeReadinessDecision | None = None
        self.result: AgentTaskRunResult | None = None

    def add(self, event: AgentRuntimeEvent | Mapping[str, Any]) -> Any:
        return super().add(event)  # type: ignore[arg-type]

    __call__ = add

    def _fold(self, event: Any) -> None:
        if isinstance(event, RunStartedEvent):
            self.started = event
        elif isinstance(event, ReadinessEvent):
            self.readiness = event.decision
        elif isinstance(event, RunFinishedEvent):
            self.result = event.result
        else:
            super()._fold(event)

    @property
    def status(self) -> str | None:
        """The run's final status once `run.finished` arrived."""
        return self.result.status if self.result is not None else None


def create_runtime_stream_event_collector(
    *, keep_events: bool = True
) -> RuntimeStreamEventCollector:
    """A collector for backend stream events (see `RuntimeStreamEventCollector`)."""
    return RuntimeStreamEventCollector(keep_events=keep_events)


def create_runtime_event_collector(*, keep_events: bool = True) -> RuntimeEventCollector:
    """A collector for the task runner's events (see `RuntimeEventCollector`)."""
    return RuntimeEventCollector(keep_events=keep_events)
