"""AG-UI's `HttpAgent` against the real service over the scripted backend: a tool call
(`TOOL_CALL_START/ARGS/END/RESULT`), a turn the readiness gate blocks (`RUN_FINISHED` with one
interrupt per gate question) answered with resume entries (the run resumes exactly once), and
the rule while interrupts are open (anything else is a `RUN_ERROR` with a code, and nothing
runs). And a stop that arrives after the claim but before the producer registered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from agent_runtime.sanitize import RuntimeTelemetryOptions
from agent_runtime.server import ServerSettings

from .node import run_client
from .scripted import TRIP_NEEDS
from .servers import AUTH, Server, scripted_server

SHOWN = RuntimeTelemetryOptions(
    include_inputs=True, include_control_payloads=True, include_requirement_descriptions=True
)
"""A deployment that shows its users tool calls' arguments and results and the readiness
gate's requirement descriptions (by default the service shows neither)."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = ServerSettings(telemetry=SHOWN)
    with scripted_server(f"sqlite:///{tmp_path}/runs.db", settings=settings) as srv:
        yield srv


def _sse(text: str) -> list[Any]:
    out = []
    for block in text.split("\n\n"):
        data = "".join(x[5:].strip() for x in block.split("\n") if x.startswith("data:"))
        if data:
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def _agui(node: str, server: Server, **job: Any) -> Any:
    return run_client(
        node, "agui_client.mjs", {"url": f"{server.url}/api/agui", "headers": AUTH, **job}
    )


def _types(out: dict[str, Any]) -> list[str]:
    return [e["data"]["type"] for e in out["events"] if isinstance(e["data"], dict)]


