"""GenAI spans from stream events (ours, after the OpenTelemetry GenAI semantic conventions),
checked with the OTel SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent_runtime import GenAISpanRecorder, ValidationError
from agent_runtime.backends import create_iterable_backend
from agent_runtime.otel import record_gen_ai_spans
from agent_runtime.runtime import run_agent_task_stream
from agent_runtime.types import (
    AgentTaskSpec,
    LlmCallEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tests.support.telemetry_fixtures import TASK, TS, TS_MS, agent_events, stream_events


@pytest.fixture
def otel() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_run_becomes_agent_chat_and_tool_spans(otel: Any) -> None:
    provider, exporter = otel
    recorder = GenAISpanRecorder(tracer_provider=provider)
    for event in stream_events():
        recorder.record(event)
    spans = by_name(exporter)
    assert set(spans) == {"invoke_agent task-1", "chat gpt-x", "execute_tool crm"}
    agent, chat, tool = spans["invoke_agent task-1"], spans["chat gpt-x"], spans["execute_tool crm"]
    for span in spans.values():
        assert attrs(span)["gen_ai.provider.name"] == "tcloud", span.name
        assert "gen_ai.operation.name" in attrs(span)
        assert "LEAK<" not in str(attrs(span)), "no content without capture_content"
    assert (agent.kind, chat.kind, tool.kind) == (
        SpanKind.INTERNAL,
        SpanKind.CLIENT,
        SpanKind.INTERNAL,
    )
    assert chat.parent is not None and chat.parent.span_id == agent.context.span_id
    assert tool.parent is not None and tool.parent.span_id == agent.context.span_id
    a = attrs(agent)
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "task-1"
    assert a["gen_ai.conversation.id"] == "sess-1"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (10, 5)
    assert a["agent_runtime.task.status"] == "failed"
    assert agent.status.status_code == StatusCode.ERROR and a["error.type"] == "transport"
    c = attrs(chat)
    assert c["gen_ai.operation.name"] == "chat" and c["gen_ai.request.model"] == "gpt-x"
    assert (c["gen_ai.usage.input_tokens"], c["gen_ai.usage.output_tokens"]) == (10, 5)
    assert c["gen_ai.response.finish_reasons"] == ("stop",)
    t = attrs(tool)
    assert t["gen_ai.operation.name"] == "execute_tool" and t["gen_ai.tool.name"] == "crm"
    assert t["gen_ai.tool.call.id"] == "call-1" and t["gen_ai.tool.type"] == "function"


def test_span_times_come_from_the_events(otel: Any) -> None:
    provider, exporter = otel
    recorder = GenAISpanRecorder(tracer_provider=provider, agent_name="support-agent")
    for event in stream_events():
        recorder.record(event)
    spans = by_name(exporter)
    chat = spans["chat gpt-x"]
    assert chat.end_time == TS_MS * 1_000_000
    assert chat.start_time == (TS_MS - 250) * 1_000_000, "an llm call span lasts its latency"
    agent = spans["invoke_agent support-agent"]
    assert agent.start_time == agent.end_time == TS_MS * 1_000_000


def test_content_only_when_opted_in_and_scrubbed(otel: Any) -> None:
    provider, exporter = otel
    key = "sk-proj-" + "A1b2C3d4" * 5
    recorder = GenAISpanRecorder(tracer_provider=provider, capture_content=True)
    common: dict[str, Any] = {"task": TASK, "timestamp": TS}
    for event in (
        ToolCallEvent(
            tool_name="crm", tool_call_id="c", args=f'{{"q": "x", "api_key": "{key}"}}', **common
        ),
        ToolResultEvent(tool_name="crm", tool_call_id="c", result={"rows": [1, 2]}, **common),
        TextDeltaEvent(text="Hel", **common),
        TextDeltaEvent(text=f"lo {key}", **common),
        LlmCallEvent(model="m", finish_reason="length", **common),
    ):
        recorder.record(event)
    recorder.end()
    spans = by_name(exporter)
    tool = attrs(spans["execute_tool crm"])
    assert key not in str(tool) and orjson.loads(tool["gen_ai.tool.call.arguments"])["q"] == "x"
    assert orjson.loads(tool["gen_ai.tool.call.result"]) == {"rows": [1, 2]}
    messages = orjson.loads(attrs(spans["chat m"])["gen_ai.output.messages"])
    assert messages[0]["role"] == "assistant" and messages[0]["finish_reason"] == "length"
    assert messages[0]["parts"][0]["content"].startswith("Hello ") and key not in str(messages)


def test_provider_operation_and_agent_options(otel: Any) -> None:
    provider, exporter = otel
    recorder = GenAISpanRecorder(
        tracer_provider=provider,
        agent_name="a",
        agent_id="agent-7",
        provider_name="openai",
        operation="text_completion",
    )
    for event in stream_events():
        recorder.record(event)
    spans = by_name(exporter)
    assert set(spans) == {"invoke_agent a", "text_completion gpt-x", "execute_tool crm"}
    assert {attrs(s)["gen_ai.provider.name"] for s in spans.values()} == {"openai"}
    assert attrs(spans["invoke_agent a"])["gen_ai.agent.id"] == "agent-7"


def test_tool_spans_are_never_left_open(otel: Any) -> None:
    provider, exporter = otel
    recorder = GenAISpanRecorder(tracer_provider=provider)
    recorder.record(ToolCallEvent(tool_name="a", tool_call_id="same", task=TASK))
    recorder.record(ToolCallEvent(tool_name="a", tool_call_id="same", task=TASK))
    recorder.record(ToolResultEvent(tool_name="b", task=TASK))  # a result without its call
    recorder.record(ToolCallEvent(tool_name="c", task=TASK))  # never answered
    assert [s.name for s in exporter.get_finished_spans()] == ["execute_tool a", "execute_tool b"]
    recorder.end()
    recorder.end()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == [
        "execute_tool a",
        "execute_tool a",
        "execute_tool b",
        "execute_tool c",
        "invoke_agent task-1",
    ]


async def _backend_stream(_input: Any, _ctx: Any) -> AsyncIterator[Any]:
    yield TextDeltaEvent(text="hi")
    yield ToolCallEvent(tool_name="search", tool_call_id="t1", args={"q": "x"})
    yield ToolResultEvent(tool_name="search", tool_call_id="t1", result="ok")
    yield LlmCallEvent(model="echo-1", tokens_in=3, tokens_out=2, latency_ms=5.0)


async def test_wrap_a_real_stream(otel: Any) -> None:
    provider, exporter = otel
    backend = create_iterable_backend(kind="echo", stream=_backend_stream)
    task = AgentTaskSpec(id="greeter", intent="greet")
    stream = record_gen_ai_spans(run_agent_task_stream(task, backend), tracer_provider=provider)
    events = [e async for e in stream]
    assert events[-1].TYPE == "final"
    spans = by_name(exporter)
    assert set(spans) == {"invoke_agent greeter", "chat echo-1", "execute_tool search"}
    agent = spans["invoke_agent greeter"]
    assert (
        attrs(agent)["gen_ai.provider.name"] == "echo"
        and agent.status.status_code == StatusCode.UNSET
    )
    assert attrs(agent)["agent_runtime.readiness.status"] == "ready"


async def test_a_raising_stream_marks_the_open_spans_as_errors(otel: Any) -> None:
    provider, exporter = otel

    async def broken() -> AsyncIterator[Any]:
        yield ToolCallEvent(tool_name="slow", tool_call_id="x", task=TASK)
        raise ValidationError("backend fell over with sk-proj-" + "A1b2C3d4" * 5)

    with pytest.raises(ValidationError):
        async for _ in GenAISpanRecorder(tracer_provider=provider).wrap(broken()):
            pass
    spans = by_name(exporter)
    for span in spans.values():
        assert span.status.status_code == StatusCode.ERROR
        assert attrs(span)["error.type"] == "validation"
        assert "sk-proj-" not in (span.status.description or "")


async def test_a_cancelled_consumer_ends_every_span(otel: Any) -> None:
    provider, exporter = otel
    gate = asyncio.Event()

    async def endless() -> AsyncIterator[Any]:
        yield ToolCallEvent(tool_name="t", tool_call_id="x", task=TASK)
        await gate.wait()
        yield TextDeltaEvent(text="never")

    stream = GenAISpanRecorder(tracer_provider=provider).wrap(endless())
    assert (await anext(stream)).TYPE == "tool_call"
    await stream.aclose()
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "execute_tool t",
        "invoke_agent task-1",
    ]


def test_boundaries(otel: Any) -> None:
    provider, _ = otel
    for kwargs in (
        {"agent_name": ""},
        {"provider_name": 3},
        {"operation": ""},
        {"capture_content": "yes"},
        {"tracer_provider": object()},
        {"scrub": "x"},
    ):
        with pytest.raises(ValidationError):
            GenAISpanRecorder(**kwargs)
    recorder = GenAISpanRecorder(tracer_provider=provider)
    with pytest.raises(ValidationError):
        recorder.record(agent_events()[-2])  # control_end is not a stream event
    with pytest.raises(ValidationError):
        recorder.record({"type": "text.delta"})
    recorder.record(stream_events()[0].to_dict())
    recorder.end()
    with pytest.raises(ValidationError, match="ended"):
        recorder.record(stream_events()[0])


def test_without_a_provider_the_global_no_op_tracer_is_used() -> None:
    recorder = GenAISpanRecorder()
    for event in stream_events():
        recorder.record(event)
    recorder.end()


def test_non_finite_usage_is_left_out(otel: Any) -> None:
    provider, exporter = otel
    recorder = GenAISpanRecorder(tracer_provider=provider)
    recorder.record(
        LlmCallEvent(
            model="m", tokens_in=float("nan"), latency_ms=float("inf"), task=TASK, timestamp=TS
        )  # type: ignore[arg-type]
    )
    recorder.end()
    chat = by_name(exporter)["chat m"]
    assert "gen_ai.usage.input_tokens" not in attrs(chat) and chat.start_time == chat.end_time
