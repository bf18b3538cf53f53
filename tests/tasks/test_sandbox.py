"""Sandbox prompt backend against a fake orchestrator that drops the first connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_runtime import (
    AgentTaskRunOptions,
    AgentTaskSpec,
    BackendRetryPolicy,
    BackendTransportError,
    HttpSandboxClient,
    create_sandbox_prompt_backend,
    parse_event,
    run_agent_task,
)

EVENTS: list[dict[str, Any]] = [
    {"type": "status", "status": "thinking"},
    {"type": "text.delta", "text": "one "},
    {"type": "text.delta", "text": "two "},
    {"type": "text.delta", "text": "three"},
    {"type": "usage", "input_tokens": 4, "output_tokens": 3},
    {"type": "done", "finish_reason": "stop"},
]


class Orchestrator:
    """Keeps each execution's event log; the first connection of an execution is cut after
    `cut_after` events; `Last-Event-ID` resumes after that id."""

    def __init__(self, cut_after: int | None = 3, stall_on_resume: bool = False) -> None:
        self.cut_after = cut_after
        self.stall_on_resume = stall_on_resume
        self.calls: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/agents/run/stream", self.run, methods=["POST"])])

    async def run(self, request: Request) -> Response:
        body = await request.json()
        exec_id = request.headers.get("x-execution-id")
        last = request.headers.get("last-event-id")
        self.calls.append({"execution_id": exec_id, "last_event_id": last, "body": body})
        if not exec_id:
            return JSONResponse({"error": "missing X-Execution-ID"}, status_code=400)
        start = int(last) + 1 if last is not None else 0
        cut = self.cut_after if len(self.calls) == 1 else None
        stall = self.stall_on_resume and len(self.calls) > 1

        async def gen() -> AsyncIterator[str]:
            if stall:  # bytes arrive (a ping) but no event: a resume without progress
                yield ": ping\n\n"
                raise RuntimeError("orchestrator connection dropped again")
            for i in range(start, len(EVENTS)):
                if cut is not None and i - start >= cut:
                    raise RuntimeError("orchestrator connection dropped")
                yield f"id: {i}\nevent: {EVENTS[i]['type']}\ndata: {json.dumps(EVENTS[i])}\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(gen(), media_type="text/event-stream")


async def test_resume_after_last_event_id_with_same_execution_id(serve) -> None:
    orch = Orchestrator(cut_after=3)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=BackendRetryPolicy(initial_delay_s=0.01))
    got = [
        (e.id, e.event)
        async for e in client.stream_prompt("count to three", execution_id="proj:sess:1")
    ]
    await client.aclose()
    assert got == [
        (str(i), parse_event(ev)) for i, ev in enumerate(EVENTS)
    ]  # each exactly once, in order
    assert [c["execution_id"] for c in orch.calls] == ["proj:sess:1", "proj:sess:1"]
    assert [c["last_event_id"] for c in orch.calls] == [None, "2"]
    assert orch.calls[0]["body"]["message"] == "count to three"


async def test_sandbox_backend_through_the_runner(serve) -> None:
    orch = Orchestrator(cut_after=2)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url)
    backend = create_sandbox_prompt_backend(client)
    spec = AgentTaskSpec(id="t", intent="count to three")
    result = await run_agent_task(spec, backend, AgentTaskRunOptions(run_id="exec-42"))
    await client.aclose()
    assert result.status == "completed" and result.backend == "sandbox"
    assert result.text == "one two three"
    assert result.usage.input_tokens == 4
    assert {c["execution_id"] for c in orch.calls} == {"exec-42"}  # run id = execution id
    assert len(orch.calls) == 2


async def test_resumes_without_progress_end_interrupted(serve) -> None:
    orch = Orchestrator(cut_after=2, stall_on_resume=True)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, max_resumes=2)
    with pytest.raises(BackendTransportError) as info:
        async for _ in client.stream_prompt("x", execution_id="e1"):
            pass
    await client.aclose()
    assert info.value.code == "backend.stream_interrupted"
    assert info.value.retryable is False
    assert len(orch.calls) == 3  # the first connection, then two resumes without progress
    assert [c["last_event_id"] for c in orch.calls] == [None, "1", "1"]


async def test_cut_before_first_byte_is_retried_as_transport_error(serve) -> None:
    orch = Orchestrator(cut_after=0)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=BackendRetryPolicy(initial_delay_s=0.01))
    got = [e.id async for e in client.stream_prompt("x", execution_id="e2")]
    await client.aclose()
    assert got == [str(i) for i in range(len(EVENTS))]
    assert [c["last_event_id"] for c in orch.calls] == [None, None]


async def test_bad_execution_id_is_refused() -> None:
    from agent_runtime import ConfigurationError

    client = HttpSandboxClient("http://127.0.0.1:9")
    with pytest.raises(ConfigurationError):
        async for _ in client.stream_prompt("x", execution_id="a\nb"):
            pass
    with pytest.raises(ConfigurationError):
        HttpSandboxClient("ftp://nope")
