"""The trace bridge (ORIGINAL §11): each mapping row, ids, timestamps, drain and the one-shot
helper, over the fixtures and over a real run of `run_agent_task_stream`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    TraceBridge,
    TraceEvent,
    ValidationError,
    create_trace_bridge,
    to_agent_eval_trace,
)
from agent_runtime.backends import create_iterable_backend
from agent_runtime.runtime import run_agent_task_stream
from agent_runtime.types import (
    AgentTaskSpec,
    FinalEvent,
    ReadinessEndEvent,
    TaskEndEvent,
    TextDeltaEvent,
)
from tests.support.telemetry_fixtures import DECISION, REPORT, TASK, TS, TS_MS, stream_events

EXPECTED: dict[str, tuple[str, dict[str, Any]] | None] = {
    "task_start": (
        "log",
        {"phase": "task_start", "taskId": "task-1", "intent": "answer a customer question"},
    ),
    "readiness_start": ("log", {"phase": "readiness_start", "taskId": "task-1"}),
    "readiness_end": (
        "policy_violation",
        {
            "phase": "readiness_end",
            "taskId": "task-1",
            "status": "blocked",
            "readinessScore": 0.4,
            "blockingGapIds": ["customer-id", "api-token"],
            "nonBlockingGapIds": [],
            "reason": "2 blocking knowledge requirement(s) are missing.",
        },
    ),
    "questions_start": ("log", {"phase": "questions_start", "questionCount": 2}),
    "questions_end": ("log", {"phase": "questions_end", "questionCount": 2, "answerCount": 1}),
    "acquisition_start": ("log", {"phase": "acquisition_start", "planCount": 1}),
    "acquisition_end": ("log", {"phase": "acquisition_end", "planCount": 1, "evidenceCount": 1}),
    "session_created": (
        "log",
        {"phase": "session_created", "sessionId": "sess-1", "backend": "tcloud"},
    ),
    "session_resumed": (
        "log",
        {"phase": "session_resumed", "sessionId": "sess-1", "backend": "tcloud"},
    ),
    "backend_start": ("log", {"phase": "backend_start", "backend": "tcloud"}),
    "text_delta": None,
    "reasoning_delta": None,
    "tool_call": ("log", {"phase": "tool_call", "toolName": "crm", "toolCallId": "call-1"}),
    "tool_result": ("log", {"phase": "tool_result", "toolName": "crm", "toolCallId": "call-1"}),
    "llm_call": (
        "log",
        {
            "phase": "llm_call",
            "model": "gpt-x",
            "tokensIn": 10,
            "tokensOut": 5,
            "costUsd": 0.01,
            "latencyMs": 250.0,
            "finishReason": "stop",
        },
    ),
    "artifact": (
        "state_mutation",
        {
            "phase": "artifact",
            "artifactId": "art-1",
            "name": "report.pdf",
            "mimeType": "application/pdf",
        },
    ),
    "proposal_created": (
        "state_mutation",
        {"phase": "proposal_created", "proposalId": "prop-1", "status": "pending"},
    ),
    "backend_error": (
        "error",
        {"backend": "tcloud", "message": "chat backend returned 503", "recoverable": True},
    ),
    "backend_end": ("log", {"phase": "backend_end", "backend": "tcloud"}),
    "task_end": (
        "error",
        {"phase": "task_end", "status": "failed", "reason": "chat backend returned 503"},
    ),
    "final": (
        "error",
        {"phase": "final", "status": "failed", "reason": "chat backend returned 503"},
    ),
}


@pytest.mark.parametrize("event", stream_events(), ids=lambda e: e.TYPE)
def test_each_mapping_row(event: Any) -> None:
    trace = to_agent_eval_trace(event, run_id="run-1")
    expected = EXPECTED[event.TYPE]
    if expected is None:
        assert trace is None
        return
    assert isinstance(trace, TraceEvent)
    assert (trace.kind, dict(trace.payload)) == expected
    assert (trace.event_id, trace.run_id, trace.span_id, trace.timestamp) == (
        "evt-1",
        "run-1",
        "run-1",
        TS_MS,
    )
    assert "LEAK<" not in str(trace), "arguments, results and texts are never in a trace"


def test_the_table_covers_every_stream_type() -> None:
    assert set(EXPECTED) == {e.TYPE for e in stream_events()}


@pytest.mark.parametrize(
    ("status", "kind"),
    [("completed", "log"), ("blocked", "log"), ("failed", "error"), ("aborted", "error")],
)
def test_task_end_and_final_are_errors_when_failed_or_aborted(status: str, kind: str) -> None:
    for cls in (TaskEndEvent, FinalEvent):
        event = cls(task=TASK, status=status, reason="r", timestamp=TS)  # type: ignore[arg-type]
        trace = to_agent_eval_trace(event, run_id="r")
        assert trace is not None and trace.kind == kind


def test_a_passing_readiness_end_is_a_log() -> None:
    ready = AgentTaskSpec(id="t", intent="i")
    from agent_runtime.eval import score_knowledge_readiness
    from agent_runtime.readiness import decide_knowledge_readiness

    report = score_knowledge_readiness("t", [])
    event = ReadinessEndEvent(
        task=ready, knowledge=report, decision=decide_knowledge_readiness(report), timestamp=TS
    )
    trace = to_agent_eval_trace(event, run_id="r")
    assert trace is not None and trace.kind == "log" and trace.payload["status"] == "ready"
    undecided = ReadinessEndEvent(task=TASK, knowledge=REPORT)
    trace = to_agent_eval_trace(undecided, run_id="r")
    assert trace is not None and trace.payload["status"] == DECISION.status, "decided when absent"


def test_ids_count_per_bridge_and_drain_keeps_order() -> None:
    bridge = create_trace_bridge("run-9", span_id="span-a")
    assert isinstance(bridge, TraceBridge)
    traces = bridge.drain(stream_events())
    mapped = [t for t in EXPECTED if EXPECTED[t] is not None]
    assert [t.payload.get("phase", "backend_error") for t in traces] == mapped
    assert [t.event_id for t in traces] == [f"evt-{i}" for i in range(1, len(mapped) + 1)]
    assert {t.span_id for t in traces} == {"span-a"} and {t.run_id for t in traces} == {"run-9"}
    other = create_trace_bridge("run-9")
    first = other.to_trace_event(stream_events()[0])
    assert first is not None and first.event_id == "evt-1", "each bridge counts on its own"
    assert bridge.to_trace_event(TextDeltaEvent(text="x")) is None
    assert bridge.to_trace_event(stream_events()[0]).event_id == f"evt-{len(mapped) + 1}"  # type: ignore[union-attr]


def test_new_event_id_and_the_one_shot_helper() -> None:
    names = iter(["a", "b"])
    bridge = create_trace_bridge("r", new_event_id=lambda: next(names))
    assert [t.event_id for t in bridge.drain(stream_events()[:2])] == ["a", "b"]
    assert to_agent_eval_trace(stream_events()[0], run_id="r").event_id == "evt-1"  # type: ignore[union-attr]
    assert to_agent_eval_trace(stream_events()[0], run_id="r").event_id == "evt-1", (  # type: ignore[union-attr]
        "a fresh bridge per call"
    )
    assert (
        to_agent_eval_trace(stream_events()[0], run_id="r", new_event_id=lambda: "z").event_id
        == "z"
    )  # type: ignore[union-attr]


def test_timestamps_come_from_the_event_else_now() -> None:
    start = time.time_ns() // 1_000_000
    untimed = to_agent_eval_trace(FinalEvent(task=TASK, status="completed", reason="r"), run_id="r")
    garbled = to_agent_eval_trace(
        FinalEvent(task=TASK, status="completed", reason="r", timestamp="soon"), run_id="r"
    )
    end = time.time_ns() // 1_000_000
    for trace in (untimed, garbled):
        assert trace is not None and start <= trace.timestamp <= end
    offset = to_agent_eval_trace(
        FinalEvent(
            task=TASK, status="completed", reason="r", timestamp="2026-12-01T09:14:37.123+01:00"
        ),
        run_id="r",
    )
    assert offset is not None and offset.timestamp == TS_MS


def test_secrets_in_payload_strings_are_scrubbed() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 5
    trace = to_agent_eval_trace(
        FinalEvent(task=TASK, status="failed", reason=f"401 with {key}", timestamp=TS), run_id="r"
    )
    assert (
        trace is not None
        and key not in trace.payload["reason"]
        and "[REDACTED:" in trace.payload["reason"]
    )


def test_boundaries() -> None:
    with pytest.raises(ValidationError, match=r"^createTraceBridge: runId is required$"):
        create_trace_bridge("")
    with pytest.raises(ValidationError, match="runId is required"):
        create_trace_bridge(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        create_trace_bridge("r", span_id="")
    with pytest.raises(ValidationError):
        create_trace_bridge("r", new_event_id="evt")  # type: ignore[arg-type]
    bridge = create_trace_bridge("r")
    with pytest.raises(ValidationError):
        bridge.to_trace_event({"type": "text.delta"})
    from tests.support.telemetry_fixtures import agent_events

    with pytest.raises(ValidationError):
        bridge.to_trace_event(agent_events()[-2])  # control_end is not a stream event
    with pytest.raises(ValidationError):
        create_trace_bridge("r", new_event_id=lambda: "").to_trace_event(stream_events()[0])
    assert bridge.to_trace_event(stream_events()[0].to_dict()).event_id == "evt-1"  # type: ignore[union-attr]


async def test_a_real_stream_drains_to_trace_events() -> None:
    async def stream(_input: Any, _ctx: Any) -> AsyncIterator[Any]:
        yield TextDeltaEvent(text="hi")

    backend = create_iterable_backend(kind="echo", stream=stream)
    events = [
        e
        async for e in run_agent_task_stream(
            AgentTaskSpec(id="t", intent="greet"), backend, session_id="s"
        )
    ]
    traces = create_trace_bridge("run-x").drain(events)
    assert [t.payload["phase"] for t in traces] == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "session_created",
        "backend_start",
        "backend_end",
        "task_end",
        "final",
    ]
    assert all(t.kind == "log" for t in traces)
    assert traces[0].timestamp <= traces[-1].timestamp