def _post(server: Server, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx2.post(f"{server.url}/api/agui", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = _sse(r.text)
    return out


def test_a_tool_call_reaches_the_agent_as_tool_call_events(node: str, server: Server) -> None:
    out = _agui(node, server, threadId="a-tool", text="tool please")
    assert out["runs"] == [{"error": None, "pendingInterrupts": []}]
    types = _types(out)
    start = types.index("TOOL_CALL_START")
    assert types[start : start + 4] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ]
    events = [e["data"] for e in out["events"]]
    call = events[start]
    assert call["toolCallName"] == "search"
    assert call["toolCallId"] == "chat:a-tool:0:call_1"
    assert events[start + 1]["delta"] == '{"q":"tides"}'
    (with_call,) = [m for m in out["messages"] if m.get("toolCalls")]
    assert with_call["role"] == "assistant"
    assert with_call["toolCalls"] == [
        {
            "id": "chat:a-tool:0:call_1",
            "type": "function",
            "function": {"name": "search", "arguments": '{"q":"tides"}'},
        }
    ]
    (tool,) = [m for m in out["messages"] if m["role"] == "tool"]
    assert tool["toolCallId"] == "chat:a-tool:0:call_1" and orjson.loads(tool["content"]) == {
        "hits": 2
    }
    texts = [m["content"] for m in out["messages"] if m["role"] == "assistant" and m["content"]]
    assert "".join(texts) == "Let me look that up. Found two."
    assert types[-1] == "RUN_FINISHED"
    assert "acme" not in str(out)  # ids carry the execution id, never the tenant or user


def test_a_blocked_turn_is_an_interrupt_answered_once(node: str, server: Server) -> None:
    answers = {"question_city": "Paris", "question_dates": "1-3 May"}
    out = _agui(node, server, threadId="a-trip", text="trip please", answers=answers)
    blocked, resumed = out["runs"]
    assert blocked["error"] is None and resumed["error"] is None
    interrupts = blocked["pendingInterrupts"]
    assert [i["id"] for i in interrupts] == [f"question_{need}" for need, _ in TRIP_NEEDS]
    for interrupt, (need, description) in zip(interrupts, TRIP_NEEDS, strict=True):
        assert interrupt["reason"] == "input_required"
        assert interrupt["message"] == f"Please provide: {description}"  # the gate's question
        assert interrupt["metadata"]["question"]["requirementId"] == need
    finished = [e["data"] for e in out["events"] if e["data"]["type"] == "RUN_FINISHED"]
    assert finished[0]["outcome"]["type"] == "interrupt"
    assert finished[1]["outcome"] == {"type": "success"}
    assert resumed["pendingInterrupts"] == []
    assistant = [m["content"] for m in out["messages"] if m["role"] == "assistant"]
    assert assistant == ["echo: plan a trip"]
    answer_prompt = "Paris\n1-3 May"
    assert server.scripted.calls[answer_prompt] == 1
    run, _log = server.load("a-trip", 1)
    assert run is not None and run.status == "completed"
    # the same resume posted again replays the answered turn: the backend is not asked again
    body = {
        "threadId": "a-trip",
        "runId": "again",
        "messages": [{"id": "u1", "role": "user", "content": "trip please"}],
        "resume": [
            {"interruptId": k, "status": "resolved", "payload": {"answer": v}}
            for k, v in answers.items()
        ],
    }
    replay = _post(server, body)
    assert replay[-1]["type"] == "RUN_FINISHED" and replay[-1]["outcome"] == {"type": "success"}
    assert server.scripted.calls[answer_prompt] == 1
    assert server.load("a-trip", 2)[0] is None


def test_while_interrupts_are_open_anything_else_is_refused(node: str, server: Server) -> None:
    out = _agui(node, server, threadId="a-open", text="trip somewhere")
    open_ids = [i["id"] for i in out["runs"][0]["pendingInterrupts"]]
    assert open_ids == ["question_city", "question_dates"]
    # another client (it has not seen the interrupt) sends a new message on the thread
    other = _agui(
        node,
        server,
        threadId="a-open",
        messages=[{"id": "u1", "role": "user", "content": "trip somewhere"}],
        text="just tell me",
    )
    errors = [e["data"] for e in other["events"] if e["data"]["type"] == "RUN_ERROR"]
    assert [e["code"] for e in errors] == ["interrupt_pending"]
    assert "question_city, question_dates" in errors[0]["message"]
    user = {"id": "u1", "role": "user", "content": "trip somewhere"}

    def resume(*entries: tuple[str, str]) -> list[dict[str, Any]]:
        return [
            {"interruptId": i, "status": "resolved", "payload": {"answer": a}} for i, a in entries
        ]

    cases = {
        "resume_incomplete": resume(("question_city", "Rome")),
        "unknown_interrupt": resume(
            ("question_city", "Rome"), ("question_dates", "May"), ("question_budget", "low")
        ),
    }
    for code, entries in cases.items():
        events = _post(
            server, {"threadId": "a-open", "runId": code, "messages": [user], "resume": entries}
        )
        assert [e["type"] for e in events] == ["RUN_ERROR"] and events[0]["code"] == code
    assert server.load("a-open", 1) == (None, [])  # nothing ran
    assert sum(n for p, n in server.scripted.calls.items() if p != "trip somewhere") == 0
    # answers where no interrupt is open are refused too
    _agui(node, server, threadId="a-none", text="hello")
    events = _post(
        server,
        {
            "threadId": "a-none",
            "runId": "r",
            "messages": [{"id": "u1", "role": "user", "content": "hello"}],
            "resume": resume(("question_city", "Rome")),
        },
    )
    assert [e["type"] for e in events] == ["RUN_ERROR"]
    assert events[0]["code"] == "no_open_interrupt"
    # answering them all resumes the run
    done = _post(
        server,
        {
            "threadId": "a-open",
            "runId": "ok",
            "messages": [user],
            "resume": resume(("question_city", "Rome"), ("question_dates", "May")),
        },
    )
    assert done[-1]["type"] == "RUN_FINISHED" and done[-1]["outcome"] == {"type": "success"}


def test_a_stop_between_the_claim_and_the_producer_still_stops_the_turn(server: Server) -> None:
    reached = threading.Event()
    release = threading.Event()

    async def hold(run_id: str) -> None:  # the producer pauses here, the run already claimed
        reached.set()
        await asyncio.to_thread(release.wait, 30)

    server.runner.cancels.before_register = hold
    body = {
        "id": "v-race",
        "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "slow 40"}]}],
    }
    response: dict[str, Any] = {}

    def post() -> None:
        r = httpx2.post(f"{server.url}/api/ui/chat", json=body, headers=AUTH, timeout=60)
        response["status"] = r.status_code
        response["text"] = r.text

    client = threading.Thread(target=post)
    client.start()
    try:
        assert reached.wait(30)
        run, _log = server.load("v-race")
        assert run is not None and run.status == "running"
        assert run.lease_holder == server.runner.worker_id  # claimed here, not registered
        assert "chat:acme:ann:v-race:0" not in server.runner.cancels
        cancel = httpx2.post(
            f"{server.url}/api/runs/chat:v-race:0/cancel", headers=AUTH, json={}, timeout=10
        )
        assert cancel.status_code == 202 and cancel.json()["stopped"] is True
    finally:
        release.set()
        client.join(60)
    server.runner.cancels.before_register = None
    assert response["status"] == 200
    chunks = _sse(response["text"])
    assert chunks[-2:] == [{"type": "abort", "reason": "stopped by the user"}, "[DONE]"]
    assert not any(isinstance(c, dict) and c["type"] == "text-delta" for c in chunks)
    run, _log = server.load("v-race")
    assert run is not None and run.status == "completed" and run.outcome["text"] == ""
    # the stop was used up: the next turn of the session runs in full
    again = httpx2.post(
        f"{server.url}/api/chat",
        json={"session_id": "v-race2", "turn_index": 0, "text": "hello"},
        headers=AUTH,
        timeout=30,
    )
    assert again.status_code == 200 and "session.run.completed" in again.text


def test_a_repost_with_a_cursor_re_reads_a_failed_run_without_retrying_it(server: Server) -> None:
    body = {
        "threadId": "a-reread",
        "runId": "r1",
        "messages": [{"id": "u1", "role": "user", "content": "fail z"}],
    }
    first = _post(server, body)
    assert first[-1]["type"] == "RUN_ERROR"
    r = httpx2.post(
        f"{server.url}/api/agui",
        json=body,
        headers={**AUTH, "last-event-id": "0"},
        timeout=30,
    )
    again = _sse(r.text)
    types = [e["type"] for e in again]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_ERROR"  # the failure, read again
    assert server.scripted.calls["fail z"] == 1
    run, _log = server.load("a-reread")
    assert run is not None and run.status == "failed"
