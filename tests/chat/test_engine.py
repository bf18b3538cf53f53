"""DurableChatTurnEngine: handle_chat_turn's lines on a durable run, persist recorded with its end,
a replay as one `result` line, `session.run.completed` with `replayed`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from agent_runtime.chat import ChatTurnIdentity, DurableChatTurnEngine
from agent_runtime.durable import DurableRunStore
from agent_runtime.errors import DurableValueError, InvalidArgumentError

IDENTITY = ChatTurnIdentity(tenant_id="t1", session_id="s1", user_id="u1", turn_index=2)
STARTED = {
    "type": "session.run.started",
    "data": {"sessionId": "s1", "tenantId": "t1", "turnIndex": 2},
}
DELTAS = [{"type": "text_delta", "text": "hello "}, {"type": "text_delta", "text": "world"}]


class Producer:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for e in self.events:
            yield e
            await asyncio.sleep(0)

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return "".join(e["text"] for e in self.events)


class Hooks:
    def __init__(self, events: list[dict[str, Any]] = DELTAS, fail_persist: int = 0) -> None:
        self.events = events
        self.fail_persist = fail_persist
        self.produced = 0
        self.persisted: list[str] = []
        self.completed: list[str] = []
        self.seen: list[str] = []

    def produce(self) -> Producer:
        self.produced += 1
        return Producer(self.events)

    async def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        if self.fail_persist:
            self.fail_persist -= 1
            raise RuntimeError("db is read-only")
        self.persisted.append(text)

    def on_event(self, event: dict[str, Any]) -> None:
        self.seen.append(event["type"])

    def on_turn_complete(self, identity: ChatTurnIdentity, text: str) -> None:
        self.completed.append(text)


async def run(engine: DurableChatTurnEngine, hooks: Any, **kw: Any) -> list[dict[str, Any]]:
    return [orjson.loads(line) async for line in engine.run_turn(IDENTITY, hooks, **kw).body]


async def test_a_finish_recorded_as_a_step_is_replayed_not_run_again(
    store: DurableRunStore,
) -> None:
    """A run whose finish was recorded as a step of its own (and whose worker died before
    ending it) is completed from the stored steps: nothing is produced or persisted again."""
    engine = DurableChatTurnEngine(store, "proj")
    run_id = engine.execution_id(IDENTITY)
    manifest = engine.manifest(IDENTITY, {"message": "hi"})
    claimed, _, _ = await store.start_or_resume(run_id, manifest, "dead", lease_ms=1)
    fence = {"worker_id": "dead", "lease_epoch": claimed.lease_epoch}
    produced = {"text": "stored", "events": 0, "attempt": 1}
    await store.complete_step(run_id, 0, produced, "chat.turn.produce", "llm", **fence)
    finished = {"text": "stored", "persisted": True}
    await store.complete_step(run_id, 1, finished, "chat.turn.finish", "tool", **fence)
    await asyncio.sleep(0.01)  # the dead worker's lease lapses
    hooks = Hooks()
    events = await run(engine, hooks, input={"message": "hi"})
    assert events[-1]["type"] == "session.run.completed"
    assert hooks.produced == 0 and hooks.persisted == [] and hooks.completed == ["stored"]
    record = await store.load_run(run_id)
    assert record is not None and record.status == "completed"
    assert record.outcome["finish"] == finished


async def test_fresh_then_replayed_turn(store: DurableRunStore) -> None:
    engine = DurableChatTurnEngine(store, "proj")
    hooks = Hooks()
    events = await run(engine, hooks, input={"message": "hi"})
    assert events == [
        STARTED,
        *DELTAS,
        {"type": "session.run.completed", "data": {"sessionId": "s1", "replayed": False}},
    ]
    assert hooks.persisted == ["hello world"] and hooks.completed == ["hello world"]
    assert hooks.seen == [e["type"] for e in events]  # on_event sees the envelope too
    run_id = engine.execution_id(IDENTITY)
    assert run_id == "proj:s1:2"
    steps = await store.load_steps(run_id)
    assert [s.intent for s in steps] == ["chat.turn.produce"]  # the finish ends the run
    record = await store.load_run(run_id)
    assert record is not None and record.outcome["finish"] == {
        "text": "hello world",
        "persisted": True,
    }

    hooks.seen.clear()
    again = await run(engine, hooks, input={"message": "hi"})
    assert again == [
        STARTED,
        {"type": "result", "data": {"finalText": "hello world"}},
        {"type": "session.run.completed", "data": {"sessionId": "s1", "replayed": True}},
    ]
    assert hooks.seen == [e["type"] for e in again]
    assert hooks.produced == 1 and hooks.persisted == ["hello world"]  # no double write
    assert hooks.completed == ["hello world"]  # not re-announced on a replay

    changed = await run(engine, hooks, input={"message": "something else"})
    assert changed[-2]["data"]["code"] == "manifest_mismatch"
    assert changed[-1]["type"] == "session.run.failed"


async def test_transform_is_persisted_not_streamed(store: DurableRunStore) -> None:
    hooks = Hooks()
    hooks.transform_final_text = lambda t: t.upper()  # type: ignore[attr-defined]
    events = await run(DurableChatTurnEngine(store), hooks)
    assert events[1:3] == DELTAS and hooks.persisted == ["HELLO WORLD"]
    assert hooks.completed == ["HELLO WORLD"]


async def test_persist_failure_is_logged_and_the_turn_completes(store: DurableRunStore) -> None:
    engine = DurableChatTurnEngine(store)
    hooks = Hooks(fail_persist=1)
    logged: list[tuple[str, Any]] = []
    events = await run(engine, hooks, log=lambda m, meta: logged.append((m, dict(meta))))
    assert events[-1] == {
        "type": "session.run.completed",
        "data": {"sessionId": "s1", "replayed": False},
    }
    assert logged == [("[chat-engine] persistAssistantMessage threw", {"error": "db is read-only"})]
    assert hooks.completed == ["hello world"]
    again = await run(engine, hooks)
    assert again[1]["type"] == "result" and hooks.persisted == []  # replayed, not re-persisted


async def test_persist_failure_then_retry_persists_once_with_persist_errors_fail(
    store: DurableRunStore,
) -> None:
    engine = DurableChatTurnEngine(store)
    hooks = Hooks(fail_persist=1)
    events = await run(engine, hooks, persist_errors="fail", log=lambda m, meta: None)
    assert [e["type"] for e in events][-2:] == ["error", "session.run.failed"]
    assert events[-2]["data"]["stage"] == "persist"
    assert "read-only" in events[-2]["data"]["message"]
    assert events[-1]["data"] == {"sessionId": "s1", "message": "db is read-only"}
    assert hooks.persisted == [] and hooks.completed == []
    retry = await run(engine, hooks, persist_errors="fail")
    assert retry[-1]["type"] == "session.run.completed"
    assert hooks.produced == 1  # the checkpointed text is reused, the model is not called again
    assert hooks.persisted == ["hello world"]


async def test_transform_failure_fails_the_turn_at_its_stage(store: DurableRunStore) -> None:
    hooks = Hooks()

    def transform(text: str) -> str:
        raise RuntimeError("redactor down")

    hooks.transform_final_text = transform  # type: ignore[attr-defined]
    events = await run(DurableChatTurnEngine(store), hooks, log=lambda m, meta: None)
    assert events[1:3] == DELTAS
    assert events[-2]["data"]["stage"] == "transform"
    assert events[-1]["data"]["message"] == "redactor down" and hooks.persisted == []


async def test_disconnecting_client_does_not_lose_the_turn(store: DurableRunStore) -> None:
    engine = DurableChatTurnEngine(store)
    hooks = Hooks([{"type": "text_delta", "text": f"{i} "} for i in range(50)])
    body = engine.run_turn(IDENTITY, hooks).body
    first = [await anext(body) for _ in range(3)]
    assert orjson.loads(first[0]) == STARTED
    await body.aclose()  # what an ASGI server does when the client goes away
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not hooks.persisted:  # the turn finishes headless and persists
        assert loop.time() < deadline
        await asyncio.sleep(0.005)
    assert hooks.persisted == ["".join(f"{i} " for i in range(50))]
    log = await store.read_stream_events(engine.execution_id(IDENTITY))
    assert len(log) == 50


async def test_engine_refuses_bad_arguments(store: DurableRunStore) -> None:
    with pytest.raises(DurableValueError):
        DurableChatTurnEngine("nope")  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        DurableChatTurnEngine(store, "")
    engine = DurableChatTurnEngine(store)
    with pytest.raises(InvalidArgumentError):
        engine.run_turn("nope", Hooks())  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        engine.run_turn(IDENTITY, Hooks(), input={"x": float("nan")})
    with pytest.raises(InvalidArgumentError):
        engine.run_turn(IDENTITY, Hooks(), persist_errors="later")  # type: ignore[arg-type]
    assert await store.list_runs() == []


async def test_a_resumed_turn_that_answers_differently_announces_the_restart(
    store: DurableRunStore,
) -> None:
    from agent_runtime.chat import turn_event_id

    engine = DurableChatTurnEngine(store, "proj", lease_ms=2000)
    run_id = engine.execution_id(IDENTITY)
    # a worker that streamed half an answer and died (its 1 ms lease lapses)
    await store.start_or_resume(run_id, engine.manifest(IDENTITY), "dead", lease_ms=1)
    dead = [{"type": "text_delta", "text": "an old "}, {"type": "text_delta", "text": "half"}]
    await store.append_stream_events(run_id, [(turn_event_id(i), e) for i, e in enumerate(dead)])
    await asyncio.sleep(0.01)
    hooks = Hooks()
    events = await run(engine, hooks)
    restarted = {"type": "session.run.restarted", "data": {"sessionId": "s1", "attempt": 2}}
    assert events == [
        STARTED,
        *dead,
        restarted,
        *DELTAS,
        {"type": "session.run.completed", "data": {"sessionId": "s1", "replayed": False}},
    ]
    assert hooks.seen == [e["type"] for e in events]  # the side channel sees the restart
    assert hooks.persisted == ["hello world"]  # what the client shows after the restart
