"""Collectors (ORIGINAL §9): sanitized copies of every event, and the stream summary (counts by
type, text from the raw deltas, first session, last final), fed by the real run loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    RuntimeEventCollector,
    RuntimeStreamEventCollector,
    RuntimeStreamEventSummary,
    RuntimeTelemetryOptions,
    ValidationError,
    create_runtime_event_collector,
    create_runtime_stream_event_collector,
    sanitize_agent_runtime_event,
    sanitize_runtime_stream_event,
)
from agent_runtime.backends import create_iterable_backend
from agent_runtime.eval import ControlDecision, ControlEvalResult
from agent_runtime.runtime import run_agent_task, run_agent_task_stream
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskSpec,
    FinalEvent,
    RuntimeSession,
    SessionCreatedEvent,
    SessionResumedEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from tests.support.telemetry_fixtures import SESSION, TASK, TS, agent_events, stream_events

SECRET_INPUT = "customer 42 lives at 1 Main St"


def test_event_collector_keeps_sanitized_copies() -> None:
    collector = create_runtime_event_collector()
    assert isinstance(collector, RuntimeEventCollector) and collector.events == []
    for event in agent_events():
        collector.on_event(event)
    assert collector.events == [sanitize_agent_runtime_event(e) for e in agent_events()]
    assert "LEAK<" not in str(collector.events)
    opted = create_runtime_event_collector(RuntimeTelemetryOptions(include_inputs=True))
    opted.on_event(agent_events()[0])
    assert "LEAK<task.inputs>" in str(opted.events)


def test_stream_collector_summary() -> None:
    collector = create_runtime_stream_event_collector()
    assert isinstance(collector, RuntimeStreamEventCollector)
    empty = collector.summary()
    assert empty.to_dict() == {"eventCount": 0, "eventCountsByType": {}, "finalText": ""}
    other = RuntimeSession.new("tcloud", "sess-2")
    events: list[Any] = [
        SessionResumedEvent(task=TASK, session=SESSION, timestamp=TS),
        TextDeltaEvent(text="Hel", task=TASK, session=SESSION),
        ToolCallEvent(tool_name="crm", args={"q": SECRET_INPUT}, task=TASK),
        TextDeltaEvent(text="lo", task=TASK, session=SESSION),
        SessionCreatedEvent(task=TASK, session=other, timestamp=TS),
        FinalEvent(task=TASK, status="failed", reason="first", timestamp=TS),
        FinalEvent(task=TASK, status="completed", reason="backend completed", timestamp=TS),
    ]
    for event in events:
        collector.on_event(event)
    summary = collector.summary()
    assert isinstance(summary, RuntimeStreamEventSummary)
    assert summary.to_dict() == {
        "eventCount": 7,
        "eventCountsByType": {
            "session_resumed": 1,
            "text_delta": 2,
            "tool_call": 1,
            "session_created": 1,
            "final": 2,
        },
        "firstSessionId": "sess-1",
        "finalStatus": "completed",
        "finalReason": "backend completed",
        "finalText": "Hello",
    }
    assert collector.events == [sanitize_runtime_stream_event(e) for e in events]
    assert SECRET_INPUT not in str(collector.events)
    summary.event_counts_by_type["text_delta"] = 99  # type: ignore[index]
    assert collector.summary().event_counts_by_type["text_delta"] == 2, "the counts are a copy"


def test_the_text_comes_from_the_raw_deltas() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 5
    collector = create_runtime_stream_event_collector()
    collector.on_event(TextDeltaEvent(text=f"key {key}"))
    assert key not in str(collector.events), "the kept copy is scrubbed"
    assert collector.summary().final_text == f"key {key}", "the summary text is the raw text"


def test_every_stream_event_is_counted_and_wire_dicts_are_accepted() -> None:
    collector = create_runtime_stream_event_collector()
    for i, event in enumerate(stream_events()):
        collector.on_event(event.to_dict() if i % 2 else event.to_json())
    summary = collector.summary()
    assert summary.event_count == len(stream_events())
    assert set(summary.event_counts_by_type) == {e.TYPE for e in stream_events()}
    assert summary.first_session_id == "sess-1" and summary.final_status == "failed"


def test_bad_events_change_nothing() -> None:
    collector = create_runtime_stream_event_collector()
    with pytest.raises(ValidationError):
        collector.on_event({"type": "text.delta", "text": "x"})
    with pytest.raises(ValidationError):
        collector.on_event(agent_events()[-2])  # control_end is not a stream event
    assert collector.events == [] and collector.summary().event_count == 0
    runtime = create_runtime_event_collector()
    with pytest.raises(ValidationError):
        runtime.on_event(TextDeltaEvent(text="x"))  # type: ignore[arg-type]
    assert runtime.events == []
    with pytest.raises(ValidationError):
        create_runtime_stream_event_collector({"include_inputs": True})  # type: ignore[arg-type]


# --- fed by the real run loops ---------------------------------------------------------------


async def _stream(_input: AgentBackendInput, _ctx: AgentBackendContext) -> AsyncIterator[Any]:
    yield TextDeltaEvent(text="Hi ")
    yield ToolCallEvent(tool_name="crm", tool_call_id="c1", args={"where": SECRET_INPUT})
    yield TextDeltaEvent(text="there")


async def test_stream_collector_over_run_agent_task_stream() -> None:
    task = AgentTaskSpec(id="t-stream", intent="greet", inputs={"who": SECRET_INPUT})
    backend = create_iterable_backend(kind="echo", stream=_stream)
    collector = create_runtime_stream_event_collector()
    async for event in run_agent_task_stream(task, backend, session_id="s-9"):
        collector.on_event(event)
    summary = collector.summary()
    assert summary.final_text == "Hi there" and summary.final_status == "completed"
    assert summary.first_session_id == "s-9" and summary.final_reason == "backend completed"
    assert summary.event_counts_by_type["text_delta"] == 2
    assert SECRET_INPUT not in str(collector.events)


class _Adapter:
    def observe(self, **_: Any) -> dict[str, int]:
        return {"n": 0}

    def validate(self, **_: Any) -> list[ControlEvalResult]:
        return [ControlEvalResult(id="done", passed=True)]

    def decide(self, ctx: Any) -> ControlDecision:
        return ControlDecision.stop(pass_=True, reason="done")

    def act(self, action: Any, ctx: Any) -> None:
        return None


async def test_event_collector_as_run_agent_task_on_event() -> None:
    task = AgentTaskSpec(id="t-run", intent="check", inputs={"who": SECRET_INPUT})
    collector = create_runtime_event_collector()
    result = await run_agent_task(task, _Adapter(), on_event=collector.on_event)
    types = [e["type"] for e in collector.events]
    assert types[0] == "task_start" and types[-1] == "task_end" and "control_end" in types
    assert collector.events[-1]["status"] == result.status
    assert SECRET_INPUT not in str(collector.events)
