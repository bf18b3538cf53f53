"""DurableChatTurnEngine against a real OpenAI-compatible server (llm-katan, echo backend):
the model is called once per turn, whatever the client does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_runtime.backends import BackendRetryPolicy, create_openai_compatible_backend
from agent_runtime.chat import ChatTurnIdentity, DurableChatTurnEngine, result_event
from agent_runtime.durable import DurableRunStore
from agent_runtime.runtime import run_agent_task_stream
from agent_runtime.types import AgentTaskSpec, FinalEvent, TextDeltaEvent
from tests.katan import running_katan

MODEL = "katan-echo"
FAST = BackendRetryPolicy(max_attempts=2, initial_backoff_ms=10, max_backoff_ms=20)
TASK = AgentTaskSpec(id="chat", intent="Answer the user's chat message.", domain="chat")


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_katan(tmp_path_factory.mktemp("katan"), name=MODEL) as base:
        yield base


class ModelProducer:
    """A turn answered by the model: text deltas as chat events, then the assembled text."""

    def __init__(self, base_url: str, prompt: str) -> None:
        self.base_url = base_url
        self.prompt = prompt
        self.text = ""

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        backend = create_openai_compatible_backend(
            api_key="k", base_url=f"{self.base_url}/v1", model=MODEL, retry=FAST
        )
        try:
            async for event in run_agent_task_stream(TASK, backend, input={"message": self.prompt}):
                if isinstance(event, TextDeltaEvent):
                    yield {"type": "text_delta", "text": event.text}
                elif isinstance(event, FinalEvent):
                    assert event.status == "completed", event.reason
                    self.text = event.text or ""
        finally:
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return self.text


class Hooks:
    def __init__(self, base_url: str, prompt: str) -> None:
        self.base_url = base_url
        self.prompt = prompt
        self.model_calls = 0
        self.persisted: list[str] = []

    def produce(self) -> ModelProducer:
        self.model_calls += 1
        return ModelProducer(self.base_url, self.prompt)

    def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        self.persisted.append(text)


async def test_a_model_turn_is_answered_once(
    katan: str, store: DurableRunStore, tmp_path: Path
) -> None:
    engine = DurableChatTurnEngine(store, "katan")
    identity = ChatTurnIdentity("t", f"s-{tmp_path.name}", "u", 0)
    hooks = Hooks(katan, "tell me about durable turns please")
    body = engine.run_turn(identity, hooks, input={"message": hooks.prompt}).body
    first = [orjson.loads(await anext(body)) for _ in range(2)]
    assert [e["type"] for e in first] == ["session.run.started", "text_delta"]
    assert first[0]["data"] == {"sessionId": identity.session_id, "tenantId": "t", "turnIndex": 0}
    await body.aclose()  # the client went away after the first delta

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    run_id = engine.execution_id(identity)
    while (run := await store.load_run(run_id)) is None or run.status != "completed":
        assert loop.time() < deadline, "the turn did not finish headless"
        await asyncio.sleep(0.01)
    text = hooks.persisted[0]
    assert "tell me about durable turns please" in text
    log = await store.read_stream_events(run_id)
    assert "".join(r.payload["text"] for r in log) == text

    again = [
        orjson.loads(line)
        async for line in engine.run_turn(identity, hooks, input={"message": hooks.prompt}).body
    ]
    assert again[1:] == [
        result_event(text),
        {
            "type": "session.run.completed",
            "data": {"sessionId": identity.session_id, "replayed": True},
        },
    ]
    assert hooks.model_calls == 1 and hooks.persisted == [text]
