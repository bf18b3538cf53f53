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
from agent_runtime.server import BackendConfig, create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    ErrorEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
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
    assert events[0]["type"] == "session.run.started"
    assert events[0]["session_id"] == "s1" and events[0]["turn_index"] == 0
    assert events[-1]["type"] == "session.run.completed"
    deltas = [e for e in events if e["type"] == "text.delta"]
    assert len(deltas) > 1  # chunked, not one blob
    assert "".join(d["text"] for d in deltas) == "echo: hello world"


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
        "execution_id": "chat:r:0",
        "text": "echo: replay me",
    }
    tail = lines(httpx2.get(url, params={"after": 1}).text)
    assert [r["seq"] for r in tail] == [*range(2, len(produced)), None]
    sse = httpx2.get(
        url, params={"after": len(produced) - 2}, headers={"accept": "text/event-stream"}
    )
    assert sse.headers["content-type"].startswith("text/event-stream")
    frames = [f.splitlines() for f in sse.text.split("\n\n") if f]
    assert [f[:2] for f in frames] == [
        ["event: done", f"id: {len(produced) - 1}"],
        [
            "event: session.run.completed",
            'data: {"type":"session.run.completed",'
            '"execution_id":"chat:r:0","text":"echo: replay me"}',
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
    for after in ("x", "-2", "1.5"):
        r = httpx2.get(f"{echo_server}/api/runs/chat:s:0/events", params={"after": after})
        assert r.status_code == 422 and "after" in r.json()["error"]["message"]
    big = b'{"session_id": "s", "turn_index": 0, "text": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    r = httpx2.post(f"{echo_server}/api/chat", content=big)
    assert r.status_code == 422 and "larger" in r.json()["error"]["message"]


def test_retried_turn_replays_without_calling_the_backend(store_url: str) -> None:
    calls: list[str] = []

    def factory(inp: AgentBackendInput, _ctx: AgentBackendContext) -> list[RuntimeStreamEvent]:
        calls.append(inp.prompt)
        return [TextDeltaEvent(text="one "), TextDeltaEvent(text="two")]

    app = create_app(store_url=store_url, backend=create_iterable_backend(factory))
    with serving(app) as url:
        first = chat(url, "hi").text
        second = chat(url, "hi").text
        other = chat(url, "something else")
    assert calls == ["hi"]
    replayed = lines(second)
    assert [e["type"] for e in replayed] == [
        "session.run.started",
        "turn.replayed",
        "session.run.completed",
    ]
    assert replayed[1]["text"] == "one two"
    assert [e for e in lines(first) if e["type"] == "text.delta"] == [
        {"type": "text.delta", "text": "one ", "index": 0},
        {"type": "text.delta", "text": "two", "index": 0},
    ]
    assert other.status_code == 409
    assert other.json()["error"]["type"] == "DurableRunInputMismatchError"


def test_backend_error_fails_the_turn(store_url: str) -> None:
    backend = create_iterable_backend(
        [TextDeltaEvent(text="partial"), ErrorEvent(code="backend.boom", message="it broke")]
    )
    with serving(create_app(store_url=store_url, backend=backend)) as url:
        events = lines(chat(url, "hi").text)
        replay = lines(httpx2.get(f"{url}/api/runs/chat:s1:0/events").text)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "text.delta",
        "error",
        "session.run.failed",
    ]
    assert events[2]["code"] == "backend.boom"
    assert [r["payload"] for r in replay[:-1]] == [events[1]]
    closing = replay[-1]["payload"]
    assert closing["type"] == "session.run.failed"
    assert "it broke" in closing["error"]["message"]


def _slow_backend(n: int, delay: float) -> Any:
    async def gen(inp: AgentBackendInput) -> AsyncIterator[RuntimeStreamEvent]:
        for i in range(n):
            await asyncio.sleep(delay)
            yield TextDeltaEvent(text=f"{i} ")

    return create_iterable_backend(lambda inp, _ctx: gen(inp))


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
                assert orjson.loads(await it.__anext__())["type"] == "text.delta"
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
    text = "".join(p["text"] for p in payloads if p["type"] == "text.delta")
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
            backend=create_openai_compatible_backend(base, "test-key", "katan-chat"),
            model="katan-chat",
            base_url=base,
            api_key="test-key",
        )
        with serving(create_app(store_url=store_url, backend=config)) as url:
            events = lines(chat(url, "say something").text)
            models = httpx2.get(f"{url}/api/models").json()
    assert events[0]["type"] == "session.run.started"
    assert events[-1]["type"] == "session.run.completed", events
    assert "".join(e["text"] for e in events if e["type"] == "text.delta").strip()
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
    assert closing["text"] == "".join(f"{i} " for i in range(10))


def test_models_of_an_unreachable_endpoint_is_a_typed_502(store_url: str) -> None:
    from agent_runtime.backends import create_openai_compatible_backend
    from tests.katan import free_port

    base = f"http://127.0.0.1:{free_port()}"
    config = BackendConfig(
        backend=create_openai_compatible_backend(base, None, "m"), model="m", base_url=base
    )
    with serving(create_app(store_url=store_url, backend=config)) as url:
        response = httpx2.get(f"{url}/api/models")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "BackendTransportError"
