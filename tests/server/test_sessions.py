"""The sessions API and the conversation history over real uvicorn with API keys: turns are
recorded with their usage, a text-only turn sees the session's earlier turns, a stopped turn
keeps its partial text, rename and delete, typed errors, and isolation between tenants and
users (another's session answers exactly like an unknown one). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_runtime.backends import create_iterable_backend
from agent_runtime.history import SQLiteConversationHistory
from agent_runtime.server import ApiKeys, create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    LlmCallEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
)
from tests.server.conftest import serving

ANN = "key-sessions-ann-0123456789abcdef"
BOB = "key-sessions-bob-0123456789abcdef"  # same tenant, another user
EVE = "key-sessions-eve-0123456789abcdef"  # another tenant
KEYS = f"{ANN}=acme:ann,{BOB}=acme:bob,{EVE}=evil:eve"


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def jauth(key: str) -> dict[str, str]:
    """A body-less write is JSON too (the gate's rule for every write)."""
    return {**auth(key), "content-type": "application/json"}


async def _stream(
    inp: AgentBackendInput, _ctx: AgentBackendContext
) -> AsyncIterator[RuntimeStreamEvent]:
    """Answers with what it was asked: the conversation it saw, or slowly for `slow`."""
    prompt = inp.messages[-1].content
    if prompt.startswith("slow"):
        for i in range(200):
            yield TextDeltaEvent(text=f"s{i} ")
            await asyncio.sleep(0.02)
        return
    seen = " | ".join(f"{m.role}:{m.content}" for m in inp.messages)
    yield TextDeltaEvent(text=f"saw [{seen}]")
    yield LlmCallEvent(model="m", tokens_in=7, tokens_out=3, cost_usd=0.002)


def _app(store_url: str) -> Any:
    return create_app(
        store_url=store_url,
        backend=create_iterable_backend(kind="context", stream=_stream),
        api_keys=ApiKeys.parse(KEYS, source="test", separator=","),
        sweep_interval_ms=None,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp_path}/runs.db"
    else:
        store_url = request.getfixturevalue("pg_dsn")
    with serving(_app(store_url)) as base:
        yield base


def text_of(response: httpx2.Response) -> str:
    """The answer a turn's NDJSON body streams (or replays)."""
    out = []
    for line in response.text.splitlines():
        event = json.loads(line)
        if event["type"] == "text_delta":
            out.append(event["text"])
        elif event["type"] == "result":
            out.append(event["data"]["finalText"])
    return "".join(out)


def turn(url: str, key: str, session: str, index: int, text: str) -> httpx2.Response:
    body = {"session_id": session, "turn_index": index, "text": text}
    return httpx2.post(f"{url}/api/chat", json=body, headers=auth(key), timeout=30)


def test_turns_are_recorded_and_text_only_turns_see_the_session(url: str) -> None:
    first = turn(url, ANN, "s1", 0, "hello")
    assert first.status_code == 200, first.text
    second = turn(url, ANN, "s1", 1, "and then")
    assert second.status_code == 200
    assert text_of(second) == "saw [user:hello | assistant:saw [user:hello] | user:and then]"

    listed = httpx2.get(f"{url}/api/sessions", headers=auth(ANN)).json()["sessions"]
    assert [s["sessionId"] for s in listed] == ["s1"]
    assert listed[0]["title"] == "hello"
    assert listed[0]["turnCount"] == 2
    assert set(listed[0]) == {"sessionId", "title", "createdAt", "updatedAt", "turnCount"}

    detail = httpx2.get(f"{url}/api/sessions/s1", headers=auth(ANN)).json()
    assert [t["executionId"] for t in detail["turns"]] == ["chat:s1:0", "chat:s1:1"]
    assert [t["status"] for t in detail["turns"]] == ["completed", "completed"]
    assert detail["turns"][0]["prompt"] == "hello"
    assert detail["turns"][0]["text"] == "saw [user:hello]"
    assert detail["turns"][1]["usage"] == {
        "tokensIn": 7,
        "tokensOut": 3,
        "costUsd": 0.002,
        "calls": 1,
    }

    # asked again (a reload): the same context, so the same turn, replayed
    again = turn(url, ANN, "s1", 1, "and then")
    assert again.status_code == 200 and text_of(again) == text_of(second)
    assert len(httpx2.get(f"{url}/api/sessions/s1", headers=auth(ANN)).json()["turns"]) == 2


def test_newest_session_first_rename_and_delete(url: str) -> None:
    assert turn(url, ANN, "older", 0, "first chat").status_code == 200
    time.sleep(0.01)
    assert turn(url, ANN, "newer", 0, "second chat").status_code == 200
    listed = httpx2.get(f"{url}/api/sessions", headers=auth(ANN)).json()["sessions"]
    assert [s["sessionId"] for s in listed] == ["newer", "older"]
    one = httpx2.get(f"{url}/api/sessions?limit=1", headers=auth(ANN)).json()["sessions"]
    assert [s["sessionId"] for s in one] == ["newer"]

    renamed = httpx2.patch(
        f"{url}/api/sessions/older", json={"title": "  Renamed  "}, headers=auth(ANN)
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    detail = httpx2.get(f"{url}/api/sessions/older", headers=auth(ANN)).json()
    assert detail["title"] == "Renamed"

    gone = httpx2.delete(f"{url}/api/sessions/older", headers=jauth(ANN))
    assert gone.status_code == 204 and gone.content == b""
    assert httpx2.get(f"{url}/api/sessions/older", headers=auth(ANN)).status_code == 404
    assert httpx2.delete(f"{url}/api/sessions/older", headers=jauth(ANN)).status_code == 404
    listed = httpx2.get(f"{url}/api/sessions", headers=auth(ANN)).json()["sessions"]
    assert [s["sessionId"] for s in listed] == ["newer"]
    # its turns are gone from the store too: the events of a deleted turn are unknown
    events = httpx2.get(f"{url}/api/runs/chat:older:0/events", headers=auth(ANN))
    assert events.status_code == 204


@pytest.mark.parametrize(
    ("path", "body", "status", "where"),
    [
        ("/api/sessions/s2", {"title": ""}, 422, "title"),
        ("/api/sessions/s2", {"title": "x" * 201}, 422, "title"),
        ("/api/sessions/s2", {"title": "a\nb"}, 422, "title"),
        ("/api/sessions/s2", {"title": 5}, 422, "title"),
        ("/api/sessions/s2", {}, 422, "title"),
        ("/api/sessions/s2", {"title": "t", "tenant_id": "evil"}, 422, "body"),
        ("/api/sessions/s2", [1], 400, "body"),
        ("/api/sessions/bad%20id", {"title": "t"}, 422, "session_id"),
    ],
)
def test_bad_renames_are_typed_errors_and_change_nothing(
    url: str, path: str, body: Any, status: int, where: str
) -> None:
    assert turn(url, ANN, "s2", 0, "keep my title").status_code == 200
    r = httpx2.patch(f"{url}{path}", json=body, headers=auth(ANN))
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"].startswith(f"{where}:")
    detail = httpx2.get(f"{url}/api/sessions/s2", headers=auth(ANN)).json()
    assert detail["title"] == "keep my title"


def test_other_limits_are_typed_errors(url: str) -> None:
    for bad in ("0", "201", "-1", "x", "9" * 30):
        r = httpx2.get(f"{url}/api/sessions?limit={bad}", headers=auth(ANN))
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("limit:")
    big = httpx2.patch(
        f"{url}/api/sessions/s",
        content=b'{"title": "' + b"x" * 5000 + b'"}',
        headers={**auth(ANN), "content-type": "application/json"},
    )
    assert big.status_code == 413
    assert httpx2.get(f"{url}/api/sessions").status_code == 401
    assert httpx2.get(f"{url}/api/sessions/nope", headers=auth(ANN)).status_code == 404


def test_another_tenants_or_users_session_is_unknown(url: str) -> None:
    assert turn(url, ANN, "mine", 0, "private words").status_code == 200
    unknown = httpx2.get(f"{url}/api/sessions/never-made", headers=auth(EVE))
    for key in (BOB, EVE):
        assert httpx2.get(f"{url}/api/sessions", headers=auth(key)).json() == {"sessions": []}
        r = httpx2.get(f"{url}/api/sessions/mine", headers=auth(key))
        assert (r.status_code, r.json()) == (unknown.status_code, unknown.json())
        p = httpx2.patch(f"{url}/api/sessions/mine", json={"title": "owned"}, headers=auth(key))
        assert p.status_code == 404
        d = httpx2.delete(f"{url}/api/sessions/mine", headers=jauth(key))
        assert d.status_code == 404
        # the same session id is theirs to use: it never sees ann's turns
        theirs = turn(url, key, "mine", 1, "what did ann say")
        assert theirs.status_code == 200
        assert text_of(theirs) == "saw [user:what did ann say]"
    detail = httpx2.get(f"{url}/api/sessions/mine", headers=auth(ANN)).json()
    assert detail["title"] == "private words"
    assert [t["prompt"] for t in detail["turns"]] == ["private words"]


def test_a_stopped_turn_keeps_its_partial_text_as_the_context(url: str) -> None:
    with httpx2.stream(
        "POST",
        f"{url}/api/chat",
        json={"session_id": "st", "turn_index": 0, "text": "slow please"},
        headers=auth(ANN),
        timeout=30,
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if "s3 " in line:
                break
        stop = httpx2.post(f"{url}/api/runs/chat:st:0/cancel", json={}, headers=auth(ANN))
        assert stop.status_code == 202
        rest = list(lines)
    assert "session.run.completed" in rest[-1]
    detail = httpx2.get(f"{url}/api/sessions/st", headers=auth(ANN)).json()
    (stopped,) = detail["turns"]
    assert stopped["status"] == "stopped"
    assert stopped["text"].startswith("s0 s1 s2 s3 ") and "s199" not in stopped["text"]
    after = turn(url, ANN, "st", 1, "go on")
    assert text_of(after).endswith(f"assistant:{stopped['text']} | user:go on]")


def test_failed_and_running_turns_are_listed_as_they_stand(tmp_path: Path) -> None:
    calls = {"n": 0}

    async def flaky(
        inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        calls["n"] += 1
        yield TextDeltaEvent(text="partial ")
        raise RuntimeError("the model fell over")

    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=create_iterable_backend(kind="flaky", stream=flaky),
        api_keys=ApiKeys.parse(KEYS, source="test", separator=","),
        sweep_interval_ms=None,
    )
    with serving(app) as base:
        r = turn(base, ANN, "f", 0, "try me")
        assert "session.run.failed" in r.text
        detail = httpx2.get(f"{base}/api/sessions/f", headers=auth(ANN)).json()
    (failed,) = detail["turns"]
    assert failed["status"] == "failed" and failed["prompt"] == "try me"
    assert failed["error"] and failed["text"] == ""
    assert detail["turnCount"] == 1


def test_history_lives_in_the_stores_sqlite_file(tmp_path: Path) -> None:
    with serving(_app(f"sqlite:///{tmp_path}/runs.db")) as base:
        assert turn(base, ANN, "file", 0, "persist me").status_code == 200

    async def read() -> Any:
        history = SQLiteConversationHistory(tmp_path / "runs.db")
        try:
            return await history.load("chat:acme:ann:file", tenant_id="acme", user_id="ann")
        finally:
            await history.close()

    found = asyncio.run(read())
    assert found is not None
    assert [m["role"] for m in found.messages] == ["user", "assistant"]
    assert found.messages[1]["content"] == "saw [user:persist me]"
    # a fresh server on the same file serves the same sessions
    with serving(_app(f"sqlite:///{tmp_path}/runs.db")) as base:
        listed = httpx2.get(f"{base}/api/sessions", headers=auth(ANN)).json()["sessions"]
        assert [s["sessionId"] for s in listed] == ["file"]
