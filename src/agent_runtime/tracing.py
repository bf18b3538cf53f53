"""Trace bridge: runtime events -> evaluation trace events, and OpenTelemetry spans.

Spans follow the OpenTelemetry GenAI conventions: `invoke_agent {agent}` around a run,
`chat {model}` around the model's output, `execute_tool {name}` from a tool call to its
result, token usage as `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`. Spans are
off unless a tracer provider or span exporter is configured; evaluation trace events are always
produced and sanitized (no credentials leave through a trace).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .errors import EventParseError, InvalidArgumentError
from .sanitize import SanitizeOptions, sanitize_json, sanitize_text
from .types import (
    AgentRuntimeEvent,
    DoneEvent,
    ErrorEvent,
    MessageEvent,
    ReadinessEvent,
    RunFinishedEvent,
    RunStartedEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    parse_event,
)

__all__ = [
    "EVAL_TRACE_KINDS",
    "TraceBridge",
    "TraceBridgeOptions",
    "create_trace_bridge",
    "to_agent_eval_trace",
]

TRACER_NAME = "agent_runtime"

# runtime event type -> evaluation trace kind
EVAL_TRACE_KINDS: dict[str, str] = {
    "run.started": "agent_start",
    "readiness": "readiness",
    "text.delta": "llm_delta",
    "message": "message",
    "tool.call": "tool_call",
    "tool.result": "tool_result",
    "usage": "usage",
    "status": "status",
    "error": "error",
    "done": "llm_end",
    "run.finished": "agent_end",
}


@dataclass(frozen=True, slots=True)
class TraceBridgeOptions:
    """Trace identity and what to emit. Spans need `tracer_provider` or `span_exporter`
    (an OTel SDK exporter, e.g. `InMemorySpanExporter`); without either, none are made."""

    trace_id: str | None = None
    agent_name: str = "agent"
    session_id: str | None = None
    model: str | None = None
    provider_name: str | None = None
    include_deltas: bool = False
    tracer_provider: Any = None
    span_exporter: Any = None
    sanitize: SanitizeOptions | None = None


def _typed(event: Any) -> AgentRuntimeEvent:
    if isinstance(event, Mapping | str | bytes):
        try:
            return parse_event(event)
        except EventParseError as exc:
            raise InvalidArgumentError(exc.message, path="event") from None
    if not isinstance(getattr(event, "type", None), str):
        raise InvalidArgumentError(
            f"expected a runtime event, got {type(event).__name__}", path="event"
        )
    return event  # type: ignore[no-any-return]


def to_agent_eval_trace(
    event: Any, options: TraceBridgeOptions | None = None
) -> dict[str, Any] | None:
    """One evaluation trace event `{trace_id, kind, event_type, timestamp_ms, data}` for a
    runtime event (typed or dict), sanitized; None for text deltas unless `include_deltas`."""
    opts = options if options is not None else TraceBridgeOptions()
    if not isinstance(opts, TraceBridgeOptions):
        raise InvalidArgumentError("must be TraceBridgeOptions", path="options")
    typed = _typed(event)
    if isinstance(typed, TextDeltaEvent) and not opts.include_deltas:
        return None
    data = sanitize_json({k: v for k, v in typed.to_dict().items() if k != "type"}, opts.sanitize)
    if isinstance(typed, ToolCallEvent):
        data["parsed_arguments"] = sanitize_json(typed.parsed_arguments(), opts.sanitize)
    trace_id = opts.trace_id
    if trace_id is None:
        trace_id = getattr(typed, "run_id", None) or (
            typed.result.run_id if isinstance(typed, RunFinishedEvent) else None
        )
    return {
        "trace_id": trace_id,
        "kind": EVAL_TRACE_KINDS.get(typed.type, typed.type),
        "event_type": typed.type,
        "timestamp_ms": time.time_ns() // 1_000_000,
        "agent": opts.agent_name,
        "data": data,
    }


def _tracer(opts: TraceBridgeOptions) -> tuple[Tracer | None, Any]:
    """The tracer to use (None when tracing is off) and the provider this bridge owns."""
    if opts.tracer_provider is not None:
        return opts.tracer_provider.get_tracer(TRACER_NAME), None
    if opts.span_exporter is not None:
        try:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        except ImportError as exc:  # pragma: no cover - the otel extra is not installed
            raise InvalidArgumentError(
                "span_exporter needs opentelemetry-sdk (durable-agent-runtime[otel])",
                path="options.span_exporter",
            ) from exc
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(opts.span_exporter))
        return provider.get_tracer(TRACER_NAME), provider
    return None, None


class TraceBridge:
    """Feed it every runtime event (`record`, or `wrap` a stream); it keeps the evaluation
    trace in `trace` and, when configured, emits GenAI spans."""

    def __init__(self, options: TraceBridgeOptions) -> None:
        self.options = options
        self.trace: list[dict[str, Any]] = []
        self._tracer, self._own_provider = _tracer(options)
        self._agent: Span | None = None
        self._chat: Span | None = None
        self._tools: dict[str, Span] = {}
        self._model = options.model
        self._finish_reasons: list[str] = []
        self._tokens = [0, 0]
        self._usage_seen = False

    @property
    def spans_enabled(self) -> bool:
        return self._tracer is not None

    def record(self, event: Any) -> dict[str, Any] | None:
        """Add one event; returns its evaluation trace event (None when skipped)."""
        typed = _typed(event)
        if self.options.trace_id is None and isinstance(typed, RunStartedEvent):
            self.options = replace(self.options, trace_id=typed.run_id)
        item = to_agent_eval_trace(typed, self.options)
        if item is not None:
            self.trace.append(item)
        if self._tracer is not None:
            self._span(typed)
        return item

    async def wrap(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Pass a stream through unchanged, recording each event; spans close at the end."""
        try:
            async for event in stream:
                self.record(event)
                yield event
        except Exception as exc:
            self._fail_open_spans(exc)
            raise
        finally:
            self.close()

    def _fail_open_spans(self, exc: Exception) -> None:
        """Mark the spans a raising stream leaves open as errors (sanitized message)."""
        if self._tracer is None:
            return
        code = getattr(exc, "code", None)
        kind = code if isinstance(code, str) and code else type(exc).__name__
        message = sanitize_text(str(exc), self.options.sanitize)[:200]
        for span in (*self._tools.values(), self._chat, self._agent_span()):
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, message))
                span.set_attribute("error.type", kind)

    # -- spans ----------------------------------------------------------------------------------

    def _agent_span(self) -> Span:
        if self._agent is None:
            assert self._tracer is not None
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.options.agent_name,
            }
            if self.options.session_id:
                attrs["gen_ai.conversation.id"] = self.options.session_id
            if self._model:
                attrs["gen_ai.request.model"] = self._model
            if self.options.provider_name:
                attrs["gen_ai.provider.name"] = self.options.provider_name
            self._agent = self._tracer.start_span(
                f"invoke_agent {self.options.agent_name}", kind=SpanKind.INTERNAL, attributes=attrs
            )
        return self._agent

    def _child(self, name: str, kind: SpanKind, attrs: dict[str, Any]) -> Span:
        assert self._tracer is not None
        ctx = otel_trace.set_span_in_context(self._agent_span())
        return self._tracer.start_span(name, context=ctx, kind=kind, attributes=attrs)

    def _chat_span(self) -> Span:
        if self._chat is None:
            model = self._model or "unknown"
            attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
            if self.options.provider_name:
                attrs["gen_ai.provider.name"] = self.options.provider_name
            self._chat = self._child(f"chat {model}", SpanKind.CLIENT, attrs)
        return self._chat

    def _end_chat(self) -> None:
        if self._chat is not None:
            if self._finish_reasons:
                self._chat.set_attribute("gen_ai.response.finish_reasons", self._finish_reasons)
            self._chat.end()
            self._chat = None
            self._finish_reasons = []

    def _span(self, event: AgentRuntimeEvent) -> None:
        if isinstance(event, RunStartedEvent):
            if event.model:
                self._model = event.model
            span = self._agent_span()
            span.set_attribute("gen_ai.agent.id", event.task_id)
            if event.model:
                span.set_attribute("gen_ai.request.model", event.model)
        elif isinstance(event, TextDeltaEvent | MessageEvent):
            self._chat_span()
        elif isinstance(event, ToolCallEvent):
            self._chat_span()
            earlier = self._tools.pop(event.call_id, None)
            if earlier is not None:  # the id was reused before its result: never leave it open
                earlier.end()
            self._tools[event.call_id] = self._child(
                f"execute_tool {event.name}",
                SpanKind.INTERNAL,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": event.name,
                    "gen_ai.tool.call.id": event.call_id,
                    "gen_ai.tool.type": "function",
                },
            )
        elif isinstance(event, ToolResultEvent):
            tool = self._tools.pop(event.call_id, None)
            if tool is not None:
                if event.is_error:
                    tool.set_status(Status(StatusCode.ERROR, "tool reported an error"))
                    tool.set_attribute("error.type", "tool_error")
                tool.end()
        elif isinstance(event, UsageEvent):
            chat = self._chat_span()
            if event.model:
                chat.set_attribute("gen_ai.response.model", event.model)
            chat.set_attribute("gen_ai.usage.input_tokens", event.input_tokens)
            chat.set_attribute("gen_ai.usage.output_tokens", event.output_tokens)
            self._tokens[0] += event.input_tokens
            self._tokens[1] += event.output_tokens
            self._usage_seen = True
        elif isinstance(event, DoneEvent):
            if event.finish_reason:
                self._finish_reasons.append(event.finish_reason)
            self._end_chat()
        elif isinstance(event, ErrorEvent):
            target = self._chat if self._chat is not None else self._agent_span()
            message = sanitize_text(event.message, self.options.sanitize)
            target.set_status(Status(StatusCode.ERROR, message[:200]))
            target.set_attribute("error.type", event.code)
        elif isinstance(event, ReadinessEvent):
            self._agent_span().set_attribute(
                "agent_runtime.readiness.outcome", event.decision.outcome
            )
        elif isinstance(event, RunFinishedEvent):
            result = event.result
            agent = self._agent_span()
            agent.set_attribute("agent_runtime.run.status", result.status)
            if result.status in ("failed", "cancelled"):
                code = result.error.code if result.error is not None else result.status
                agent.set_status(Status(StatusCode.ERROR, code))
                agent.set_attribute("error.type", code)
            self.close()

    def close(self) -> None:
        """End every open span (tools, chat, then the agent span); safe to call twice."""
        for span in self._tools.values():
            span.end()
        self._tools.clear()
        self._end_chat()
        if self._agent is not None:
            if self._usage_seen:
                self._agent.set_attribute("gen_ai.usage.input_tokens", self._tokens[0])
                self._agent.set_attribute("gen_ai.usage.output_tokens", self._tokens[1])
            self._agent.end()
            self._agent = None
            self._tokens = [0, 0]
            self._usage_seen = False

    def flush(self) -> None:
        """Close spans and flush the exporter this bridge created (if any)."""
        self.close()
        if self._own_provider is not None:
            self._own_provider.force_flush()


def create_trace_bridge(options: TraceBridgeOptions | None = None) -> TraceBridge:
    """A `TraceBridge`; its trace id is the run id of the first `run.started` unless given."""
    opts = options if options is not None else TraceBridgeOptions()
    if not isinstance(opts, TraceBridgeOptions):
        raise InvalidArgumentError("must be TraceBridgeOptions", path="options")
    if opts.trace_id is not None and (not isinstance(opts.trace_id, str) or not opts.trace_id):
        raise InvalidArgumentError("must be a non-empty string", path="options.trace_id")
    return TraceBridge(opts)
