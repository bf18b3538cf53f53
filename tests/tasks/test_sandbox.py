"""The sandbox prompt backend over `HttpSandboxClient` against an orchestrator of ours on
127.0.0.1 that streams raw events with SSE ids and drops a connection."""

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
    AbortController,
    BackendRetryPolicy,
    BackendTransportError,
    HttpSandboxClient,
    ValidationError,
    create_sandbox_prompt_backend,
)
from agent_runtime.types import TextDeltaEvent, ToolCallEvent, ToolResultEvent
from tests.backends.drive import drain

FAST = BackendRetryPolicy(initial_backoff_ms=1, max_backoff_ms=2)

EVENTS: list[dict[str, Any]] = [
    {"type": "execution.started", "data": {"executionId": "x"}},
    {"type": "message.part.updated", "data": {"delta": "Looking "}},
    {"type": "tool_call", "data": {"name": "search", "id": "t1", "args": {"q": "tax"}}},
    {"type": "tool_result", "data": {"name": "search", "id": "t1", "output": ["a"]}},
    {"type": "message.part.updated", "data": {"part": {"type": "text", "text": "it up. "}}},
    {"type": "result", "data": {"finalText": "Found a."}},
]


class Orchestrator:
    """Keeps one execution's event log; the first connection is cut after `cut_after` events;
    `Last-Event-ID` resumes after that id. `replay` ignores Last-Event-ID (sends it all)."""

    def __init__(
        self,
        cut_after: int | None = 3,
        *,
        stall_on_resume: bool = False,
        replay: bool = False,
        status: int = 200,
    ) -> None:
        self.cut_after = cut_after
        self.status = status
        self.stall_on_resume = stall_on_resume
        self.replay = replay
        self.calls: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/agents/run/stream", self.run, methods=["POST"])])

    async def run(self, request: Request) -> Response:
        body = await request.json()
        exec_id = request.headers.get("x-execution-id")
        last = request.headers.get("last-event-id")
        self.calls.append({"execution_id": exec_id, "last_event_id": last, "body": body})
        if not exec_id:
            return JSONResponse({"error": "missing X-Execution-ID"}, status_code=400)
        if self.status != 200:
            return JSONResponse({"error": "busy"}, status_code=self.status)
        start = int(last) + 1 if last is not None and not self.replay else 0
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


def backend_for(client: HttpSandboxClient, **kw: Any) -> Any:
    return create_sandbox_prompt_backend(
        get_box=lambda i, c: "box", stream_prompt=client.stream_prompt, **kw
    )


async def test_the_backend_maps_the_events_and_survives_a_dropped_connection(serve) -> None:
    orch = Orchestrator(cut_after=3)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    events = await drain(backend_for(client), message="find tax docs")
    await client.aclose()
    assert [type(e) for e in events] == [
        TextDeltaEvent,
        ToolCallEvent,
        ToolResultEvent,
        TextDeltaEvent,
        TextDeltaEvent,
    ]  # each exactly once, in order; execution.started is not a runtime event
    assert "".join(e.text for e in events if isinstance(e, TextDeltaEvent)) == (
        "Looking it up. Found a."
    )
    call, result = events[1], events[2]
    assert (call.tool_name, call.tool_call_id, call.args) == ("search", "t1", {"q": "tax"})
    assert (result.tool_name, result.result) == ("search", ["a"])
    # the same execution (the session id by default) and a resume after the last event seen
    assert [c["execution_id"] for c in orch.calls] == ["session-1", "session-1"]
    assert [c["last_event_id"] for c in orch.calls] == [None, "2"]
    assert orch.calls[0]["body"] == {
        "identifier": "default",
        "message": "find tax docs",
        "sessionId": "session-1",
    }


async def test_stream_events_yield_ids_and_raw_records(serve) -> None:
    orch = Orchestrator(cut_after=2)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    got = [(e.id, e.data) async for e in client.stream_events("x", execution_id="p:s:1")]
    await client.aclose()
    assert got == [(str(i), ev) for i, ev in enumerate(EVENTS)]
    assert [c["last_event_id"] for c in orch.calls] == [None, "1"]
    assert {c["execution_id"] for c in orch.calls} == {"p:s:1"}


