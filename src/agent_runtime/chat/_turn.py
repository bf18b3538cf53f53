"""`handle_chat_turn`: one chat turn as an NDJSON body, framed by `session.run.*` events.

Framework-neutral: the result is an async iterator of bytes plus a content type and headers,
which any ASGI/WSGI layer can stream. The body never raises into the HTTP layer: a failure
becomes an `error` event followed by `session.run.failed`, and the stream closes cleanly.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ..errors import AgentRuntimeError, InvalidArgumentError
from ..sse import NDJSON_CONTENT_TYPE, encode_ndjson

__all__ = [
    "ChatStreamEvent",
    "ChatTurnHooks",
    "ChatTurnIdentity",
    "ChatTurnProducer",
    "ChatTurnResult",
    "derive_execution_id",
    "handle_chat_turn",
]

ChatStreamEvent: TypeAlias = dict[str, Any]
"""One event of a turn's stream: a JSON object with a string `type`."""

WaitUntil: TypeAlias = Callable[[Awaitable[Any]], Any]

_log = logging.getLogger("agent_runtime.chat")


@dataclass(frozen=True, slots=True)
class ChatTurnIdentity:
    """Who and where a turn is: tenant, session, user and the turn's position in the session."""

    tenant_id: str
    session_id: str
    user_id: str
    turn_index: int

    def __post_init__(self) -> None:
        for name in ("tenant_id", "session_id", "user_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InvalidArgumentError("must be a non-empty string", path=name)
        if type(self.turn_index) is not int or self.turn_index < 0:
            raise InvalidArgumentError("must be an int >= 0", path="turn_index")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "turn_index": self.turn_index,
        }


