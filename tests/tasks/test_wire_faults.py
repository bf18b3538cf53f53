"""Byte-exact wire faults on a raw HTTP server: cuts inside an event, empty bodies, replayed
sandbox events, CRLF framing, and the connections a failed or cancelled run leaves open."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2

from agent_runtime import (
    AgentTaskContext,
    AgentTaskSpec,
    BackendRetryPolicy,
    HttpSandboxClient,
    create_openai_compatible_backend,
    run_agent_task,
    run_agent_task_stream,
)
from agent_runtime.backends import STREAM_INTERRUPTED

from .raw_http import RawServer, sse_head

SPEC = AgentTaskSpec(id="t", intent="x")
FAST = BackendRetryPolicy(max_retries=2, initial_delay_s=0.001, max_delay_s=0.002)


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'


async def test_cut_inside_the_usage_event_fails_interrupted() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        w.write(sse_head() + chunk("Hi") + chunk(finish="stop") + USAGE[:40])

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(server.base_url, "k", "m", retry=FAST)
        result = await run_agent_task(SPEC, backend)
        await backend.aclose()
    assert result.status == "failed"
    assert result.error is not None and result.error.code == STREAM_INTERRUPTED
    assert result.text == "Hi"
    assert len(server.requests) == 1


async def test_stream_ending_after_finish_and_usage_without_done_completes() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        w.write(sse_head() + chunk("Hi") + chunk(finish="stop") + USAGE)

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(server.base_url, "k", "m", retry=FAST)
        result = await run_agent_task(SPEC, backend)
        await backend.aclose()
    assert result.status == "completed" and result.text == "Hi"
    assert result.usage is not None and result.usage.total_tokens == 7


async def test_crlf_framing_and_comments() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        wire = b": keep-alive\n\n" + chunk("Hi ") + chunk("there") + USAGE + chunk(finish="stop")
        w.write(sse_head() + wire.replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n")

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(server.base_url, "k", "m", retry=FAST)
        result = await run_agent_task(SPEC, backend)
        await backend.aclose()
    assert result.status == "completed" and result.text == "Hi there"
    assert result.usage is not None and result.usage.input_tokens == 5


async def test_empty_body_and_error_body_cut_are_retried_before_the_first_byte() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        if n == 0:  # 200 headers, then the connection closes: no body byte at all
            w.write(sse_head())
        elif n == 1:  # 503 whose body is cut short
            w.write(b"HTTP/1.1 503 Busy\r\ncontent-length: 100\r\nretry-after: 0\r\n\r\n{")
        else:
            w.write(sse_head() + chunk("ok", finish="stop") + b"data: [DONE]\n\n")

    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(
            server.base_url, "k", "m", retry=FAST, sleep=sleep
        )
        result = await run_agent_task(SPEC, backend)
        await backend.aclose()
    assert result.status == "completed" and result.text == "ok"
    assert len(server.requests) == 3
    assert len(slept) == 2 and slept[1] == 0.0  # the 503's Retry-After: 0


async def test_empty_bodies_exhaust_retries_as_transport_error() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        w.write(sse_head())

    async with RawServer(handler) as server:
        backend = create_openai_compatible_backend(server.base_url, "k", "m", retry=FAST)
        result = await run_agent_task(SPEC, backend)
        await backend.aclose()
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "backend.transport"
    assert result.error.retryable is True and result.error.status == 200
    assert result.error.details == {"attempts": 3}
    assert len(server.requests) == 3


SANDBOX_EVENTS = [{"type": "text.delta", "text": f"{i} "} for i in range(5)] + [
    {"type": "done", "finish_reason": "stop"}
]


async def test_sandbox_resume_skips_events_the_orchestrator_replays() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        # ignores Last-Event-ID and replays the execution from its start
        w.write(sse_head())
        for i, event in enumerate(SANDBOX_EVENTS):
            if n == 0 and i == 3:
                return  # the first connection is cut after three events
            w.write(f"id: {i}\ndata: {json.dumps(event)}\n\n".encode())

    async with RawServer(handler) as server:
        client = HttpSandboxClient(server.base_url, retry=FAST)
        got = [e.id async for e in client.stream_prompt("x", execution_id="e")]
        await client.aclose()
    assert got == [str(i) for i in range(len(SANDBOX_EVENTS))]
    assert len(server.requests) == 2


async def test_no_connection_left_open_after_a_cut_or_a_cancel() -> None:
    async def handler(
        n: int, body: bytes, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        if json.loads(body)["model"] == "cut":
            w.write(sse_head() + chunk("a") + b"data: {")
            await w.drain()
            await r.read()  # the body stays open until the client closes the connection
            return
        w.write(sse_head())
        for i in range(10_000):
            w.write(chunk(f"{i} "))
            await w.drain()
            await asyncio.sleep(0.005)

    async with RawServer(handler) as server:
        cut = create_openai_compatible_backend(
            server.base_url, "k", "cut", retry=FAST, timeout=httpx2.Timeout(5.0, read=0.2)
        )
        result = await run_agent_task(SPEC, cut)
        assert result.status == "failed" and result.error is not None
        assert result.error.code == STREAM_INTERRUPTED  # a read timeout mid-stream
        slow = create_openai_compatible_backend(server.base_url, "k", "slow", retry=FAST)
        ctx = AgentTaskContext()
        seen = 0
        async for event in run_agent_task_stream(SPEC, slow, context=ctx):
            seen += event.type == "text.delta"
            if seen == 3:
                ctx.cancel()
        # both backends' clients are still open: their responses must have been closed anyway
        for _ in range(300):
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 0
        await cut.aclose()
        await slow.aclose()


def test_a_leading_byte_order_mark_does_not_swallow_the_first_event() -> None:
    from agent_runtime.backends._sse_decode import SSEDecoder, SSEMessage

    for split in range(0, 4):
        wire = b"\xef\xbb\xbfdata: first\n\ndata: \xef\xbb\xbfsecond\n\n"
        dec = SSEDecoder()
        got = dec.feed(wire[:split]) + dec.feed(wire[split:])
        # only the stream's leading BOM is dropped, as the SSE specification says
        assert got == [SSEMessage(data="first"), SSEMessage(data="\ufeffsecond")]
