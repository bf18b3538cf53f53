"""OpenTelemetry spans of a run, after the GenAI semantic conventions (ours; the original leaves
OTLP to the product). Fed the same stream events as the trace bridge.

One `invoke_agent {agent}` span (INTERNAL) per run; one `{operation} {model}` span (CLIENT,
`chat {model}` by default) per `llm_call`, timed by its latency and carrying token usage and
finish reason; one `execute_tool {tool}` span (INTERNAL) from each `tool_call` to its
`tool_result`. Every span has `gen_ai.operation.name` and `gen_ai.provider.name`. Content
(`gen_ai.output.messages`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`) is recorded
only with `capture_content=True`, secret-scrubbed. Spans go to `tracer_provider` (an SDK
`TracerProvider`), else to the global one (a no-op unless the application installed one).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import orjson
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from ._scrub import SanitizeOptions, sanitize_text, scrub_payload
from .errors import EventParseError, ValidationError
from .types import (
    RUNTIME_STREAM_EVENT_TYPES,
    AgentTaskSpec,
    ArtifactEvent,
    BackendErrorEvent,
    BackendStartEvent,
    FinalEvent,
    LlmCallEvent,
    ProposalCreatedEvent,
    ReadinessEndEvent,
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

__all__ = ["GenAISpanRecorder", "record_gen_ai_spans"]

TRACER_NAME = "agent_runtime"
DEFAULT_PROVIDER_NAME = "agent_runtime"
"""`gen_ai.provider.name` before a backend is known (a run blocked on readiness has none)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = timedelta(microseconds=1)
_MAX_STATUS = 200


