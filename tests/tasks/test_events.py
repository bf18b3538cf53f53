"""Event serialization: hypothesis round-trips and garbage that must fail typed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime import (
    AgentTaskRunResult,
    DataAcquisitionPlan,
    DoneEvent,
    ErrorEvent,
    EventParseError,
    KnowledgeReadinessDecision,
    MessageEvent,
    ReadinessEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StatusEvent,
    TextDeltaEvent,
    TokenUsage,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    UserQuestion,
    parse_event,
    parse_runtime_stream_event,
)
from agent_runtime.knowledge import DataAcquisitionStep
from agent_runtime.types import AGENT_RUNTIME_EVENT_TYPES

text = st.text(max_size=40)
opt_text = st.none() | text
count = st.integers(min_value=0, max_value=2**53)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_leaf |= st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_obj = st.dictionaries(text, json_value, max_size=3)
ms = st.floats(min_value=0, max_value=1e9, allow_nan=False)

stream_events = st.one_of(
    st.builds(TextDeltaEvent, text=text, index=st.integers(0, 8)),
    st.builds(
        MessageEvent,
        role=st.sampled_from(["system", "user", "assistant", "tool"]),
        content=text,
        name=opt_text,
    ),
    st.builds(ToolCallEvent, call_id=text, name=text, arguments=text),
    st.builds(
        ToolResultEvent, call_id=text, output=json_value, name=opt_text, is_error=st.booleans()
    ),
    st.builds(
        UsageEvent,
        input_tokens=count,
        output_tokens=count,
        total_tokens=st.none() | count,
        model=opt_text,
    ),
    st.builds(StatusEvent, status=text, message=opt_text),
    st.builds(
        ErrorEvent,
        code=text,
        message=text,
        retryable=st.booleans(),
        status=st.none() | st.integers(100, 599),
        details=st.none() | json_obj,
    ),
    st.builds(DoneEvent, finish_reason=opt_text),
)
decisions = st.builds(
    KnowledgeReadinessDecision,
    outcome=st.sampled_from(["ready", "ask_user", "acquire_data", "blocked"]),
    reasons=st.lists(text, max_size=2).map(tuple),
    questions=st.lists(
        st.builds(UserQuestion, requirement_key=text, question=text, required=st.booleans()),
        max_size=2,
    ).map(tuple),
    acquisition_plan=st.none()
    | st.builds(
        DataAcquisitionPlan,
        steps=st.lists(
            st.builds(DataAcquisitionStep, requirement_key=text, source=text, description=text),
            max_size=2,
        ).map(tuple),
    ),
    satisfied=st.lists(text, max_size=2).map(tuple),
    missing=st.lists(text, max_size=2).map(tuple),
)
results = st.builds(
    AgentTaskRunResult,
    run_id=text,
    task_id=text,
    status=st.sampled_from(
        ["pending", "running", "needs_input", "completed", "failed", "cancelled"]
    ),
    backend=text,
    started_at_ms=count,
    duration_ms=ms,
    text=text,
    model=opt_text,
    messages=st.lists(
        st.builds(MessageEvent, role=st.just("assistant"), content=text), max_size=2
    ).map(tuple),
    tool_calls=st.lists(
        st.builds(ToolCallEvent, call_id=text, name=text, arguments=text), max_size=2
    ).map(tuple),
    usage=st.none()
    | st.builds(TokenUsage, input_tokens=count, output_tokens=count, total_tokens=count),
    finish_reason=opt_text,
    error=st.none() | st.builds(ErrorEvent, code=text, message=text),
    readiness=st.none() | decisions,
    time_to_first_event_ms=st.none() | ms,
    cost_usd=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    event_count=count,
)
all_events = st.one_of(
    stream_events,
    st.builds(
        RunStartedEvent,
        run_id=text,
        task_id=text,
        backend=text,
        model=opt_text,
        started_at_ms=count,
    ),
    st.builds(ReadinessEvent, decision=decisions),
    st.builds(RunFinishedEvent, result=results),
)


@settings(max_examples=300, deadline=None)
@given(all_events)
def test_round_trip_through_json(event: Any) -> None:
    text_form = event.to_json()
    back = parse_event(text_form)
    assert back == event
    assert type(back) is type(event)
    assert parse_event(event.to_dict()) == event
    assert back.to_json() == text_form


@settings(max_examples=100, deadline=None)
@given(stream_events)
def test_stream_parser_accepts_stream_events(event: Any) -> None:
    assert parse_runtime_stream_event(event.to_json()) == event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60) | st.text(max_size=60) | json_value)
def test_garbage_raises_event_parse_error(data: Any) -> None:
    if not isinstance(data, str | bytes):
        data = orjson.dumps(data)
    try:
        parse_event(data)
    except EventParseError:
        return
    # a garbage input that parses must be a real event that round-trips
    event = parse_event(data)
    assert parse_event(event.to_json()) == event


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(AGENT_RUNTIME_EVENT_TYPES)),
    st.dictionaries(
        st.sampled_from(
            [
                "text",
                "index",
                "role",
                "content",
                "call_id",
                "name",
                "output",
                "input_tokens",
                "output_tokens",
                "status",
                "code",
                "message",
                "decision",
                "result",
                "run_id",
                "task_id",
                "backend",
                "details",
                "retryable",
                "x",
            ]
        ),
        json_value,
        max_size=6,
    ),
)
def test_mutated_fields_never_crash(kind: str, fields: dict[str, Any]) -> None:
    try:
        event = parse_event({"type": kind, **fields})
    except EventParseError:
        return
    assert event.type == kind
    assert parse_event(event.to_json()) == event


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"[]",
        b'{"type": "nope"}',
        b'{"text": "no type"}',
        b'{"type": "text.delta"}',
        b'{"type": "text.delta", "text": 5}',
        b'{"type": "text.delta", "text": "a", "index": -1}',
        b'{"type": "text.delta", "text": "a", "index": true}',
        b'{"type": "text.delta", "text": "a", "extra": 1}',
        b'{"type": "message", "role": "robot", "content": "x"}',
        b'{"type": "usage", "input_tokens": 1.5, "output_tokens": 1}',
        b'{"type": "error", "code": "x", "message": "y", "details": []}',
        b'{"type": "readiness", "decision": {"outcome": "maybe"}}',
        b'{"type": "run.finished", "result": {"run_id": "r"}}',
        b'{"type": "run.finished", "result": {"run_id": "r", "task_id": "t", "status": "done",'
        b' "backend": "b", "started_at_ms": 1, "duration_ms": 1}}',
        b'{"type": "text.delta", "text": "\\ud800"}',
    ],
)
def test_known_bad_inputs(bad: bytes) -> None:
    with pytest.raises(EventParseError):
        parse_event(bad)


def test_stream_parser_refuses_runner_events() -> None:
    started = RunStartedEvent(run_id="r", task_id="t", backend="b")
    with pytest.raises(EventParseError):
        parse_runtime_stream_event(started.to_json())


def test_to_json_refuses_non_json_payload() -> None:
    with pytest.raises(EventParseError):
        ToolResultEvent(call_id="c", output=float("nan")).to_json()