async def test_a_replaying_orchestrator_is_deduplicated(serve) -> None:
    orch = Orchestrator(cut_after=4, replay=True)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    got = [e.id async for e in client.stream_events("x", execution_id="e")]
    await client.aclose()
    assert got == [str(i) for i in range(len(EVENTS))]


async def test_execution_id_is_configurable(serve) -> None:
    orch = Orchestrator(cut_after=None)
    served = await serve(orch.app)
    client = HttpSandboxClient(
        served.base_url, execution_id=lambda box, ctx: f"proj:{ctx.session.id}:{box}"
    )
    await drain(backend_for(client))
    await client.aclose()
    assert orch.calls[0]["execution_id"] == "proj:session-1:box"


async def test_resumes_without_progress_end_with_a_transport_error(serve) -> None:
    orch = Orchestrator(cut_after=2, stall_on_resume=True)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST, max_resumes=2)
    with pytest.raises(BackendTransportError) as info:
        await drain(backend_for(client))
    await client.aclose()
    err = info.value
    assert err.backend == "sandbox" and err.status == 0 and err.retryable is False
    assert "was cut" in err.message
    assert len(orch.calls) == 3  # the first connection, then two resumes without progress
    assert [c["last_event_id"] for c in orch.calls] == [None, "1", "1"]


async def test_cut_before_the_first_byte_is_retried(serve) -> None:
    orch = Orchestrator(cut_after=0)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    got = [e.id async for e in client.stream_events("x", execution_id="e2")]
    await client.aclose()
    assert got == [str(i) for i in range(len(EVENTS))]
    assert [c["last_event_id"] for c in orch.calls] == [None, None]


async def test_an_error_status_is_retried_then_a_typed_failure(serve) -> None:
    orch = Orchestrator(status=503)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    with pytest.raises(BackendTransportError) as info:
        await drain(backend_for(client))
    await client.aclose()
    err = info.value
    assert err.message == "sandbox orchestrator returned 503"
    assert (err.status, err.attempts, len(orch.calls)) == (503, 5, 5)
    assert err.body is not None and "busy" in err.body


async def test_an_empty_execution_id_is_refused_before_sending(serve) -> None:
    orch = Orchestrator()
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST, execution_id=lambda b, c: "")
    with pytest.raises(ValidationError):  # an empty execution id is refused before sending
        await drain(backend_for(client))
    assert orch.calls == []
    await client.aclose()


async def test_abort_stops_the_stream(serve) -> None:
    orch = Orchestrator(cut_after=None)
    served = await serve(orch.app)
    client = HttpSandboxClient(served.base_url, retry=FAST)
    ctrl = AbortController()
    ctrl.abort(RuntimeError("stop"))
    with pytest.raises(RuntimeError, match="stop"):
        await drain(backend_for(client), signal=ctrl.signal)
    assert orch.calls == []
    await client.aclose()


async def test_bad_arguments_are_refused() -> None:
    client = HttpSandboxClient("http://127.0.0.1:9")
    for bad in ("a\nb", "a\rb", "", 5):
        with pytest.raises(ValidationError):
            async for _ in client.stream_events("x", execution_id=bad):
                pass
    with pytest.raises(ValidationError):
        async for _ in client.stream_events(5, execution_id="e"):  # type: ignore[arg-type]
            pass
    await client.aclose()
    for kwargs in (
        {"base_url": "ftp://nope"},
        {"base_url": "http://h", "api_key": "k\n"},
        {"base_url": "http://h", "headers": {"x-a": 1}},
        {"base_url": "http://h", "max_resumes": -1},
        {"base_url": "http://h", "retry": 3},
        {"base_url": "http://h", "execution_id": "e"},
        {"base_url": "http://h", "kind": ""},
    ):
        with pytest.raises(ValidationError):
            HttpSandboxClient(**kwargs)