def derive_execution_id(project_id: str, session_id: str, turn_index: int) -> str:
    """`"{project}:{session}:{turn}"`: readable and stable, so a retried turn maps to the
    same execution (and the same durable run)."""
    for name, value in (("project_id", project_id), ("session_id", session_id)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError("must be a non-empty string", path=name)
        if any(c in value for c in "\r\n\x00"):
            raise InvalidArgumentError("must not contain CR, LF or NUL", path=name)
    if type(turn_index) is not int or turn_index < 0:
        raise InvalidArgumentError("must be an int >= 0", path="turn_index")
    return f"{project_id}:{session_id}:{turn_index}"


@runtime_checkable
class ChatTurnProducer(Protocol):
    """What produces a turn: a stream of events, then the assistant's final text."""

    @property
    def stream(self) -> AsyncIterator[ChatStreamEvent]: ...

    def final_text(self) -> str: ...


@runtime_checkable
class ChatTurnHooks(Protocol):
    """The product's side of a turn. `produce` and `persist_assistant_message` are required.
    Optional (leave them off the object, or set them to None), sync or async:
    `on_event(event)`, `transform_final_text(text) -> str`,
    `on_turn_complete(identity, persisted_text)`, `trace_flush()`."""

    def produce(self) -> ChatTurnProducer | Awaitable[ChatTurnProducer]: ...

    def persist_assistant_message(
        self, identity: ChatTurnIdentity, final_text: str
    ) -> Awaitable[Any] | Any: ...


@dataclass(frozen=True, slots=True)
class ChatTurnResult:
    """A streamable HTTP response: iterate `body` and send each chunk as it comes."""

    body: AsyncIterator[bytes]
    content_type: str = NDJSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(
        default_factory=lambda: {
            "content-type": NDJSON_CONTENT_TYPE,
            "cache-control": "no-cache, no-transform",
            "x-accel-buffering": "no",
        }
    )


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    value = fn(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


def _optional(hooks: Any, name: str) -> Callable[..., Any] | None:
    fn = getattr(hooks, name, None)
    return fn if callable(fn) else None


def _error_event(exc: BaseException, stage: str) -> ChatStreamEvent:
    code = exc.code if isinstance(exc, AgentRuntimeError) else f"chat.{stage}_failed"
    message = exc.message if isinstance(exc, AgentRuntimeError) else str(exc) or type(exc).__name__
    return {"type": "error", "code": code, "message": message, "stage": stage}


def handle_chat_turn(
    identity: ChatTurnIdentity,
    hooks: ChatTurnHooks,
    wait_until: WaitUntil | None = None,
    log: logging.Logger | None = None,
) -> ChatTurnResult:
    """Run one turn as an NDJSON stream; never raises (bad arguments included: they become a
    failed turn on the stream).

    Order: `session.run.started`; each producer event verbatim (also passed to `on_event`,
    whose errors are logged and swallowed); after the stream drains, `transform_final_text`
    (applied to the persisted text only, never the live stream), `persist_assistant_message`,
    then `on_turn_complete` (errors logged and swallowed) and `session.run.completed`.
    `trace_flush()` is handed to `wait_until` when given, else awaited before the stream ends.
    A producer, transform or persist failure emits `error` then `session.run.failed`.
    """
    logger = log or _log
    return ChatTurnResult(body=_body(identity, hooks, wait_until, logger))


async def _body(
    identity: Any, hooks: Any, wait_until: WaitUntil | None, log: logging.Logger
) -> AsyncIterator[bytes]:
    started = time.monotonic()
    envelope = identity.to_dict() if isinstance(identity, ChatTurnIdentity) else {}
    yield encode_ndjson({"type": "session.run.started", **envelope})
    stage = "produce"
    events = 0
    try:
        if not isinstance(identity, ChatTurnIdentity):
            raise InvalidArgumentError("identity must be a ChatTurnIdentity", path="identity")
        on_event = _optional(hooks, "on_event")
        producer = await _call(hooks.produce)
        stream = producer.stream
        try:
            async for event in stream:
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    raise InvalidArgumentError(
                        "producer events must be dicts with a string `type`", path="event"
                    )
                line = encode_ndjson(event)
                events += 1
                if on_event is not None:
                    try:
                        await _call(on_event, event)
                    except Exception:
                        log.exception("on_event hook failed for turn %s", envelope)
                yield line
        finally:
            # a client that went away (or a failure) stops the producer, e.g. its LLM call
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        stage = "transform"
        text = producer.final_text()
        if not isinstance(text, str):
            raise InvalidArgumentError("final_text() must return a string", path="final_text")
        transform = _optional(hooks, "transform_final_text")
        if transform is not None:
            text = await _call(transform, text)
            if not isinstance(text, str):
                raise InvalidArgumentError(
                    "transform_final_text must return a string", path="transform_final_text"
                )
        stage = "persist"
        await _call(hooks.persist_assistant_message, identity, text)
    except Exception as exc:
        log.warning("chat turn %s failed at %s: %s", envelope, stage, exc)
        yield encode_ndjson(_error_event(exc, stage))
        yield encode_ndjson(
            {
                "type": "session.run.failed",
                **envelope,
                "stage": stage,
                "events": events,
                "duration_ms": round((time.monotonic() - started) * 1000, 3),
            }
        )
        await _flush(hooks, wait_until, log)
        return
    complete = _optional(hooks, "on_turn_complete")
    if complete is not None:
        try:
            await _call(complete, identity, text)
        except Exception:
            log.exception("on_turn_complete hook failed for turn %s", envelope)
    yield encode_ndjson(
        {
            "type": "session.run.completed",
            **envelope,
            "events": events,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
        }
    )
    await _flush(hooks, wait_until, log)


async def _flush(hooks: Any, wait_until: WaitUntil | None, log: logging.Logger) -> None:
    flush = _optional(hooks, "trace_flush")
    if flush is None:
        return
    try:
        pending = flush()
        if not inspect.isawaitable(pending):
            return
        if wait_until is not None:
            wait_until(pending)
        else:
            await pending
    except Exception:
        log.exception("trace_flush failed")
