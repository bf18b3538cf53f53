"""Hostile input: malformed wire events are typed parse errors; malformed raw backend events
and chat chunks map to nothing or to valid events and never fail a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    AgentBackendContext,
    BackendRetryPolicy,
    EventParseError,
    create_openai_compatible_backend,
    create_sandbox_prompt_backend,
    parse_event,
    parse_runtime_stream_event,
)
from agent_runtime.types import LlmCallEvent
from tests.backends.drive import drain

from .raw_http import RawServer, sse_head


@pytest.mark.parametrize(
    "data",
    [
        {"type": "text_delta", "text": "a", 1: 2, "b": 3},  # mixed key types
        '{"type":"tool_result","toolName":"t","result":' + "[" * 1000 + "]" * 1000 + "}",
        '{"type":"artifact","artifactId":"a","content":' + "[" * 1000 + "]" * 1000 + "}",
        {"type": "text.delta", "text": "the previous vocabulary"},
        {"type": "tool_call", "toolName": 5},
    ],
    ids=["mixed-keys", "deep-result", "deep-content", "old-type", "wrong-field-type"],
)
def test_parse_event_refuses_hostile_input_typed(data: Any) -> None:
    with pytest.raises(EventParseError):
        parse_event(data)


HOSTILE_RAW: list[Any] = [
    None,
    5,
    "delta",
    ["type", "delta"],
    {"type": None},
    {"type": ["delta"]},
    {"type": "delta", "text": 5, "data": {"text": ["x"], "delta": {}, "part": 3}},
    {"type": "message.part.updated", "data": {"part": {"type": 1, "text": 2}}},
    {"type": "tool_call", "data": {"name": {"n": 1}, "id": 7}, "toolName": []},
    {"type": "tool_result", "data": "not-an-object", "toolCallId": 3},
    {"type": "artifact", "data": {"id": 5, "artifactId": ""}},
    {"type": "artifact", "id": "a", "name": 1, "mimeType": [], "uri": {}, "metadata": [1]},
    {"type": "proposal", "data": {"id": "p", "title": 9, "status": ["pending"]}},
    {"type": "final", "data": {"finalText": 0, "text": None}},
    {"type": "delta", "text": "survivor"},
]


async def test_a_sandbox_stream_of_garbage_yields_only_valid_events() -> None:
    async def stream_prompt(box: Any, message: str, ctx: AgentBackendContext) -> AsyncIterator[Any]:
        for raw in HOSTILE_RAW:
            yield raw

    backend = create_sandbox_prompt_backend(get_box=lambda i, c: None, stream_prompt=stream_prompt)
    events = await drain(backend)
    for event in events:  # every event survives the wire
        assert parse_runtime_stream_event(json.loads(event.to_json())) == event
    assert [e.type for e in events] == [
        "tool_call",
        "tool_result",
        "artifact",
        "proposal_created",
        "text_delta",
    ]
    assert (events[0].tool_name, events[0].tool_call_id) == ("tool", None)
    artifact = events[2]
    assert (artifact.name, artifact.mime_type, artifact.uri, artifact.metadata) == (
        None,
        None,
        None,
        None,
    )
    assert (events[3].title, events[3].status) == ("p", None)
    assert events[-1].text == "survivor"


HOSTILE_CHUNKS: list[Any] = [
    {"choices": "not a list"},
    {"choices": [5]},
    {"choices": [{"delta": "text"}]},
    {"choices": [{"delta": {"content": 5}}]},
    {"choices": [{"delta": {"content": ["a"]}, "finish_reason": 3}]},
    {"choices": [{"delta": {"tool_calls": "x"}}]},
    {"choices": [{"delta": {"tool_calls": [{"index": -1}, {"index": True}, None]}}]},
    {"choices": [{"delta": {"reasoning_content": 7}}]},
    {"usage": {"prompt_tokens": -1, "completion_tokens": "3"}},
    {"usage": {"prompt_tokens": True}},
    {"usage": "lots"},
    {"type": "message_start", "message": "x"},
    {"type": "message_delta", "delta": [], "usage": None},
    [1, 2],
    "a string",
    None,
    {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]},
]


async def test_hostile_chat_chunks_never_fail_the_stream() -> None:
    async def handler(n: int, body: bytes, r: asyncio.StreamReader, w: Any) -> None:
        wire = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in HOSTILE_CHUNKS)
        w.write(sse_head() + wire + b"data: [DONE]\n\n")

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(
            api_key="k",
            base_url=server.base_url,
            model="m",
            retry=BackendRetryPolicy(max_attempts=1),
        )
        events = await drain(backend)
        await backend.aclose()
    assert [(e.type, e.text) for e in events] == [("text_delta", "ok")]
    assert not any(isinstance(e, LlmCallEvent) for e in events)  # no usable usage reported
