"""The chat service over real HTTP: a uvicorn server on a free port, a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from agent_runtime.backends import create_echo_backend, create_iterable_backend
from agent_runtime.errors import BackendTransportError
from agent_runtime.server import CHAT_INTENT, BackendConfig, create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    LlmCallEvent,
    RuntimeSession,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from tests.server.conftest import serving


def lines(body: str) -> list[dict[str, Any]]:
    assert body.endswith("\n")
    return [orjson.loads(line) for line in body.splitlines()]


def chat(url: str, text: str, session: str = "s1", turn: int = 0) -> httpx2.Response:
    return httpx2.post(
        f"{url}/api/chat", json={"session_id": session, "turn_index": turn, "text": text}
    )


def test_chat_turn_streams_ndjson_with_envelope(echo_server: str) -> None:
    response = chat(echo_server, "hello world")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["x-execution-id"] == "chat:s1:0"
    events = lines(response.text)
    assert events[0] == {
        "type": "session.run.started",
        "data": {"sessionId": "s1", "tenantId": "local", "turnIndex": 0},
    }
    assert events[-1] == {
        "type": "session.run.completed",
        "data": {"sessionId": "s1", "replayed": False},
    }
    deltas = [e for e in events if e["type"] == "text_delta"]
    assert len(deltas) > 1  # chunked, not one blob
    assert "".join(d["text"] for d in deltas) == "echo: hello world"
    assert all(set(d) == {"type", "text"} for d in deltas)  # the wire form, task/session off


def test_events_replay_cursor_and_sse(echo_server: str) -> None:
    turn = lines(chat(echo_server, "replay me", session="r").text)
    produced = turn[1:-1]  # the log holds the producer's events; the envelope is per request
    url = f"{echo_server}/api/runs/chat:r:0/events"
    replay = httpx2.get(url)
    assert replay.status_code == 200
    assert replay.headers["content-type"].startswith("application/x-ndjson")
    records = lines(replay.text)
    assert [r["seq"] for r in records] == [*range(len(produced)), None]
    assert [r["payload"] for r in records[:-1]] == produced
    assert records[-1]["payload"] == {
        "type": "session.run.completed",
        "data": {"sessionId": "r", "executionId": "chat:r:0", "finalText": "echo: replay me"},
    }
    tail = lines(httpx2.get(url, params={"after": 1}).text)
    assert [r["seq"] for r in tail] == [*range(2, len(produced)), None]
    sse = httpx2.get(
        url, params={"after": len(produced) - 2}, headers={"accept": "text/event-stream"}
    )
    assert sse.headers["content-type"].startswith("text/event-stream")
    frames = [f.splitlines() for f in sse.text.split("\n\n") if f]
    assert [f[:2] for f in frames] == [
        [f"id: {len(produced) - 1}", "event: text_delta"],
        [
            "event: session.run.completed",
            'data: {"type":"session.run.completed","data":{"sessionId":"r",'
            '"executionId":"chat:r:0","finalText":"echo: replay me"}}',
        ],
    ]
    past_end = lines(httpx2.get(url, params={"after": 99}).text)
    assert [r["payload"]["type"] for r in past_end] == ["session.run.completed"]


def test_unknown_run_is_204(echo_server: str) -> None:
    response = httpx2.get(f"{echo_server}/api/runs/chat:nobody:0/events")
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"turn_index": 0, "text": "x"}', 422, "session_id"),
        (b'{"session_id": "a b", "turn_index": 0, "text": "x"}', 422, "session_id"),
        (b'{"session_id": "s", "turn_index": -1, "text": "x"}', 422, "turn_index"),
        (b'{"session_id": "s", "turn_index": true, "text": "x"}', 422, "turn_index"),
        (b'{"session_id": "s", "turn_index": 0}', 422, "text"),
        (b'{"session_id": "s", "turn_index": 0, "text": "  "}', 422, "text"),
        (b'{"session_id": "s", "turn_index": 0, "text": "x", "messages": []}', 422, "text"),
        (b'{"session_id": "s", "turn_index": 0, "messages": [{"role": "tool"}]}', 422, "role"),
        (
            b'{"session_id": "s", "turn_index": 0, "messages": [{"role": "assistant", '
            b'"content": "hi"}]}',
            422,
            "messages",
        ),
        (b'{"session_id": "s", "turn_index": 0, "text": "x", "model": 3}', 422, "model"),
        (b'{"session_id": "s", "turn_index": 0, "text": "x", "model": "a b"}', 422, "model"),
        (b'{"session_id": "s", "turn_index": 0, "text": "x", "extra": 1}', 422, "extra"),
    ],
)
def test_bad_requests_are_typed_json_errors(
    echo_server: str, body: bytes, status: int, where: str
) -> None:
    response = httpx2.post(
        f"{echo_server}/api/chat", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] in ("RequestJSONError", "InvalidArgumentError")
    assert where in error["message"]


def test_bad_cursor_and_oversized_body(echo_server: str) -> None:
    for after in ("x", "-2", "1.5", "9223372036854775808", "1" + "0" * 40):
        r = httpx2.get(f"{echo_server}/api/runs/chat:s:0/events", params={"after": after})
        assert r.status_code == 422 and "after" in r.json()["error"]["message"]
    big = b'{"session_id": "s", "turn_index": 0, "text": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    r = httpx2.post(
        f"{echo_server}/api/chat", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "larger" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "body_too_large"


def test_retried_turn_replays_without_calling_the_backend(store_url: str) -> None:
    calls: list[str] = []

    async def stream(
        inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        calls.append(inp.prompt)
        yield TextDeltaEvent(text="one ")
        yield TextDeltaEvent(text="two")

    backend = create_iterable_backend(kind="scripted", stream=stream)
    app = create_app(store_url=store_url, backend=backend)
    with serving(app) as url:
        first = chat(url, "hi").text
        second = chat(url, "hi").text
        other = chat(url, "something else")
    assert calls == ["hi"]
    replayed = lines(second)
    assert replayed[1:] == [
        {"type": "result", "data": {"finalText": "one two"}},
        {"type": "session.run.completed", "data": {"sessionId": "s1", "replayed": True}},
    ]
    assert [e for e in lines(first) if e["type"] == "text_delta"] == [
        {"type": "text_delta", "text": "one "},
        {"type": "text_delta", "text": "two"},
    ]
    assert other.status_code == 409
    assert other.json()["error"]["type"] == "DurableRunInputMismatchError"


def test_backend_transport_error_fails_the_turn(store_url: str) -> None:
    async def stream(
        _inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        yield TextDeltaEvent(text="partial")
        raise BackendTransportError("scripted", "it broke", status=503, body="upstream down")

    backend = create_iterable_backend(kind="scripted", stream=stream)
    with serving(create_app(store_url=store_url, backend=backend)) as url:
        events = lines(chat(url, "hi").text)
        replay = lines(httpx2.get(f"{url}/api/runs/chat:s1:0/events").text)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "text_delta",
        "error",
        "session.run.failed",
    ]
    assert events[2]["data"] == {"message": "it broke", "code": "config", "stage": "produce"}
    assert events[3] == {
        "type": "session.run.failed",
        "data": {"sessionId": "s1", "message": "it broke"},
    }
    assert [r["payload"] for r in replay[:-1]] == [events[1]]
    closing = replay[-1]["payload"]
    assert closing["type"] == "session.run.failed"
    assert closing["data"]["message"] == "it broke" and closing["data"]["code"] == "config"


def test_backend_input_events_and_session_stay_server_internal(store_url: str) -> None:
    """The backend sees a fixed intent (never the user's text) and the conversation; its
    events reach the client in their wire form without `task` and `session`."""
    seen: list[tuple[AgentBackendInput, AgentBackendContext]] = []

    async def stream(
        inp: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        seen.append((inp, ctx))
        assert ctx.session is not None
        yield ToolCallEvent(
            tool_name="search",
            tool_call_id="c1",
            args={"q": "x"},
            task=inp.task,
            session=ctx.session,
        )
        yield TextDeltaEvent(text="found", task=inp.task, session=ctx.session, timestamp="t")
        yield LlmCallEvent(model="m", tokens_in=3, tokens_out=1)

    backend = create_iterable_backend(kind="scripted", stream=stream)
    body = {
        "session_id": "in",
        "turn_index": 1,
        "messages": [
            {"role": "user", "content": "secret question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "and then?"},
        ],
    }
    with serving(create_app(store_url=store_url, backend=backend)) as url:
        events = lines(httpx2.post(f"{url}/api/chat", json=body).text)
    inp, ctx = seen[0]
    assert inp.task.id == "chat:local:local:in:1" and inp.task.domain == "chat"
    assert inp.task.intent == CHAT_INTENT == "Answer the user's chat message."
    assert [(m.role, m.content) for m in inp.messages or ()] == [
        ("user", "secret question"),
        ("assistant", "an answer"),
        ("user", "and then?"),
    ]
    assert inp.prompt == "and then?"
    assert isinstance(ctx.session, RuntimeSession) and ctx.session.id == "in"
    assert ctx.session.backend == "scripted" and ctx.task == inp.task
    assert events[1:-1] == [  # the telemetry projection: tool arguments stay on the server
        {"type": "tool_call", "toolName": "search", "toolCallId": "c1"},
        {"type": "text_delta", "text": "found", "timestamp": "t"},
        {"type": "llm_call", "model": "m", "tokensIn": 3, "tokensOut": 1},
    ]
    assert events[-1]["type"] == "session.run.completed"


def test_a_backend_yielding_a_non_event_fails_the_turn(store_url: str) -> None:
    async def stream(_inp: AgentBackendInput, _ctx: AgentBackendContext) -> AsyncIterator[Any]:
        yield {"type": "text_delta", "text": "a dict is not an event"}

    backend = create_iterable_backend(kind="scripted", stream=stream)
    with serving(create_app(store_url=store_url, backend=backend)) as url:
        events = lines(chat(url, "hi").text)
    assert [e["type"] for e in events] == ["session.run.started", "error", "session.run.failed"]
    assert events[1]["data"]["code"] == "validation"
    assert "not a RuntimeStreamEvent" in events[1]["data"]["message"]


def _slow_backend(n: int, delay: float) -> Any:
    async def stream(
        _inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        for i in range(n):
            await asyncio.sleep(delay)
            yield TextDeltaEvent(text=f"{i} ")

    return create_iterable_backend(kind="slow", stream=stream)


async def test_live_tail_and_disconnected_client(store_url: str) -> None:
    """A client that drops mid-turn does not stop it; a tail joining late sees every event
    once, live, until the turn completes."""
    app = create_app(store_url=store_url, backend=_slow_backend(12, 0.03))
    with serving(app) as url:
        async with httpx2.AsyncClient(timeout=20) as client:
            body = {"session_id": "live", "turn_index": 0, "text": "go"}
            async with client.stream("POST", f"{url}/api/chat", json=body) as response:
                it = response.aiter_lines()
                assert orjson.loads(await it.__anext__())["type"] == "session.run.started"
                assert orjson.loads(await it.__anext__())["type"] == "text_delta"
            # the page went away after the first delta; re-attach from the start
            events = f"{url}/api/runs/chat:live:0/events"
            records = []
            async with client.stream("GET", events) as tail:
                async for line in tail.aiter_lines():
                    if line:
                        records.append(orjson.loads(line))
    payloads = [r["payload"] for r in records]
    assert [r["seq"] for r in records] == [*range(len(records) - 1), None]
    assert payloads[-1]["type"] == "session.run.completed"
    text = "".join(p["text"] for p in payloads if p["type"] == "text_delta")
    assert text == "".join(f"{i} " for i in range(12))


def test_models_and_health(echo_server: str) -> None:
    models = httpx2.get(f"{echo_server}/api/models").json()
    assert models["default"] == "echo" and [m["id"] for m in models["data"]] == ["echo"]
    health = httpx2.get(f"{echo_server}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "backend": "echo"}


def test_chat_page_is_served_from_the_package(echo_server: str) -> None:
    page = httpx2.get(f"{echo_server}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="app.js"' in page.text and "http" not in page.text.split("<body>")[1]
    for asset in ("app.js", "app.css"):
        assert httpx2.get(f"{echo_server}/{asset}").status_code == 200


def test_llm_katan_turn(tmp_path: Path, store_url: str) -> None:
    from agent_runtime.backends import create_openai_compatible_backend
    from tests.katan import running_katan

    with running_katan(tmp_path, name="katan-chat") as base:
        config = BackendConfig(
            backend=create_openai_compatible_backend(
                api_key="test-key", base_url=f"{base}/v1", model="katan-chat"
            ),
            model="katan-chat",
            base_url=f"{base}/v1",
            api_key="test-key",
        )
        with serving(create_app(store_url=store_url, backend=config)) as url:
            events = lines(chat(url, "say something").text)
            models = httpx2.get(f"{url}/api/models").json()
    assert events[0]["type"] == "session.run.started"
    assert events[-1]["type"] == "session.run.completed", events
    assert "".join(e["text"] for e in events if e["type"] == "text_delta").strip()
    usage = [e for e in events if e["type"] == "llm_call"]
    assert len(usage) == 1 and usage[0]["model"] and usage[0]["tokensOut"] > 0
    assert "costUsd" not in usage[0]  # unpriced: absent, never a made-up 0
    assert "katan-chat" in [m["id"] for m in models["data"]]


def test_echo_backend_is_the_default_without_openai_base_url(
    monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with serving(create_app(store_url=store_url)) as url:
        assert httpx2.get(f"{url}/healthz").json()["backend"] == "echo"


def test_echo_backend_chunks() -> None:
    assert create_echo_backend(chunk_chars=4).kind == "echo"


def test_sse_reconnect_resumes_after_last_event_id(echo_server: str) -> None:
    lines(chat(echo_server, "resume", session="sse").text)
    url = f"{echo_server}/api/runs/chat:sse:0/events"
    full = [f for f in httpx2.get(url, params={"format": "sse"}).text.split("\n\n") if f]
    resumed = httpx2.get(url, headers={"accept": "text/event-stream", "last-event-id": "0"})
    frames = [f for f in resumed.text.split("\n\n") if f]
    assert frames == full[1:]


async def test_shutdown_waits_for_a_headless_turn(store_url: str) -> None:
    """A turn whose client left is finished, not cut, when the server stops."""
    app = create_app(store_url=store_url, backend=_slow_backend(10, 0.05), sweep_interval_ms=None)
    with serving(app) as url:
        async with httpx2.AsyncClient(timeout=20) as client:
            body = {"session_id": "bye", "turn_index": 0, "text": "go"}
            async with client.stream("POST", f"{url}/api/chat", json=body) as response:
                it = response.aiter_lines()
                await it.__anext__()
                await it.__anext__()
    with serving(create_app(store_url=store_url, backend=create_echo_backend())) as url:
        closing = lines(httpx2.get(f"{url}/api/runs/chat:bye:0/events").text)[-1]["payload"]
    assert closing["type"] == "session.run.completed"
    assert closing["data"]["finalText"] == "".join(f"{i} " for i in range(10))


def test_models_lists_the_allowlist_and_readyz_reports_an_unreachable_endpoint(
    store_url: str,
) -> None:
    """`/api/models` is the server's allowlist (no upstream call, so it answers while the
    endpoint is down); `/readyz` reports the endpoint unreachable, with the store ready."""
    from agent_runtime.backends import create_openai_compatible_backend
    from agent_runtime.server import ServerSettings
    from tests.katan import free_port

    base = f"http://127.0.0.1:{free_port()}"
    config = BackendConfig(
        backend=create_openai_compatible_backend(api_key="k", base_url=f"{base}/v1", model="m"),
        model="m",
        base_url=f"{base}/v1",
    )
    settings = ServerSettings(models=("m", "m-large"))
    with serving(create_app(store_url=store_url, backend=config, settings=settings)) as url:
        models = httpx2.get(f"{url}/api/models")
        ready = httpx2.get(f"{url}/readyz")
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["m", "m-large"]
    assert ready.status_code == 200 and ready.json()["store"]["ok"] is True
    backend = ready.json()["backend"]
    assert backend["reachable"] is False and "unreachable" in backend["error"]


def test_a_turn_asking_for_another_model_gets_that_models_backend(store_url: str) -> None:
    def scripted(model: str) -> Any:
        async def stream(
            _inp: AgentBackendInput, _ctx: AgentBackendContext
        ) -> AsyncIterator[RuntimeStreamEvent]:
            yield TextDeltaEvent(text=f"answered by {model}")

        return create_iterable_backend(kind="scripted", stream=stream)

    from agent_runtime.server import ServerSettings

    config = BackendConfig(backend=scripted("default"), model="default", for_model=scripted)
    settings = ServerSettings(models=("default", "other-model"))
    with serving(create_app(store_url=store_url, backend=config, settings=settings)) as url:
        plain = lines(chat(url, "hi", session="m").text)
        body = {"session_id": "m", "turn_index": 1, "text": "hi", "model": "other-model"}
        other = lines(httpx2.post(f"{url}/api/chat", json=body).text)
    assert "".join(e["text"] for e in plain if e["type"] == "text_delta") == "answered by default"
    assert "".join(e["text"] for e in other if e["type"] == "text_delta") == (
        "answered by other-model"
    )


async def test_closing_the_producer_aborts_the_backend_and_closes_its_stream() -> None:
    from agent_runtime.server._turns import _BackendProducer
    from agent_runtime.types import AgentTaskSpec

    seen: list[AgentBackendContext] = []
    closed: list[bool] = []

    async def stream(
        _inp: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        seen.append(ctx)
        try:
            for i in range(100):
                yield TextDeltaEvent(text=f"{i} ")
        finally:
            closed.append(True)

    backend = create_iterable_backend(kind="scripted", stream=stream)
    task = AgentTaskSpec(id="chat:x:0", intent=CHAT_INTENT, domain="chat")
    producer = _BackendProducer(
        backend, AgentBackendInput(task=task, message="hi"), RuntimeSession.new("scripted", "x")
    )
    events = producer.stream
    assert await anext(events) == {"type": "text_delta", "text": "0 "}
    await events.aclose()  # type: ignore[attr-defined]
    assert seen[0].signal is not None and seen[0].signal.aborted
    assert closed == [True]
    assert producer.final_text() == "0 "


@pytest.mark.parametrize(
    ("detail", "code"),
    [
        ({"kind": "transport", "message": "down", "status": 503}, "config"),
        ({"kind": "backend", "message": "down"}, "backend_error"),
        (None, "backend_error"),
    ],
)
def test_a_backend_yielding_backend_error_fails_the_turn(
    store_url: str, detail: dict[str, Any] | None, code: str
) -> None:
    from agent_runtime.types import AgentTaskSpec, BackendErrorDetail, BackendErrorEvent

    async def stream(
        inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        yield TextDeltaEvent(text="partial")
        error = None if detail is None else BackendErrorDetail.from_dict(detail)
        task = AgentTaskSpec(id="t", intent="x")
        yield BackendErrorEvent(
            task=task, backend="scripted", message="it went down", recoverable=True, error=error
        )
        yield TextDeltaEvent(text="never sent")

    backend = create_iterable_backend(kind="scripted", stream=stream)
    with serving(create_app(store_url=store_url, backend=backend)) as url:
        events = lines(chat(url, "hi").text)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "text_delta",
        "error",
        "session.run.failed",
    ]
    assert events[2]["data"]["code"] == code
    assert events[2]["data"]["message"] == "it went down"
