"""A small OpenAI-compatible fake for faults llm-katan cannot inject.

The model name picks the behaviour: `ok`, `cut` (connection dropped after 3 chunks),
`malformed` (a non-JSON chunk), `inband-error` (an error object inside the stream),
`retry-after` (429 with Retry-After: 2 on the first request), `bad-request` (400), `tools`
(tool-call fragments), `slow` (a chunk every 20 ms for 10 s; records the client disconnect).
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


def _chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> str:
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


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.disconnected = asyncio.Event()
        self.chunks_sent = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in ("a", "b", "c")]}
        )

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        model = body["model"]
        if model == "bad-request":
            return JSONResponse({"error": {"message": "bad tool schema"}}, status_code=400)
        if model == "retry-after" and len(self.requests) == 1:
            return JSONResponse(
                {"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "2"}
            )
        gen = getattr(self, "_" + model.replace("-", "_"))
        return StreamingResponse(gen(), media_type="text/event-stream")

    async def _ok(self) -> AsyncIterator[str]:
        for part in ("Hel", "lo ", "world"):
            yield _chunk(part)
        yield _chunk(finish="stop")
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        yield f"data: {json.dumps({'id': 'c1', 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    _retry_after = _ok

    async def _cut(self) -> AsyncIterator[str]:
        for part in ("one ", "two ", "three "):
            yield _chunk(part)
            await asyncio.sleep(0.01)
        raise RuntimeError("connection dropped by the fake server")

    async def _malformed(self) -> AsyncIterator[str]:
        yield _chunk("fine ")
        yield "data: {not json\n\n"
        yield _chunk("never seen")
        yield "data: [DONE]\n\n"

    async def _inband_error(self) -> AsyncIterator[str]:
        yield _chunk("partial ")
        err = {"error": {"message": "model overloaded", "type": "server_error", "code": 529}}
        yield f"data: {json.dumps(err)}\n\n"

    async def _tools(self) -> AsyncIterator[str]:
        calls = [
            [{"index": 0, "id": "call_a", "function": {"name": "lookup", "arguments": '{"q":'}}],
            [{"index": 1, "id": "call_b", "function": {"name": "add", "arguments": ""}}],
            [{"index": 0, "function": {"arguments": '"x"}'}}],
            [{"index": 1, "function": {"arguments": '{"a":1,"b":2}'}}],
        ]
        for c in calls:
            yield _chunk(tool_calls=c)
        yield _chunk(finish="tool_calls")
        yield "data: [DONE]\n\n"

    async def _slow(self) -> AsyncIterator[str]:
        try:
            for i in range(500):
                yield _chunk(f"t{i} ")
                self.chunks_sent += 1
                await asyncio.sleep(0.02)
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.disconnected.set()
            raise
