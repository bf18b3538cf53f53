"""The real clients (the AI SDK's chat state machine, AG-UI's HttpAgent) against the real
service on uvicorn with API keys: a full turn, resume after a dropped connection, 204 when
idle, and stop (the backend's stream is closed, the partial text is the stored answer, a
re-attach replays the stopped turn)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_runtime.backends import create_iterable_backend
from agent_runtime.durable import open_store
from agent_runtime.errors import BackendTransportError
from agent_runtime.server import ApiKeys, create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeStreamEvent,
    TextDeltaEvent,
)
from tests.server.conftest import serving

from .node import run_client

KEY = "key-dialects-tenant-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
WORDS = 40


class Upstream:
    """A backend standing in for the model: `slow ...` prompts stream WORDS words 30 ms
    apart, others stream a short answer; it counts streams opened and closed early."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed_early = 0
        self.flaky = 0

    def stream(
        self, inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        async def gen() -> AsyncIterator[RuntimeStreamEvent]:
            self.opened += 1
            prompt = inp.messages[-1].content if inp.messages else ""
            slow = prompt.startswith("slow")
            first = 0
            if prompt.startswith("flaky"):
                self.flaky += 1
                yield TextDeltaEvent(text="w0 ")
                if self.flaky == 1:
                    raise BackendTransportError("upstream", "the model is down", status=502)
                first = 1
            count = WORDS if slow else 6
            done = False
            try:
                for i in range(first, count):
                    yield TextDeltaEvent(text=f"w{i} ")
                    await asyncio.sleep(0.03 if slow else 0.005)
                done = True
            finally:
                if not done:
                    self.closed_early += 1

        return gen()


def answer(count: int) -> str:
    return "".join(f"w{i} " for i in range(count))


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dialect-endpoints") / "runs.db"


@pytest.fixture(scope="module")
def url(upstream: Upstream, store_path: Path) -> Iterator[str]:
    app = create_app(
        store_url=f"sqlite:///{store_path}",
        backend=create_iterable_backend(kind="upstream", stream=upstream.stream),
        api_keys=ApiKeys.parse(f"{KEY}=acme:ann", source="test", separator=","),
        sweep_interval_ms=None,
    )
    with serving(app) as base:
        yield base


def stored(store_path: Path, execution_id: str) -> Any:
    """The run's recorded outcome (the tenant and user of KEY name it)."""
    _, session, turn = execution_id.split(":")

    async def load() -> Any:
        store = await open_store(f"sqlite:///{store_path}")
        try:
            run = await store.load_run(f"chat:acme:ann:{session}:{turn}")
            return None if run is None else (run.status, run.outcome)
        finally:
            await store.close()

    return asyncio.run(load())


def _assistant_text(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def _vercel(node: str, url: str, **job: Any) -> Any:
    return run_client(
        node, "vercel_client.mjs", {"api": f"{url}/api/ui/chat", "headers": AUTH, **job}
    )


def _agui(node: str, url: str, **job: Any) -> Any:
    return run_client(node, "agui_client.mjs", {"url": f"{url}/api/agui", "headers": AUTH, **job})


def test_ai_sdk_full_turn_then_204_when_idle(node: str, url: str, store_path: Path) -> None:
    out = _vercel(node, url, chatId="v-full", text="hello")
    assert out["status"] == "ready" and out["errors"] == []
    _user, assistant = out["messages"]
    assert assistant["id"] == "chat:v-full:0"
    assert _assistant_text(assistant) == answer(6)
    status, outcome = stored(store_path, "chat:v-full:0")
    assert status == "completed" and outcome["text"] == answer(6)
    idle = httpx2.get(f"{url}/api/ui/chat/v-full/stream", headers=AUTH)
    assert idle.status_code == 204
    assert httpx2.get(f"{url}/api/ui/chat/never/stream", headers=AUTH).status_code == 204
    # the client's own resume of the finished chat: nothing to resume, the message stays
    again = _vercel(node, url, chatId="v-full", messages=out["messages"], resume=True)
    assert again["statuses"] == [204] and _assistant_text(again["messages"][1]) == answer(6)


def test_ai_sdk_needs_the_api_key(url: str) -> None:
    body = {
        "id": "x",
        "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
    }
    assert httpx2.post(f"{url}/api/ui/chat", json=body).status_code == 401
    assert (
        httpx2.post(
            f"{url}/api/agui", json={"threadId": "t", "runId": "r", "messages": []}
        ).status_code
        == 401
    )


@pytest.mark.parametrize("replay", [True, False])
def test_ai_sdk_resumes_mid_text_after_a_dropped_connection(
    node: str, url: str, store_path: Path, replay: bool
) -> None:
    chat = f"v-drop-{replay}"
    out = _vercel(
        node, url, chatId=chat, text="slow one", dropAfterDeltas=3, resume=True, replay=replay
    )
    assert out["errors"] == ["network error"] and out["status"] == "ready"
    assert out["statuses"] == [200, 200]
    (assistant,) = [m for m in out["messages"] if m["role"] == "assistant"]
    status, outcome = stored(store_path, f"chat:{chat}:0")
    assert status == "completed"
    assert _assistant_text(assistant) == outcome["text"] == answer(WORDS)  # no gap, no repeat


def test_ai_sdk_stop_closes_the_upstream_and_keeps_the_partial_text(
    node: str, url: str, store_path: Path, upstream: Upstream
) -> None:
    before = upstream.closed_early
    out = _vercel(
        node,
        url,
        chatId="v-stop",
        text="slow stop",
        stopAfterDeltas=3,
        cancelUrl=f"{url}/api/runs/chat:v-stop:0/cancel",
    )
    assert out["errors"] == [] and out["status"] == "ready"
    assert "cancel:202" in out["statuses"]
    chunks = [e["data"] for e in out["events"]]
    assert chunks[-2:] == [{"type": "abort", "reason": "stopped by the user"}, "[DONE]"]
    assert upstream.closed_early == before + 1  # the model's stream was closed, not drained
    status, outcome = stored(store_path, "chat:v-stop:0")
    text = _assistant_text(out["messages"][1])
    assert status == "completed" and outcome["text"] == text
    assert text.startswith(answer(3)) and text != answer(WORDS)
    # asked again: the stopped turn replays, the model is not called again
    opened = upstream.opened
    again = _vercel(node, url, chatId="v-stop", text="slow stop")
    assert _assistant_text(again["messages"][1]) == text and upstream.opened == opened
    cancel_again = httpx2.post(f"{url}/api/runs/chat:v-stop:0/cancel", headers=AUTH, json={})
    assert cancel_again.status_code == 200 and cancel_again.json()["stopped"] is False


def test_cancel_of_an_unknown_turn_is_404(url: str) -> None:
    r = httpx2.post(f"{url}/api/runs/chat:nobody:0/cancel", headers=AUTH, json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    bad = httpx2.post(f"{url}/api/runs/nope/cancel", headers=AUTH, json={})
    assert bad.status_code == 422


def test_agui_full_turn_and_drop_and_resume(node: str, url: str, store_path: Path) -> None:
    full, dropped = run_client(
        node,
        "agui_client.mjs",
        [
            {"url": f"{url}/api/agui", "headers": AUTH, "threadId": "a-full", "text": "hello"},
            {
                "url": f"{url}/api/agui",
                "headers": AUTH,
                "threadId": "a-drop",
                "text": "slow drop",
                "dropAfterDeltas": 3,
                "resumeAfterDrop": True,
            },
        ],
    )
    assert full["runs"] == [{"error": None, "pendingInterrupts": []}]
    assert [m["content"] for m in full["messages"] if m["role"] == "assistant"] == [answer(6)]
    assert [r["error"] for r in dropped["runs"]] == ["network error", None]
    status, outcome = stored(store_path, "chat:a-drop:0")
    assert status == "completed"
    assistant = [m["content"] for m in dropped["messages"] if m["role"] == "assistant"]
    assert assistant == [outcome["text"]] == [answer(WORDS)]


def test_agui_stop(node: str, url: str, store_path: Path, upstream: Upstream) -> None:
    before = upstream.closed_early
    out = _agui(
        node,
        url,
        threadId="a-stop",
        text="slow stop",
        stopAfterDeltas=3,
        cancelUrl=f"{url}/api/runs/chat:a-stop:0/cancel",
    )
    assert "cancel:202" in out["statuses"]
    assert out["events"][-1]["data"]["type"] == "RUN_FINISHED"
    assert out["events"][-1]["data"]["outcome"] == {"type": "cancelled"}
    assert upstream.closed_early == before + 1
    status, outcome = stored(store_path, "chat:a-stop:0")
    assert status == "completed" and out["messages"][-1]["content"] == outcome["text"]


def test_a_failed_turn_asked_again_runs_a_new_attempt(
    node: str, url: str, store_path: Path
) -> None:
    failed, retried = run_client(
        node,
        "vercel_client.mjs",
        [
            {"api": f"{url}/api/ui/chat", "headers": AUTH, "chatId": "v-flaky", "text": "flaky"},
            {"api": f"{url}/api/ui/chat", "headers": AUTH, "chatId": "v-flaky", "text": "flaky"},
        ],
    )
    assert failed["status"] == "error" and failed["error"] == "the model is down"
    assert retried["status"] == "ready" and retried["errors"] == []
    status, outcome = stored(store_path, "chat:v-flaky:0")
    assert status == "completed" and outcome["text"] == answer(6)
    assert _assistant_text(retried["messages"][1]) == answer(6)