def _ns(timestamp: str | None) -> int | None:
    """Epoch nanoseconds of an ISO timestamp (None when absent or unparsable: now)."""
    if not timestamp:
        return None
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return ((parsed - _EPOCH) // _NS) * 1000


def _finite(value: Any) -> TypeGuard[float]:
    return type(value) in (int, float) and math.isfinite(value)


def _event(event: Any) -> Any:
    if isinstance(event, Mapping | str | bytes):
        try:
            return parse_runtime_stream_event(event)
        except EventParseError as exc:
            raise ValidationError(f"GenAISpanRecorder: {exc.message}") from None
    if getattr(type(event), "TYPE", None) not in RUNTIME_STREAM_EVENT_TYPES:
        raise ValidationError(
            f"GenAISpanRecorder: expected a runtime stream event, got {type(event).__name__}"
        )
    return event


class GenAISpanRecorder:
    """Feed it every event of a run (`record`, or `wrap` the stream); `end()` closes what is
    still open. One recorder per run."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        agent_name: str | None = None,
        agent_id: str | None = None,
        provider_name: str | None = None,
        operation: str = "chat",
        capture_content: bool = False,
        scrub: SanitizeOptions | None = None,
    ) -> None:
        for name, value in (
            ("agent_name", agent_name),
            ("agent_id", agent_id),
            ("provider_name", provider_name),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValidationError(f"GenAISpanRecorder: {name} must be a non-empty string")
        if not isinstance(operation, str) or not operation:
            raise ValidationError("GenAISpanRecorder: operation must be a non-empty string")
        if type(capture_content) is not bool:
            raise ValidationError("GenAISpanRecorder: capture_content must be a bool")
        if scrub is not None and not isinstance(scrub, SanitizeOptions):
            raise ValidationError("GenAISpanRecorder: scrub must be SanitizeOptions")
        if tracer_provider is not None and not callable(
            getattr(tracer_provider, "get_tracer", None)
        ):
            raise ValidationError("GenAISpanRecorder: tracer_provider has no get_tracer()")
        self._tracer: Tracer = (
            tracer_provider.get_tracer(TRACER_NAME)
            if tracer_provider is not None
            else otel_trace.get_tracer(TRACER_NAME)
        )
        self.agent_name = agent_name
        self.agent_id = agent_id
        self.operation = operation
        self.capture_content = capture_content
        self._scrub = scrub
        self._configured_provider = provider_name
        self._provider = provider_name or DEFAULT_PROVIDER_NAME
        self._agent: Span | None = None
        self._tools: dict[str, Span] = {}
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tokens: list[float] = [0, 0]
        self._usage_seen = False
        self._ended = False

    # -- spans ----------------------------------------------------------------------------------

    def _agent_span(self, task: AgentTaskSpec | None, start: int | None) -> Span:
        if self._agent is None:
            name = self.agent_name or (task.id if task is not None else None)
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": self._provider,
            }
            if name:
                attrs["gen_ai.agent.name"] = name
            if self.agent_id:
                attrs["gen_ai.agent.id"] = self.agent_id
            if task is not None:
                attrs["agent_runtime.task.id"] = task.id
                if task.domain:
                    attrs["agent_runtime.task.domain"] = task.domain
            self._agent = self._tracer.start_span(
                f"invoke_agent {name}" if name else "invoke_agent",
                kind=SpanKind.INTERNAL,
                attributes=attrs,
                start_time=start,
            )
        return self._agent

    def _child(self, name: str, kind: SpanKind, attrs: dict[str, Any], event: Any) -> Span:
        parent = self._agent_span(getattr(event, "task", None), _ns(event.timestamp))
        ctx = otel_trace.set_span_in_context(parent)
        attrs["gen_ai.provider.name"] = self._provider
        start = _ns(event.timestamp)
        latency = event.latency_ms if isinstance(event, LlmCallEvent) else None
        if start is not None and _finite(latency) and latency >= 0:
            start -= int(latency * 1_000_000)
        return self._tracer.start_span(
            name, context=ctx, kind=kind, attributes=attrs, start_time=start
        )

    def _json(self, value: Any) -> str:
        clean = scrub_payload(_wire(value), self._scrub)
        if isinstance(clean, str):  # already text (arguments as the model streamed them)
            return clean
        try:
            return orjson.dumps(clean).decode()
        except TypeError:
            return sanitize_text(repr(value), self._scrub)

    def _fail(self, span: Span, error_type: str, message: str) -> None:
        span.set_status(Status(StatusCode.ERROR, sanitize_text(message, self._scrub)[:_MAX_STATUS]))
        span.set_attribute("error.type", error_type)

    # -- events ---------------------------------------------------------------------------------

    def record(self, event: RuntimeStreamEvent | Mapping[str, Any]) -> None:
        """Add one stream event (typed, or its wire dict) to the run's spans."""
        typed = _event(event)
        if self._ended:
            raise ValidationError("GenAISpanRecorder: the run's spans have ended")
        at = _ns(typed.timestamp)
        if isinstance(typed, TextDeltaEvent):
            self._text.append(typed.text)
        elif isinstance(typed, ReasoningDeltaEvent):
            self._reasoning.append(typed.text)
        elif isinstance(typed, TaskStartEvent):
            self._agent_span(typed.task, at)
        elif isinstance(typed, ReadinessEndEvent):
            agent = self._agent_span(typed.task, at)
            if typed.decision is not None:
                agent.set_attribute("agent_runtime.readiness.status", typed.decision.status)
            agent.set_attribute("agent_runtime.readiness.score", typed.knowledge.readiness_score)
        elif isinstance(typed, SessionCreatedEvent | SessionResumedEvent):
            agent = self._agent_span(typed.task, at)
            agent.set_attribute("gen_ai.conversation.id", typed.session.id)
        elif isinstance(typed, BackendStartEvent):
            agent = self._agent_span(typed.task, at)
            if self._configured_provider is None:
                self._provider = typed.backend
                agent.set_attribute("gen_ai.provider.name", typed.backend)
        elif isinstance(typed, LlmCallEvent):
            self._llm_call(typed, at)
        elif isinstance(typed, ToolCallEvent):
            self._tool_call(typed)
        elif isinstance(typed, ToolResultEvent):
            self._tool_result(typed, at)
        elif isinstance(typed, ArtifactEvent | ProposalCreatedEvent):
            agent = self._agent_span(typed.task, at)
            attrs = (
                {"agent_runtime.artifact.id": typed.artifact_id}
                if isinstance(typed, ArtifactEvent)
                else {"agent_runtime.proposal.id": typed.proposal_id}
            )
            agent.add_event(f"agent_runtime.{typed.TYPE}", attributes=attrs, timestamp=at)
        elif isinstance(typed, BackendErrorEvent):
            agent = self._agent_span(typed.task, at)
            kind = typed.error.kind if typed.error is not None else "backend"
            self._fail(agent, kind, typed.message)
        elif isinstance(typed, TaskEndEvent):
            self._agent_span(typed.task, at).set_attribute(
                "agent_runtime.task.status", typed.status
            )
        elif isinstance(typed, FinalEvent):
            agent = self._agent_span(typed.task, at)
            agent.set_attribute("agent_runtime.task.status", typed.status)
            if typed.status in ("failed", "aborted"):
                error_type = typed.error.kind if typed.error is not None else typed.status
                self._fail(agent, error_type, typed.reason)
            self.end(end_time=at)

    def _llm_call(self, event: LlmCallEvent, at: int | None) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.request.model": event.model,
        }
        if _finite(event.tokens_in):
            attrs["gen_ai.usage.input_tokens"] = event.tokens_in
            self._tokens[0] += event.tokens_in
            self._usage_seen = True
        if _finite(event.tokens_out):
            attrs["gen_ai.usage.output_tokens"] = event.tokens_out
            self._tokens[1] += event.tokens_out
            self._usage_seen = True
        if event.finish_reason is not None:
            attrs["gen_ai.response.finish_reasons"] = (event.finish_reason,)
        if event.cost_usd is not None:
            attrs["agent_runtime.cost_usd"] = event.cost_usd
        if self.capture_content and (self._text or self._reasoning):
            parts: list[dict[str, str]] = []
            if self._reasoning:
                parts.append({"type": "reasoning", "content": "".join(self._reasoning)})
            if self._text:
                parts.append({"type": "text", "content": "".join(self._text)})
            message = {
                "role": "assistant",
                "parts": parts,
                "finish_reason": event.finish_reason or "stop",
            }
            attrs["gen_ai.output.messages"] = self._json([message])
        self._text.clear()
        self._reasoning.clear()
        span = self._child(f"{self.operation} {event.model}", SpanKind.CLIENT, attrs, event)
        span.end(end_time=at)

    def _tool_key(self, name: str, call_id: str | None) -> str:
        return f"id:{call_id}" if call_id else f"name:{name}"

    def _tool_call(self, event: ToolCallEvent) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.tool_name,
            "gen_ai.tool.type": "function",
        }
        if event.tool_call_id:
            attrs["gen_ai.tool.call.id"] = event.tool_call_id
        if self.capture_content and event.args is not None:
            attrs["gen_ai.tool.call.arguments"] = self._json(event.args)
        key = self._tool_key(event.tool_name, event.tool_call_id)
        earlier = self._tools.pop(key, None)
        if earlier is not None:  # a reused id before its result: never leave a span open
            earlier.end()
        self._tools[key] = self._child(
            f"execute_tool {event.tool_name}", SpanKind.INTERNAL, attrs, event
        )

    def _tool_result(self, event: ToolResultEvent, at: int | None) -> None:
        span = self._tools.pop(self._tool_key(event.tool_name, event.tool_call_id), None)
        if span is None:  # a result without its call: a span of its own, so it is not lost
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": event.tool_name,
                "gen_ai.tool.type": "function",
            }
            if event.tool_call_id:
                attrs["gen_ai.tool.call.id"] = event.tool_call_id
            span = self._child(f"execute_tool {event.tool_name}", SpanKind.INTERNAL, attrs, event)
        if self.capture_content and event.result is not None:
            span.set_attribute("gen_ai.tool.call.result", self._json(event.result))
        span.end(end_time=at)

    def end(self, *, error: BaseException | None = None, end_time: int | None = None) -> None:
        """End every open span (tools, then the run's); with `error`, they end as errors.
        Safe to call twice."""
        if self._ended:
            return
        self._ended = True
        failure: tuple[str, str] | None = None
        if error is not None:
            code = getattr(error, "code", None)
            error_type = code if isinstance(code, str) and code else type(error).__name__
            failure = (error_type, str(error) or type(error).__name__)
        for span in self._tools.values():
            if failure is not None:
                self._fail(span, *failure)
            span.end(end_time=end_time)
        self._tools.clear()
        if self._agent is not None:
            if failure is not None:
                self._fail(self._agent, *failure)
            if self._usage_seen:
                self._agent.set_attribute("gen_ai.usage.input_tokens", self._tokens[0])
                self._agent.set_attribute("gen_ai.usage.output_tokens", self._tokens[1])
            self._agent.end(end_time=end_time)

    async def wrap(
        self, stream: AsyncIterable[RuntimeStreamEvent]
    ) -> AsyncIterator[RuntimeStreamEvent]:
        """Pass `stream` through unchanged, recording each event; the spans end with it (as
        errors when it raises)."""
        try:
            async for event in stream:
                self.record(event)
                yield event
        except Exception as exc:
            self.end(error=exc)
            raise
        finally:
            self.end()


def _wire(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, tuple | list):
        return [_wire(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    return value


def record_gen_ai_spans(
    stream: AsyncIterable[RuntimeStreamEvent], **options: Any
) -> AsyncIterator[RuntimeStreamEvent]:
    """`stream` passed through a fresh `GenAISpanRecorder(**options)`."""
    return GenAISpanRecorder(**options).wrap(stream)
