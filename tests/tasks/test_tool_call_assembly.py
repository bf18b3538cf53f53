"""Tool-call assembly from servers that omit (or null) the fragment `index`, as several
OpenAI-compatible servers do: distinct calls stay distinct, fragments of one call merge."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent_runtime import BackendRetryPolicy, create_openai_compatible_backend
from agent_runtime.types import ToolCallEvent
from tests.backends.drive import drain

from .raw_http import RawServer, sse_head

ONCE = BackendRetryPolicy(max_attempts=1)


def calls_chunk(calls: list[dict[str, Any]], finish: str | None = None) -> bytes:
    body = {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


def fn(name: str | None = None, arguments: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name is not None:
        out["name"] = name
    if arguments is not None:
        out["arguments"] = arguments
    return out


async def _run(wire: bytes) -> Any:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        w.write(sse_head() + wire + b"data: [DONE]\n\n")

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(
            api_key="k", base_url=server.base_url, model="m", retry=ONCE
        )
        events = await drain(backend)
        await backend.aclose()
    return [(e.tool_call_id, e.tool_name, e.args) for e in events if isinstance(e, ToolCallEvent)]


async def test_complete_calls_without_index_in_separate_chunks_stay_distinct() -> None:
    wire = calls_chunk([{"id": "call_1", "function": fn("lookup", '{"q":"a"}')}])
    wire += calls_chunk([{"id": "call_2", "function": fn("add", '{"a":1}')}], finish="tool_calls")
    assert await _run(wire) == [("call_1", "lookup", {"q": "a"}), ("call_2", "add", {"a": 1})]


async def test_fragments_without_index_continue_the_open_call() -> None:
    wire = calls_chunk([{"id": "call_1", "function": fn("lookup", "")}])
    wire += calls_chunk([{"function": fn(arguments='{"q":')}])
    wire += calls_chunk([{"function": fn(arguments='"a"}')}])
    wire += calls_chunk([{"id": "call_2", "function": fn("add", '{"a":')}])
    wire += calls_chunk([{"function": fn(arguments="1}")}], finish="tool_calls")
    assert await _run(wire) == [("call_1", "lookup", {"q": "a"}), ("call_2", "add", {"a": 1})]


async def test_null_index_is_accepted() -> None:
    wire = calls_chunk([{"index": None, "id": "call_1", "function": fn("lookup", "")}])
    wire += calls_chunk([{"index": None, "function": fn(arguments="{}")}], finish="tool_calls")
    assert await _run(wire) == [("call_1", "lookup", {})]


async def test_several_unindexed_calls_in_one_chunk_stay_distinct() -> None:
    wire = calls_chunk(
        [
            {"function": fn("lookup", '{"q":"a"}')},
            {"function": fn("add", '{"a":1}')},
        ],
        finish="tool_calls",
    )
    got = await _run(wire)
    assert [(name, args) for _id, name, args in got] == [
        ("lookup", {"q": "a"}),
        ("add", {"a": 1}),
    ]
    assert len({call_id for call_id, _n, _a in got}) == 2


async def test_indexed_fragments_interleaved_across_calls() -> None:
    wire = calls_chunk([{"index": 1, "id": "b", "function": fn("add", "")}])
    wire += calls_chunk([{"index": 0, "id": "a", "function": fn("lookup", '{"q"')}])
    wire += calls_chunk([{"index": 1, "function": fn(arguments='{"a":2}')}])
    wire += calls_chunk([{"index": 0, "function": fn(arguments=':"z"}')}], finish="tool_calls")
    assert await _run(wire) == [("a", "lookup", {"q": "z"}), ("b", "add", {"a": 2})]


async def test_missing_name_id_and_arguments_get_defaults() -> None:
    wire = calls_chunk([{"index": 0, "function": {}}], finish="tool_calls")
    assert await _run(wire) == [("call_0", "tool", None)]


async def test_non_string_arguments_are_serialized_then_parsed() -> None:
    wire = calls_chunk([{"index": 0, "id": "c", "function": {"name": "f", "arguments": {"a": 1}}}])
    assert await _run(wire) == [("c", "f", {"a": 1})]


async def test_malformed_fragments_are_skipped() -> None:
    wire = calls_chunk(["junk", {"index": "0"}, {"index": 0, "id": "c", "function": "nope"}])
    wire += calls_chunk([{"index": 0, "function": fn("ok", "{}")}], finish="tool_calls")
    assert await _run(wire) == [("c", "ok", {})]
