"""handle_chat_turn: lifecycle envelope, hook order, failures as events, never raising."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from agent_runtime.chat import ChatTurnIdentity, derive_execution_id, handle_chat_turn
from agent_runtime.errors import InvalidArgumentError

IDENTITY = ChatTurnIdentity(tenant_id="t1", session_id="s1", user_id="u1", turn_index=3)


class Producer:
    def __init__(self, events: list[Any], text: str = "hello world", fail_at: int | None = None):
        self.events = events
        self.text = text
        self.fail_at = fail_at
        self.closed = False

    async def _gen(self) -> AsyncIterator[Any]:
        try:
            for i, e in enumerate(self.events):
                if i == self.fail_at:
                    raise RuntimeError("model went away")
                yield e
                await asyncio.sleep(0)
        finally:
            self.closed = True

    @property
    def stream(self) -> AsyncIterator[Any]:
        return self._gen()

    def final_text(self) -> str:
        return self.text


class Hooks:
    def __init__(self, producer: Producer, **overrides: Any) -> None:
        self.producer = producer
        self.calls: list[tuple[str, Any]] = []
        for name, fn in overrides.items():
            setattr(self, name, fn)

    async def produce(self) -> Producer:
        self.calls.append(("produce", None))
        return self.producer

    async def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        self.calls.append(("persist", (identity.turn_index, text)))

    def on_event(self, event: dict[str, Any]) -> None:
        self.calls.append(("event", event["type"]))

    async def on_turn_complete(self, identity: ChatTurnIdentity, text: str) -> None:
        self.calls.append(("complete", text))

    async def trace_flush(self) -> None:
        self.calls.append(("flush", None))


async def drain(hooks: Any, **kwargs: Any) -> list[dict[str, Any]]:
    result = handle_chat_turn(IDENTITY, hooks, **kwargs)
    assert result.content_type == "application/x-ndjson"
    lines = [chunk async for chunk in result.body]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    return [orjson.loads(line) for line in lines]


DELTAS = [{"type": "text_delta", "text": "hello "}, {"type": "text_delta", "text": "world"}]


async def test_happy_path_order_and_envelope() -> None:
    hooks = Hooks(Producer(DELTAS))
    events = await drain(hooks)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "text_delta",
        "text_delta",
        "session.run.completed",
    ]
    assert events[0] == {"type": "session.run.started", **IDENTITY.to_dict()}
    assert events[1:3] == DELTAS  # forwarded verbatim
    assert events[-1]["events"] == 2 and events[-1]["turn_index"] == 3
    assert hooks.calls == [
        ("produce", None),
        ("event", "text_delta"),
        ("event", "text_delta"),
        ("persist", (3, "hello world")),
        ("complete", "hello world"),
        ("flush", None),
    ]


async def test_transform_applies_to_persisted_text_only() -> None:
    hooks = Hooks(Producer(DELTAS), transform_final_text=lambda t: t.upper())
    events = await drain(hooks)
    assert events[1:3] == DELTAS
    assert ("persist", (3, "HELLO WORLD")) in hooks.calls


async def test_hook_errors_are_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    def bad_event(event: dict[str, Any]) -> None:
        raise ValueError("analytics down")

    async def bad_complete(identity: ChatTurnIdentity, text: str) -> None:
        raise ValueError("webhook down")

    hooks = Hooks(Producer(DELTAS), on_event=bad_event, on_turn_complete=bad_complete)
    with caplog.at_level(logging.ERROR, logger="agent_runtime.chat"):
        events = await drain(hooks)
    assert events[-1]["type"] == "session.run.completed"
    assert ("persist", (3, "hello world")) in hooks.calls
    assert "analytics down" in caplog.text and "webhook down" in caplog.text


async def test_producer_failure_becomes_error_then_failed() -> None:
    producer = Producer(DELTAS, fail_at=1)
    hooks = Hooks(producer)
    events = await drain(hooks)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "text_delta",
        "error",
        "session.run.failed",
    ]
    assert events[2]["message"] == "model went away" and events[2]["stage"] == "produce"
    assert events[3]["stage"] == "produce"
    assert not any(c[0] in ("persist", "complete") for c in hooks.calls)
    assert ("flush", None) in hooks.calls and producer.closed


async def test_persist_failure_becomes_error_then_failed() -> None:
    async def bad_persist(identity: ChatTurnIdentity, text: str) -> None:
        raise RuntimeError("db is read-only")

    hooks = Hooks(Producer(DELTAS), persist_assistant_message=bad_persist)
    events = await drain(hooks)
    assert [e["type"] for e in events][-2:] == ["error", "session.run.failed"]
    assert events[-2]["stage"] == "persist" and "read-only" in events[-2]["message"]
    assert not any(c[0] == "complete" for c in hooks.calls)


async def test_bad_events_and_bad_identity_fail_the_turn_without_raising() -> None:
    hooks = Hooks(Producer([{"type": "ok"}, {"no_type": 1}]))
    events = await drain(hooks)
    assert [e["type"] for e in events] == [
        "session.run.started",
        "ok",
        "error",
        "session.run.failed",
    ]
    nan = Hooks(Producer([{"type": "x", "v": float("nan")}]))
    assert (await drain(nan))[-1]["type"] == "session.run.failed"
    result = handle_chat_turn("not an identity", Hooks(Producer(DELTAS)))  # type: ignore[arg-type]
    lines = [orjson.loads(c) async for c in result.body]
    assert [e["type"] for e in lines] == ["session.run.started", "error", "session.run.failed"]


async def test_trace_flush_goes_to_wait_until() -> None:
    handed: list[Any] = []
    hooks = Hooks(Producer(DELTAS))
    await drain(hooks, wait_until=handed.append)
    assert len(handed) == 1 and ("flush", None) not in hooks.calls
    await handed[0]
    assert ("flush", None) in hooks.calls


async def test_client_disconnect_closes_the_producer() -> None:
    producer = Producer([{"type": "text_delta", "text": str(i)} for i in range(100)])
    hooks = Hooks(producer)
    body = handle_chat_turn(IDENTITY, hooks).body
    seen = [await body.__anext__() for _ in range(3)]
    assert len(seen) == 3
    await body.aclose()  # what an ASGI server does when the client goes away
    assert producer.closed
    assert not any(c[0] == "persist" for c in hooks.calls)


def test_derive_execution_id() -> None:
    assert derive_execution_id("proj", "sess-9", 4) == "proj:sess-9:4"
    assert derive_execution_id("proj", "sess-9", 4) == derive_execution_id("proj", "sess-9", 4)
    for args in (("", "s", 1), ("p", "", 1), ("p", "s", -1), ("p", "s\n", 1), ("p", "s", True)):
        with pytest.raises(InvalidArgumentError):
            derive_execution_id(*args)  # type: ignore[arg-type]


def test_identity_validation() -> None:
    with pytest.raises(InvalidArgumentError):
        ChatTurnIdentity("", "s", "u", 0)
    with pytest.raises(InvalidArgumentError):
        ChatTurnIdentity("t", "s", "u", -1)
