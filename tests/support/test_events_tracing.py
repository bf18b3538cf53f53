"""Event collectors and the trace bridge (evaluation trace + GenAI spans via the OTel SDK)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.events import (
    create_runtime_event_collector,
    create_runtime_stream_event_collector,
)
from agent_runtime.knowledge import KnowledgeReadinessDecision
from agent_runtime.tracing import TraceBridgeOptions, create_trace_bridge, to_agent_eval_trace
from agent_runtime.types import (
    AgentTaskRunResult,
    DoneEvent,
    ErrorEvent,
    MessageEvent,
    ReadinessEvent,
    RunFinishedEvent,
    RunStartedEvent,
    TextDeltaEvent,
    TokenUsage,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)

SECRET = "ghp_" + "Q" * 36


def run_events(status: str = "completed") -> list[Any]:
    error = ErrorEvent(code="backend.stream_interrupted", message="cut")
    result = AgentTaskRunResult(
        run_id="run-1",
        task_id="task-1",
        status=status,  # type: ignore[arg-type]
        backend="iterable",
        started_at_ms=1,
        duration_ms=5.0,
        text="Hello world",
        usage=TokenUsage(12, 4, 16),
        error=error if status == "failed" else None,
    )
    return [
        RunStartedEvent(run_id="run-1", task_id="task-1", backend="iterable", model="gpt-test"),
        ReadinessEvent(decision=KnowledgeReadinessDecision(outcome="ready")),
        TextDeltaEvent(text="Hello "),
        ToolCallEvent(call_id="c1", name="lookup", arguments=f'{{"token": "{SECRET}", "q": 1}}'),
        ToolResultEvent(call_id="c1", output={"hits": 2, "_internal": "x"}),
        TextDeltaEvent(text="world"),
        UsageEvent(input_tokens=10, output_tokens=3, model="gpt-test-0611"),
        UsageEvent(input_tokens=2, output_tokens=1),
        DoneEvent(finish_reason="stop"),
        RunFinishedEvent(result=result),
    ]


def test_stream_collector_folds_text_usage_tools() -> None:
    c = create_runtime_stream_event_collector()
    for e in run_events()[2:-1]:
        c(e)
    c.add({"type": "error", "code": "x", "message": "late"})
    assert c.text == "Hello world" and c.count == 8
    assert c.usage == TokenUsage(12, 4, 16)
    assert [t.name for t in c.tool_calls] == ["lookup"]
    assert c.tool_results[0].output["hits"] == 2
    assert c.finish_reason == "stop" and c.done and c.error is not None
    assert c.model == "gpt-test-0611"
    assert c.to_dict()["usage"] == {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}
    with pytest.raises(InvalidArgumentError):
        c.add({"type": "run.started", "run_id": "r", "task_id": "t", "backend": "b"})
    with pytest.raises(InvalidArgumentError):
        c.add({"type": "nope"})
    with pytest.raises(InvalidArgumentError):
        c.add(42)  # type: ignore[arg-type]


def test_collector_without_usage_reports_none_and_message_text() -> None:
    c = create_runtime_stream_event_collector(keep_events=False)
    c.add(MessageEvent(role="assistant", content="full reply"))
    assert c.usage is None and c.text == "full reply" and c.events == []


async def test_runtime_collector_drains_a_stream() -> None:
    async def stream() -> AsyncIterator[Any]:
        for e in run_events():
            yield e

    c = await create_runtime_event_collector().drain(stream())
    assert c.started is not None and c.started.run_id == "run-1"
    assert c.readiness is not None and c.readiness.outcome == "ready"
    assert c.status == "completed" and c.result is not None and c.text == "Hello world"


def test_eval_trace_events_are_sanitized_and_mapped() -> None:
    events = run_events()
    trace = [to_agent_eval_trace(e) for e in events]
    assert trace[2] is None, "deltas are skipped by default"
    kinds = [t["kind"] for t in trace if t is not None]
    assert kinds == [
        "agent_start",
        "readiness",
        "tool_call",
        "tool_result",
        "usage",
        "usage",
        "llm_end",
        "agent_end",
    ]
    call = trace[3]
    assert call is not None and call["trace_id"] is None
    assert SECRET not in str(call) and call["data"]["parsed_arguments"]["q"] == 1
    assert trace[4] is not None and trace[4]["data"]["output"] == {"hits": 2}
    assert trace[0] is not None and trace[0]["trace_id"] == "run-1"
    delta = to_agent_eval_trace(events[2], TraceBridgeOptions(include_deltas=True, trace_id="t"))
    assert delta is not None and delta["data"] == {"text": "Hello ", "index": 0}
    done = to_agent_eval_trace({"type": "done", "finish_reason": "stop"})
    assert done is not None and done["kind"] == "llm_end"
    with pytest.raises(InvalidArgumentError):
        to_agent_eval_trace({"type": "bogus"})


def test_bridge_without_otel_config_makes_no_spans() -> None:
    bridge = create_trace_bridge()
    assert not bridge.spans_enabled
    for e in run_events():
        bridge.record(e)
    assert [t["trace_id"] for t in bridge.trace] == ["run-1"] * len(bridge.trace)


def test_bridge_emits_gen_ai_spans() -> None:
    exporter = InMemorySpanExporter()
    bridge = create_trace_bridge(
        TraceBridgeOptions(agent_name="helper", session_id="s-9", span_exporter=exporter)
    )
    for e in run_events():
        bridge.record(e)
    bridge.flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_agent helper", "chat gpt-test", "execute_tool lookup"}
    agent = spans["invoke_agent helper"]
    chat = spans["chat gpt-test"]
    tool = spans["execute_tool lookup"]
    assert agent.attributes is not None and chat.attributes is not None
    assert tool.attributes is not None
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.conversation.id"] == "s-9"
    assert agent.attributes["gen_ai.usage.input_tokens"] == 12
    assert agent.attributes["gen_ai.usage.output_tokens"] == 4
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.response.model"] == "gpt-test-0611"
    assert tuple(chat.attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert tool.attributes["gen_ai.tool.name"] == "lookup"
    assert tool.attributes["gen_ai.tool.call.id"] == "c1"
    assert chat.parent is not None and tool.parent is not None and agent.context is not None
    assert chat.parent.span_id == agent.context.span_id
    assert tool.parent.span_id == agent.context.span_id
    assert len({s.context.trace_id for s in spans.values() if s.context is not None}) == 1


async def test_wrap_closes_open_spans_and_failure_marks_the_agent_span() -> None:
    exporter = InMemorySpanExporter()
    bridge = create_trace_bridge(TraceBridgeOptions(span_exporter=exporter))

    async def stream() -> AsyncIterator[Any]:
        for e in run_events("failed")[:4]:  # cut before the tool result and the end
            yield e

    seen = [e async for e in bridge.wrap(stream())]
    assert len(seen) == 4
    names = {s.name for s in exporter.get_finished_spans()}
    assert names == {"invoke_agent agent", "chat gpt-test", "execute_tool lookup"}

    exporter.clear()
    bridge = create_trace_bridge(TraceBridgeOptions(span_exporter=exporter))
    for e in run_events("failed"):
        bridge.record(e)
    agent = next(s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent"))
    assert agent.status.status_code == StatusCode.ERROR
    assert agent.attributes is not None
    assert agent.attributes["error.type"] == "backend.stream_interrupted"


def test_bridge_bad_options() -> None:
    with pytest.raises(InvalidArgumentError):
        create_trace_bridge({"trace_id": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        create_trace_bridge(TraceBridgeOptions(trace_id=""))
