"""GenAI spans under stress: secrets in error messages, repeated tool-call ids, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent_runtime.tracing import TraceBridgeOptions, create_trace_bridge
from agent_runtime.types import (
    DoneEvent,
    ErrorEvent,
    RunStartedEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

SECRET = "sk-ant-api03-" + "S" * 40


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_error_messages_do_not_carry_secrets_into_spans() -> None:
    exporter = InMemorySpanExporter()
    bridge = create_trace_bridge(TraceBridgeOptions(span_exporter=exporter))
    bridge.record(RunStartedEvent(run_id="r", task_id="t", backend="b", model="m"))
    bridge.record(TextDeltaEvent(text="hi"))
    bridge.record(ErrorEvent(code="backend.http_status", message=f"401: bad key {SECRET}"))
    bridge.record(ErrorEvent(code="tool", message=f"postgres://u:{SECRET[-12:]}x@h/db down"))
    bridge.flush()
    spans = exporter.get_finished_spans()
    assert spans
    for span in spans:
        assert SECRET not in str(span.status.description)
        assert SECRET[-12:] not in str(span.status.description)
        assert SECRET not in str(dict(span.attributes or {}))


def test_a_repeated_tool_call_id_does_not_leak_an_open_span() -> None:
    provider, exporter = _provider()
    bridge = create_trace_bridge(TraceBridgeOptions(tracer_provider=provider))
    bridge.record(RunStartedEvent(run_id="r", task_id="t", backend="b"))
    # two model calls that both number their tool calls from call_0_0, results late
    bridge.record(ToolCallEvent(call_id="call_0_0", name="search", arguments="{}"))
    bridge.record(DoneEvent(finish_reason="tool_calls"))
    bridge.record(ToolCallEvent(call_id="call_0_0", name="fetch", arguments="{}"))
    bridge.record(ToolResultEvent(call_id="call_0_0", output=1))
    bridge.close()
    tools = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    assert sorted(s.name for s in tools) == ["execute_tool fetch", "execute_tool search"]


async def test_cancelled_consumer_ends_every_span() -> None:
    provider, exporter = _provider()
    bridge = create_trace_bridge(TraceBridgeOptions(tracer_provider=provider))
    reached = asyncio.Event()

    async def stream() -> AsyncIterator[Any]:
        yield RunStartedEvent(run_id="r", task_id="t", backend="b", model="m")
        yield TextDeltaEvent(text="a")
        yield ToolCallEvent(call_id="c1", name="slow", arguments="{}")
        reached.set()
        await asyncio.sleep(60)
        yield DoneEvent()

    async def consume() -> None:
        async for _ in bridge.wrap(stream()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(reached.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["chat m", "execute_tool slow", "invoke_agent agent"]


async def test_a_stream_that_raises_marks_the_open_spans_as_errors() -> None:
    from agent_runtime.errors import BackendTransportError

    provider, exporter = _provider()
    bridge = create_trace_bridge(TraceBridgeOptions(tracer_provider=provider))

    async def stream() -> AsyncIterator[Any]:
        yield RunStartedEvent(run_id="r", task_id="t", backend="b", model="m")
        yield TextDeltaEvent(text="a")
        raise BackendTransportError(f"cut, key {SECRET}", code="backend.stream_interrupted")

    with pytest.raises(BackendTransportError):
        async for _ in bridge.wrap(stream()):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"chat m", "invoke_agent agent"}
    for span in spans.values():
        assert span.status.status_code == StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "backend.stream_interrupted"
        assert SECRET not in str(span.status.description)

    exporter.clear()
    bridge = create_trace_bridge(TraceBridgeOptions(tracer_provider=provider))

    async def finite() -> AsyncIterator[Any]:
        yield RunStartedEvent(run_id="r", task_id="t", backend="b")
        yield TextDeltaEvent(text="a")

    wrapped = bridge.wrap(finite())
    async with contextlib.aclosing(wrapped):
        async for event in wrapped:
            if isinstance(event, TextDeltaEvent):
                break  # the consumer stopping early is not an error
    ended = exporter.get_finished_spans()
    assert {s.name for s in ended} == {"chat unknown", "invoke_agent agent"}
    assert all(s.status.status_code != StatusCode.ERROR for s in ended)
