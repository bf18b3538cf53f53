"""Byte-exact wire faults on a raw HTTP server: cuts inside an event, close-delimited bodies,
empty bodies, Retry-After, replayed sandbox events, CRLF framing, and the connections a
failed or aborted stream leaves open."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from agent_runtime import (
    AbortController,
    AgentBackendInput,
    BackendRetryPolicy,
    BackendTransportError,
    HttpSandboxClient,
    create_openai_compatible_backend,
)
from agent_runtime.types import LlmCallEvent, TextDeltaEvent
from tests.backends.drive import TASK, context, drain

from .raw_http import RawServer, sse_head

FAST = BackendRetryPolicy(max_attempts=3, initial_backoff_ms=1, max_backoff_ms=2)


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'


def backend_at(server: RawServer, model: str = "m", **kw: Any) -> Any:
    kw.setdefault("retry", FAST)
    return create_openai_compatible_backend(
        api_key="k", base_url=server.base_url, model=model, **kw
    )


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDeltaEvent))


async def _collect(backend: Any) -> tuple[list[Any], BaseException | None]:
    got: list[Any] = []
    try:
        async for e in backend.stream(AgentBackendInput(task=TASK), context()):
            got.append(e)
    except BackendTransportError as exc:
        return got, exc
    return got, None


async def test_close_delimited_body_cut_inside_an_event_raises() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + chunk("Hi") + chunk(finish="stop") + USAGE[:40])

    async with RawServer(handler) as server:
        backend = backend_at(server)
        got, err = await _collect(backend)
        await backend.aclose()
    assert isinstance(err, BackendTransportError) and "inside an event" in err.message
    assert text_of(got) == "Hi"  # no half event turned into text
    assert len(server.requests) == 1


async def test_close_delimited_body_cut_between_events_raises() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + chunk("Hi ") + chunk("there"))

    async with RawServer(handler) as server:
        backend = backend_at(server)
        got, err = await _collect(backend)
        await backend.aclose()
    assert isinstance(err, BackendTransportError) and "before [DONE]" in err.message
    assert text_of(got) == "Hi there"


async def test_a_finish_reason_without_done_completes() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + chunk("Hi") + chunk(finish="stop") + USAGE)

    async with RawServer(handler) as server:
        backend = backend_at(server)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "Hi"
    assert isinstance(events[-1], LlmCallEvent) and events[-1].tokens_in == 5


async def test_done_missing_only_its_blank_line_completes() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + chunk("Hi") + b"data: [DONE]")

    async with RawServer(handler) as server:
        backend = backend_at(server)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "Hi"


async def test_a_framed_body_ending_without_done_is_complete() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        payload = chunk("Hi") + b'data: {"text": " tail"}'  # the last event lacks a blank line
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {len(payload)}\r\n\r\n"
        w.write(head.encode() + payload)

    async with RawServer(handler) as server:
        backend = backend_at(server)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "Hi tail"  # the remainder is flushed, as the original does


async def test_crlf_framing_and_comments() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        wire = b": keep-alive\n\n" + chunk("Hi ") + chunk("there") + USAGE + chunk(finish="stop")
        w.write(sse_head() + wire.replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n")

    async with RawServer(handler) as server:
        backend = backend_at(server)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "Hi there"
    assert isinstance(events[-1], LlmCallEvent) and events[-1].tokens_in == 5


async def test_empty_body_and_cut_error_body_are_retried_before_the_first_byte() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
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
        backend = backend_at(server, sleep=sleep)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "ok"
    assert len(server.requests) == 3
    assert len(slept) == 2 and slept[1] == 0.0  # the 503's Retry-After: 0


async def test_a_failure_after_the_first_byte_is_never_retried() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        # chunked framing cut off: the client sees a protocol error after real bytes
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        part = chunk("partial ")
        w.write(head + f"{len(part):x}\r\n".encode() + part + b"\r\n" + b"ff\r\ndata: {")

    async with RawServer(handler) as server:
        backend = backend_at(server)
        got, err = await _collect(backend)
        await backend.aclose()
    assert isinstance(err, BackendTransportError) and "cut" in err.message
    assert err.status == 0 and err.retryable is False
    assert text_of(got) == "partial "
    assert len(server.requests) == 1


async def test_empty_bodies_exhaust_the_attempts_as_unreachable() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        w.write(sse_head())

    async with RawServer(handler) as server:
        backend = backend_at(server)
        with pytest.raises(BackendTransportError) as info:
            await drain(backend)
        await backend.aclose()
    err = info.value
    assert err.message.startswith("chat backend unreachable after 3 attempts: ")
    assert "empty" in err.message
    assert (err.status, err.retryable, err.attempts) == (0, True, 3)
    assert len(server.requests) == 3


async def test_the_last_answer_decides_the_error_even_after_a_network_failure() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        if n == 0:
            w.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 4\r\n\r\nbusy")
        # later attempts: the connection closes without an answer

    async with RawServer(handler) as server:
        backend = backend_at(server)
        with pytest.raises(BackendTransportError) as info:
            await drain(backend)
        await backend.aclose()
    err = info.value
    assert err.message == "chat backend returned 502"  # a response was obtained once
    assert (err.status, err.body, err.attempts) == (502, "busy", 3)


async def test_a_header_deadline_per_attempt() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        if n == 0:
            await r.read()  # never answers; the client gives up on its deadline
            return
        w.write(sse_head() + chunk("late", finish="stop") + b"data: [DONE]\n\n")

    retry = BackendRetryPolicy(max_attempts=2, initial_backoff_ms=1, request_timeout_ms=200)
    async with RawServer(handler) as server:
        backend = backend_at(server, retry=retry)
        events = await drain(backend)
        await backend.aclose()
    assert text_of(events) == "late"
    assert len(server.requests) == 2


SANDBOX_EVENTS = [{"type": "delta", "text": f"{i} "} for i in range(5)] + [
    {"type": "result", "data": {"finalText": "end"}}
]


async def test_sandbox_resume_skips_events_the_orchestrator_replays() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
        # close-delimited; ignores Last-Event-ID and replays the execution from its start
        w.write(sse_head())
        for i, event in enumerate(SANDBOX_EVENTS):
            if n == 0 and i == 3:
                return  # the first connection closes after three events: a cut
            w.write(f"id: {i}\ndata: {json.dumps(event)}\n\n".encode())

    async with RawServer(handler) as server:
        client = HttpSandboxClient(server.base_url, retry=FAST)
        got = [e.id async for e in client.stream_events("x", execution_id="e")]
        await client.aclose()
    assert got == [str(i) for i in range(len(SANDBOX_EVENTS))]
    assert len(server.requests) == 2


async def test_no_connection_left_open_after_a_cut_or_an_abort() -> None:
    async def handler(n: int, body: bytes, r: Any, w: asyncio.StreamWriter) -> None:
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
        client = httpx2.AsyncClient(timeout=httpx2.Timeout(5.0, read=0.2))
        cut = backend_at(server, "cut", http_client=client)
        _got, err = await _collect(cut)
        assert isinstance(err, BackendTransportError) and "ReadTimeout" in err.message
        slow = backend_at(server, "slow")
        ctrl = AbortController()
        seen = 0
        with pytest.raises(asyncio.CancelledError):
            async for _event in slow.stream(
                AgentBackendInput(task=TASK), context(signal=ctrl.signal)
            ):
                seen += 1
                if seen == 3:
                    ctrl.abort()
        # both clients are still open: their responses must have been closed anyway
        for _ in range(300):
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 0
        await client.aclose()
        await slow.aclose()


def test_a_leading_byte_order_mark_does_not_swallow_the_first_event() -> None:
    from agent_runtime.backends._sse_decode import SSEDecoder, SSEMessage

    for split in range(0, 4):
        wire = b"\xef\xbb\xbfdata: first\n\ndata: \xef\xbb\xbfsecond\n\n"
        dec = SSEDecoder()
        got = dec.feed(wire[:split]) + dec.feed(wire[split:])
        # only the stream's leading BOM is dropped, as the SSE specification says
        assert got == [SSEMessage(data="first"), SSEMessage(data="\ufeffsecond")]
