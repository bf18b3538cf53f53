"""A small OpenAI-compatible fake for faults and shapes llm-katan cannot produce.

The model name picks the behaviour: `ok`, `cut` (the connection dropped after 3 chunks),
`non-json` (a payload that is not JSON), `inband-error` (an error object inside the stream),
`retry-after` (429 with Retry-After: 2 on the first request), `bad-request` (400 whose body
echoes a secret), `busy` (always 503), `hang` (no answer until the client goes away),
`tools` (tool-call fragments), `reasoning`, `anthropic` (Anthropic usage events), `raw`
(payloads in the raw backend vocabulary), `ndjson`, `json` (one whole completion) and `slow`
(a chunk every 20 ms for 10 s; records the client's disconnect).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

LEAKED_SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> str:
    d: dict[str, Any] = dict(delta)
    if content is not None:
        d["content"] = content
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "fake",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def data(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


USAGE = {"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.arrived = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.chunks_sent = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/chat/completions", self.completions, methods=["POST"]),
            ]
        )

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.url.path)
        self.arrived.set()
        model = body["model"]
        if model == "bad-request":
            message = f"invalid tool schema; your key {LEAKED_SECRET} is fine"
            return JSONResponse({"error": {"message": message}}, status_code=400)
        if model == "busy":
            return JSONResponse({"error": {"message": "busy"}}, status_code=503)
        if model == "retry-after" and len(self.requests) == 1:
            return JSONResponse(
                {"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "2"}
            )
        if model == "hang":
            for _ in range(3000):  # 30 s at most
                if await request.is_disconnected():
                    self.disconnected.set()
                    break
                await asyncio.sleep(0.01)
            return Response(status_code=499)
        if model == "json":
            completion = {
                "choices": [
                    {"index": 0, "message": {"content": "whole answer"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 2, "completion_tokens": 2},
            }
            return Response(json.dumps(completion, indent=2), media_type="application/json")
        gen = getattr(self, "_" + model.replace("-", "_"))
        media = "application/x-ndjson" if model == "ndjson" else "text/event-stream"
        return StreamingResponse(gen(), media_type=media)

    async def _ok(self) -> AsyncIterator[str]:
        for part in ("Hel", "lo ", "world"):
            yield chunk(part)
        yield chunk(finish="stop")
        yield data(USAGE)
        yield "data: [DONE]\n\n"

    _retry_after = _ok

    async def _cut(self) -> AsyncIterator[str]:
        for part in ("one ", "two ", "three "):
            yield chunk(part)
            await asyncio.sleep(0.01)
        raise RuntimeError("connection dropped by the fake server")

    async def _non_json(self) -> AsyncIterator[str]:
        yield chunk("fine ")
        yield "data: {not json\n\n"
        yield chunk("after")
        yield "data: [DONE]\n\n"

    async def _inband_error(self) -> AsyncIterator[str]:
        yield chunk("partial ")
        message = f"model overloaded (key {LEAKED_SECRET})"
        yield data({"error": {"message": message, "type": "server_error", "code": 529}})

    async def _tools(self) -> AsyncIterator[str]:
        calls = [
            [{"index": 0, "id": "call_a", "function": {"name": "lookup", "arguments": '{"q":'}}],
            [{"index": 1, "id": "call_b", "function": {"name": "add", "arguments": ""}}],
            [{"index": 0, "function": {"arguments": '"x"}'}}],
            [{"index": 1, "function": {"arguments": '{"a":1,"b":2}'}}],
            [{"index": 2, "id": "call_c", "function": {"name": "broken", "arguments": "{oops"}}],
        ]
        for c in calls:
            yield chunk(tool_calls=c)
        yield chunk(finish="tool_calls")
        yield "data: [DONE]\n\n"

    async def _reasoning(self) -> AsyncIterator[str]:
        yield chunk(reasoning_content="Let me think. ")
        yield chunk("Answer.")
        yield chunk(finish="stop")
        yield "data: [DONE]\n\n"

    async def _anthropic(self) -> AsyncIterator[str]:
        yield data({"type": "message_start", "message": {"usage": {"input_tokens": 7}}})
        yield data({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}})
        yield data({"text": "Hi"})
        yield data(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 5},
            }
        )
        yield data({"type": "message_stop"})

    async def _raw(self) -> AsyncIterator[str]:
        yield data({"type": "tool_call", "data": {"name": "search", "id": "t1", "args": {"q": 1}}})
        yield data({"type": "reasoning_delta", "text": "hmm"})
        yield data({"text": "plain"})
        yield data({"type": "result", "data": {"finalText": " done"}})
        yield data(42)
        yield data({"type": "unknown", "value": 1})
        yield data({"choices": [{"index": 0, "delta": {"content": ""}}], "text": "x"})
        yield "data: [DONE]\n\n"

    async def _ndjson(self) -> AsyncIterator[str]:
        for part in ("nd", "json"):
            yield json.dumps({"choices": [{"index": 0, "delta": {"content": part}}]}) + "\n"
        yield json.dumps({"text": " tail"})  # the last line has no newline: flushed at the end

    async def _slow(self) -> AsyncIterator[str]:
        try:
            for i in range(500):
                yield chunk(f"t{i} ")
                self.chunks_sent += 1
                await asyncio.sleep(0.02)
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.disconnected.set()
            raise
