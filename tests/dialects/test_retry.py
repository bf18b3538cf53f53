"""A failed turn asked again, with the same or an edited input, runs its next attempt under
the same execution id, through every way in (`/api/chat`, `useChat`'s regenerate and edit,
AG-UI's `HttpAgent` running the conversation again), on SQLite and PostgreSQL; a completed
turn asked with other input is still refused; a client reading the retried turn afresh sees
only the new attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from .node import run_client
from .scripted import words
from .servers import AUTH, Server, scripted_server


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/runs.db"
    else:
        url = request.getfixturevalue("pg_dsn")
    with scripted_server(url) as srv:
        yield srv


def _chat(server: Server, session: str, text: str) -> httpx2.Response:
    body = {"session_id": session, "turn_index": 0, "text": text}
    return httpx2.post(f"{server.url}/api/chat", json=body, headers=AUTH, timeout=30)


def _lines(response: httpx2.Response) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in response.text.splitlines()]


def _text(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def _sse(body: str) -> list[Any]:
    out = []
    for block in body.split("\n\n"):
        data = "".join(x[5:].strip() for x in block.split("\n") if x.startswith("data:"))
        if data:
            out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def _attempts(server: Server, session: str) -> list[str]:
    _run, log = server.load(session)
    return [r.event_id for r in log if r.event_id.endswith(":restart")]


def test_native_chat_retries_a_failed_turn_with_the_same_and_an_edited_input(
    server: Server,
) -> None:
    first = _chat(server, "n-same", "flaky one")
    assert _lines(first)[-1]["type"] == "session.run.failed"
    second = _chat(server, "n-same", "flaky one")
    assert second.headers["x-execution-id"] == first.headers["x-execution-id"] == "chat:n-same:0"
    again = _lines(second)
    assert again[-1]["type"] == "session.run.completed"
    # the client drops what it had at the marker: it ends with the new attempt's text
    marker = again.index(
        {"type": "session.run.restarted", "data": {"sessionId": "n-same", "attempt": 2}}
    )
    after = "".join(e["text"] for e in again[marker:] if e["type"] == "text_delta")
    assert after == words(6)
    run, _log = server.load("n-same")
    assert run is not None and run.status == "completed" and run.outcome["text"] == words(6)
    assert _attempts(server, "n-same") == ["turn:2:restart"]
    assert server.scripted.calls["flaky one"] == 2
    # edited: the failed turn is asked with other input
    assert _lines(_chat(server, "n-edit", "fail first"))[-1]["type"] == "session.run.failed"
    edited = _lines(_chat(server, "n-edit", "hello instead"))
    assert edited[-1]["type"] == "session.run.completed"
    run, _log = server.load("n-edit")
    assert run is not None and run.outcome["text"] == words(6)
    assert run is not None and run.manifest["input"]["input"]["messages"][-1]["content"] == (
        "hello instead"
    )
    # a turn that failed twice is retried again (attempt 3)
    assert _lines(_chat(server, "n-twice", "fail a"))[-1]["type"] == "session.run.failed"
    assert _lines(_chat(server, "n-twice", "fail b"))[-1]["type"] == "session.run.failed"
    assert _lines(_chat(server, "n-twice", "ok c"))[-1]["type"] == "session.run.completed"
    assert _attempts(server, "n-twice") == ["turn:2:restart", "turn:3:restart"]
    # a completed turn asked with other input is still refused, and changes nothing
    refused = _chat(server, "n-edit", "something else")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "manifest_mismatch"
    assert "acme" not in refused.text and "chat:n-edit:0" in refused.text  # the client's id
    assert server.load("n-edit")[0] == run


def test_ai_sdk_regenerate_and_edit_retry_a_failed_turn(node: str, server: Server) -> None:
    api = f"{server.url}/api/ui/chat"
    failed = run_client(
        node,
        "vercel_client.mjs",
        {"api": api, "headers": AUTH, "chatId": "v-regen", "text": "flaky"},
    )
    assert failed["status"] == "error" and failed["error"] == "the model is down"
    regen = run_client(
        node,
        "vercel_client.mjs",
        {
            "api": api,
            "headers": AUTH,
            "chatId": "v-regen",
            "messages": failed["messages"],
            "regenerate": True,
        },
    )
    assert regen["status"] == "ready" and regen["errors"] == []
    (user, assistant) = regen["messages"]
    assert user["role"] == "user" and assistant["id"] == "chat:v-regen:0"
    assert [p["type"] for p in assistant["parts"] if p["type"] == "text"] == ["text"]
    assert _text(assistant) == words(6)  # only the new attempt: no "w0 " left from the failure
    assert not any(e["data"] == {"type": "data-restarted"} for e in regen["events"])
    run, _log = server.load("v-regen")
    assert run is not None and run.status == "completed" and run.outcome["text"] == words(6)
    # edit: the failed turn's user message replaced (sendMessage with its messageId)
    failed = run_client(
        node,
        "vercel_client.mjs",
        {"api": api, "headers": AUTH, "chatId": "v-edit", "text": "fail x"},
    )
    assert failed["status"] == "error"
    edited = run_client(
        node,
        "vercel_client.mjs",
        {
            "api": api,
            "headers": AUTH,
            "chatId": "v-edit",
            "messages": failed["messages"],
            "editText": "hello",
        },
    )
    assert edited["status"] == "ready" and edited["errors"] == []
    user, assistant = edited["messages"]
    assert _text(user) == "hello" and _text(assistant) == words(6)
    # a fresh reader of the retried turn (the same request again: a replay) sees only the
    # new attempt, with the cursor of the stored log
    body = {
        "id": "v-edit",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hello"}]}],
    }
    replay = httpx2.post(api, json=body, headers=AUTH, timeout=30)
    chunks = _sse(replay.text)
    deltas = "".join(
        c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta"
    )
    assert deltas == words(6) and chunks[-1] == "[DONE]"
    assert not any(isinstance(c, dict) and c["type"] == "error" for c in chunks)


def test_agui_runs_a_failed_turn_again_with_the_same_and_an_edited_input(
    node: str, server: Server
) -> None:
    url = f"{server.url}/api/agui"
    same, edited = run_client(
        node,
        "agui_client.mjs",
        [
            {"url": url, "headers": AUTH, "threadId": "a-same", "text": "flaky", "retry": True},
            {
                "url": url,
                "headers": AUTH,
                "threadId": "a-edit",
                "text": "fail y",
                "retry": True,
                "retryText": "hello",
            },
        ],
    )
    for out in (same, edited):
        types = [e["data"]["type"] for e in out["events"]]
        assert "RUN_ERROR" in types
        assert types[-1] == "RUN_FINISHED"
        assert out["runs"][-1]["error"] is None
        assistant = [m["content"] for m in out["messages"] if m["role"] == "assistant"]
        assert assistant[-1] == words(6)
    for session in ("a-same", "a-edit"):
        run, _log = server.load(session)
        assert run is not None and run.status == "completed" and run.outcome["text"] == words(6)
        assert _attempts(server, session) == ["turn:2:restart"]
