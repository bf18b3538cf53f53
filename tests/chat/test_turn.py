"""handle_chat_turn as ORIGINAL §17.2: `{type, data}` lines, emit-then-on_event for every line,
each hook failing in turn, trace_flush through wait_until or awaited, never raising."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import orjson
import pytest

from agent_runtime.chat import ChatTurnIdentity, derive_execution_id, handle_chat_turn
from agent_runtime.errors import InvalidArgumentError

IDENTITY = ChatTurnIdentity(tenant_id="t1", session_id="s1", user_id="u1", turn_index=3)
DELTAS = [{"type": "text_delta", "text": "hello "}, {"type": "text_delta", "text": "world"}]
STARTED = {
    "type": "session.run.started",
    "data": {"sessionId": "s1", "tenantId": "t1", "turnIndex": 3},
}
COMPLETED = {"type": "session.run.completed", "data": {"sessionId": "s1"}}


class Boom(Exception):
    pass


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
                    raise Boom("model went away")
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
    """Records every hook call in order, with what the client had received at that moment."""

    def __init__(self, producer: Producer | None = None, **overrides: Any) -> None:
        self.producer = producer or Producer(DELTAS)
        self.calls: list[tuple[str, Any]] = []
        self.received: list[dict[str, Any]] = []  # filled by `drain` as lines arrive
        for name, fn in overrides.items():
            setattr(self, name, fn)

    async def produce(self) -> Producer:
        self.calls.append(("produce", None))
        return self.producer

    async def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        self.calls.append(("persist", (identity.turn_index, text)))

    def on_event(self, event: dict[str, Any]) -> None:
        # emit-then-on_event: the line is already out when the hook sees it
        assert self.received and self.received[-1] == event
        self.calls.append(("event", event["type"]))

    async def on_turn_complete(self, identity: ChatTurnIdentity, text: str) -> None:
        self.calls.append(("complete", text))

    async def trace_flush(self) -> None:
        self.calls.append(("flush", None))


class Log:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, meta: Any) -> None:
        self.entries.append((message, dict(meta)))

    def messages(self) -> list[str]:
        return [m for m, _ in self.entries]


async def drain(hooks: Hooks, **kwargs: Any) -> list[dict[str, Any]]:
    result = handle_chat_turn(IDENTITY, hooks, **kwargs)
    assert result.content_type == "application/x-ndjson"
    async for line in result.body:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        hooks.received.append(orjson.loads(line))
    return hooks.received


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def failed(message: str) -> dict[str, Any]:
    return {"type": "session.run.failed", "data": {"sessionId": "s1", "message": message}}


async def test_happy_path_lines_and_hook_order() -> None:
    hooks = Hooks(transform_final_text=lambda t: t.upper())
    log = Log()
    events = await drain(hooks, log=log)
    assert events == [STARTED, *DELTAS, COMPLETED]  # producer events verbatim
    assert hooks.calls == [
        ("event", "session.run.started"),  # the envelope reaches on_event too
        ("produce", None),
        ("event", "text_delta"),
        ("event", "text_delta"),
        ("persist", (3, "HELLO WORLD")),  # transformed for what is persisted only
        ("complete", "HELLO WORLD"),
        ("event", "session.run.completed"),
        ("flush", None),
    ]
    assert log.entries == []


async def test_produce_throwing_fails_the_turn() -> None:
    async def produce() -> Any:
        raise Boom("no backend")

    hooks = Hooks(produce=produce)
    log = Log()
    events = await drain(hooks, log=log)
    assert events == [
        STARTED,
        {"type": "error", "data": {"message": "no backend", "code": "chat.produce_failed",
                                   "stage": "produce"}},
        failed("no backend"),
    ]  # fmt: skip
    assert [c[0] for c in hooks.calls] == ["event", "event", "event", "flush"]
    assert log.entries == [("[chat-engine] turn failed", {"error": "no backend"})]


async def test_producer_stream_failing_midway() -> None:
    producer = Producer(DELTAS, fail_at=1)
    hooks = Hooks(producer)
    events = await drain(hooks, log=Log())
    assert events[:2] == [STARTED, DELTAS[0]]
    assert events[2]["data"]["message"] == "model went away" and events[3] == failed(
        "model went away"
    )
    assert not any(c[0] in ("persist", "complete") for c in hooks.calls)
    assert ("flush", None) in hooks.calls and producer.closed


async def test_transform_throwing_fails_the_turn() -> None:
    def transform(text: str) -> str:
        raise Boom("redactor down")

    hooks = Hooks(transform_final_text=transform)
    events = await drain(hooks, log=Log())
    assert events[1:3] == DELTAS  # the live stream carried the raw text
    assert events[3]["type"] == "error" and events[3]["data"]["stage"] == "transform"
    assert events[4] == failed("redactor down")
    assert not any(c[0] in ("persist", "complete") for c in hooks.calls)

    async def not_text(text: str) -> Any:
        return 42

    assert (await drain(Hooks(transform_final_text=not_text), log=Log()))[-1]["type"] == (
        "session.run.failed"
    )


async def test_persist_throwing_is_logged_and_the_turn_completes() -> None:
    async def persist(identity: ChatTurnIdentity, text: str) -> None:
        raise Boom("db is read-only")

    hooks = Hooks(persist_assistant_message=persist)
    log = Log()
    events = await drain(hooks, log=log)
    assert events == [STARTED, *DELTAS, COMPLETED]
    assert log.entries == [
        ("[chat-engine] persistAssistantMessage threw", {"error": "db is read-only"})
    ]
    assert ("complete", "hello world") in hooks.calls  # the turn goes on after the persist


async def test_persist_throwing_fails_the_turn_with_persist_errors_fail() -> None:
    async def persist(identity: ChatTurnIdentity, text: str) -> None:
        raise Boom("db is read-only")

    hooks = Hooks(persist_assistant_message=persist)
    log = Log()
    events = await drain(hooks, log=log, persist_errors="fail")
    assert types(events) == [
        "session.run.started",
        "text_delta",
        "text_delta",
        "error",
        "session.run.failed",
    ]
    assert events[3]["data"] == {
        "message": "db is read-only",
        "code": "chat.persist_failed",
        "stage": "persist",
    }
    assert not any(c[0] == "complete" for c in hooks.calls)
    assert log.messages() == ["[chat-engine] turn failed"]


async def test_on_turn_complete_throwing_is_swallowed() -> None:
    async def complete(identity: ChatTurnIdentity, text: str) -> None:
        raise Boom("webhook down")

    hooks = Hooks(on_turn_complete=complete)
    log = Log()
    events = await drain(hooks, log=log)
    assert events == [STARTED, *DELTAS, COMPLETED]
    assert log.entries == [("[chat-engine] onTurnComplete threw", {"error": "webhook down"})]


async def test_on_event_throwing_is_swallowed_for_every_line() -> None:
    seen: list[str] = []

    async def on_event(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        raise Boom("analytics down")

    hooks = Hooks(on_event=on_event)
    log = Log()
    events = await drain(hooks, log=log)
    assert events == [STARTED, *DELTAS, COMPLETED]
    assert seen == types(events)  # the side channel sees exactly what the client sees
    assert log.entries == [("[chat-engine] onEvent hook threw", {"error": "analytics down"})] * 4
    assert ("persist", (3, "hello world")) in hooks.calls


async def test_trace_flush_is_awaited_before_the_body_ends() -> None:
    order: list[str] = []

    async def flush() -> None:
        await asyncio.sleep(0)
        order.append("flushed")

    hooks = Hooks(trace_flush=flush)
    await drain(hooks)
    order.append("body ended")
    assert order == ["flushed", "body ended"]


async def test_trace_flush_throwing_without_wait_until() -> None:
    async def flush() -> None:
        raise Boom("collector down")

    log = Log()
    events = await drain(Hooks(trace_flush=flush), log=log)
    assert events[-1] == COMPLETED
    assert log.entries == [("[chat-engine] traceFlush threw", {"error": "collector down"})]


async def test_trace_flush_is_handed_to_wait_until() -> None:
    handed: list[Awaitable[Any]] = []
    flushed: list[bool] = []

    async def flush() -> None:
        flushed.append(True)
        raise Boom("collector down")

    log = Log()
    events = await drain(Hooks(trace_flush=flush), wait_until=handed.append, log=log)
    assert events[-1] == COMPLETED
    assert len(handed) == 1 and flushed == []  # not awaited by the body
    await handed[0]  # the guarded promise: its failure is logged, not raised
    assert flushed == [True]
    assert log.entries == [("[chat-engine] traceFlush threw", {"error": "collector down"})]


async def test_trace_flush_runs_after_a_failed_turn_too() -> None:
    handed: list[Awaitable[Any]] = []
    hooks = Hooks(Producer(DELTAS, fail_at=0))
    events = await drain(hooks, wait_until=handed.append, log=Log())
    assert events[-1]["type"] == "session.run.failed" and len(handed) == 1
    await handed[0]
    assert hooks.calls[-1] == ("flush", None)


async def test_log_defaults_to_the_logging_module(caplog: pytest.LogCaptureFixture) -> None:
    async def persist(identity: ChatTurnIdentity, text: str) -> None:
        raise Boom("db is read-only")

    with caplog.at_level(logging.ERROR, logger="agent_runtime.chat"):
        events = await drain(Hooks(persist_assistant_message=persist))
    assert events[-1] == COMPLETED
    assert "[chat-engine] persistAssistantMessage threw" in caplog.text
    assert "db is read-only" in caplog.text

    logger = logging.getLogger("product.chat")
    with caplog.at_level(logging.ERROR, logger="product.chat"):
        await drain(Hooks(persist_assistant_message=persist), log=logger)
    assert [r.name for r in caplog.records][-1] == "product.chat"


async def test_bad_events_fail_the_turn_without_raising() -> None:
    events = await drain(Hooks(Producer([{"type": "ok"}, {"no_type": 1}])), log=Log())
    assert types(events) == ["session.run.started", "ok", "error", "session.run.failed"]
    nan = await drain(Hooks(Producer([{"type": "x", "v": float("nan")}])), log=Log())
    assert types(nan) == ["session.run.started", "error", "session.run.failed"]


def test_arguments_that_are_not_a_turn_raise_before_any_work() -> None:
    hooks = Hooks()
    for kwargs in (
        {"identity": "not an identity"},
        {"hooks": object()},
        {"wait_until": "soon"},
        {"persist_errors": "ignore"},
        {"log": 3},
    ):
        args: dict[str, Any] = {"identity": IDENTITY, "hooks": hooks, **kwargs}
        identity, turn_hooks = args.pop("identity"), args.pop("hooks")
        with pytest.raises(InvalidArgumentError):
            handle_chat_turn(identity, turn_hooks, **args)
    assert hooks.calls == []


async def test_client_disconnect_closes_the_producer() -> None:
    producer = Producer([{"type": "text_delta", "text": str(i)} for i in range(100)])
    hooks = Hooks(producer)
    body = handle_chat_turn(IDENTITY, hooks).body
    seen = [await anext(body) for _ in range(3)]
    assert len(seen) == 3
    await body.aclose()  # type: ignore[attr-defined]  # what an ASGI server does
    assert producer.closed
    assert not any(c[0] == "persist" for c in hooks.calls)
    assert hooks.calls[-1] == ("flush", None)  # the trace is still flushed


def test_derive_execution_id() -> None:
    assert derive_execution_id("proj", "sess-9", 4) == "proj:sess-9:4"
    assert derive_execution_id("proj", "sess-9", 4) == derive_execution_id("proj", "sess-9", 4)
    for args in (("", "s", 1), ("p", "", 1), ("p", "s", -1), ("p", "s\n", 1), ("p", "s", True)):
        with pytest.raises(InvalidArgumentError):
            derive_execution_id(*args)  # type: ignore[arg-type]


def test_identity_validation_and_wire_form() -> None:
    with pytest.raises(InvalidArgumentError):
        ChatTurnIdentity("", "s", "u", 0)
    with pytest.raises(InvalidArgumentError):
        ChatTurnIdentity("t", "s", "u", -1)
    assert IDENTITY.to_dict() == {
        "tenantId": "t1",
        "sessionId": "s1",
        "userId": "u1",
        "turnIndex": 3,
    }
