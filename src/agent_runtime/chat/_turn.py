"""`handle_chat_turn`: one chat turn as an NDJSON body, framed by `session.run.*` lines.

Framework-neutral: the result is an async iterator of bytes plus a content type and headers,
which any ASGI/WSGI layer can stream. Every line is `{"type", "data"}` as the original sends
it. The body never raises into the HTTP layer: a failure becomes an `error` line followed by
`session.run.failed`, and the stream closes cleanly.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from ..errors import AgentRuntimeError, InvalidArgumentError
from ..sse import NDJSON_CONTENT_TYPE, encode_ndjson

__all__ = [
    "ChatStreamEvent",
    "ChatTurnHooks",
    "ChatTurnIdentity",
    "ChatTurnLog",
    "ChatTurnProducer",
    "ChatTurnResult",
    "PersistErrors",
    "derive_execution_id",
    "handle_chat_turn",
]

ChatStreamEvent: TypeAlias = dict[str, Any]
"""One event of a turn's stream: a JSON object with a string `type` (and usually `data`)."""

WaitUntil: TypeAlias = Callable[[Awaitable[Any]], Any]
ChatTurnLog: TypeAlias = Callable[[str, Mapping[str, Any]], Any]
"""`log(message, meta)`: where a turn reports what it swallowed (the original's `log`)."""
PersistErrors: TypeAlias = Literal["swallow", "fail"]

_logger = logging.getLogger("agent_runtime.chat")


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
        """The wire form: `{"tenantId", "sessionId", "userId", "turnIndex"}`."""
        return {
            "tenantId": self.tenant_id,
            "sessionId": self.session_id,
            "userId": self.user_id,
            "turnIndex": self.turn_index,
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
    `on_turn_complete(identity, final_text)`, `trace_flush()`."""

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


def error_message(exc: BaseException) -> str:
    """The message a failed turn reports: the error's message, else its string form."""
    if isinstance(exc, AgentRuntimeError):
        return exc.message
    return str(exc) or type(exc).__name__


def _error_data(exc: BaseException, stage: str) -> dict[str, Any]:
    code = exc.code if isinstance(exc, AgentRuntimeError) else f"chat.{stage}_failed"
    return {"message": error_message(exc), "code": code, "stage": stage}


def _logging_log(message: str, meta: Mapping[str, Any]) -> None:
    _logger.error("%s %s", message, dict(meta))


def as_log(log: ChatTurnLog | logging.Logger | None) -> ChatTurnLog:
    """The turn's `log(message, meta)`: the given callable, a `Logger` (messages at ERROR),
    or by default the `agent_runtime.chat` logger (the original's `console.error`)."""
    if log is None:
        return _logging_log
    if isinstance(log, logging.Logger):
        logger = log

        def to_logger(message: str, meta: Mapping[str, Any]) -> None:
            logger.error("%s %s", message, dict(meta))

        return to_logger
    if not callable(log):
        raise InvalidArgumentError("log must be a callable, a logging.Logger or None", path="log")
    return log


def _safe_log(log: ChatTurnLog, message: str, meta: Mapping[str, Any]) -> None:
    try:
        log(message, meta)
    except Exception:  # a broken logger must not break the turn
        _logger.exception("the turn's log callable raised")


@dataclass(frozen=True, slots=True)
class TurnFrame:
    """How a turn frames its lifecycle: the extra `session.run.completed` data and whether
    the product's `on_turn_complete` runs (a durable replay frames both differently)."""

    completed: Callable[[], Mapping[str, Any]] = dict
    announce: Callable[[], bool] = lambda: True


def check_turn_arguments(identity: Any, hooks: Any, wait_until: Any, persist_errors: Any) -> None:
    """Refuse what is not a turn: `InvalidArgumentError` before any work."""
    if not isinstance(identity, ChatTurnIdentity):
        raise InvalidArgumentError("identity must be a ChatTurnIdentity", path="identity")
    for name in ("produce", "persist_assistant_message"):
        if not callable(getattr(hooks, name, None)):
            raise InvalidArgumentError(f"hooks must have a callable {name}", path=name)
    if wait_until is not None and not callable(wait_until):
        raise InvalidArgumentError("wait_until must be callable or None", path="wait_until")
    if persist_errors not in ("swallow", "fail"):
        raise InvalidArgumentError(
            "persist_errors must be 'swallow' or 'fail'", path="persist_errors"
        )


def handle_chat_turn(
    identity: ChatTurnIdentity,
    hooks: ChatTurnHooks,
    *,
    wait_until: WaitUntil | None = None,
    log: ChatTurnLog | logging.Logger | None = None,
    persist_errors: PersistErrors = "swallow",
) -> ChatTurnResult:
    """One turn as an NDJSON body (ORIGINAL §17.2); the body never raises.

    Lines: `session.run.started` `{sessionId, tenantId, turnIndex}`; each producer event
    verbatim; `session.run.completed` `{sessionId}`, or on failure `error` `{message, code,
    stage}` then `session.run.failed` `{sessionId, message}`. `on_event` runs after each line
    is emitted, the envelope included (its errors are logged and swallowed). After the stream:
    `transform_final_text` (the persisted text only; a throw fails the turn),
    `persist_assistant_message` (an error is logged as `[chat-engine] persistAssistantMessage
    threw` and the turn completes; `persist_errors="fail"` fails it), `on_turn_complete`
    (errors swallowed). `trace_flush()` is handed to `wait_until`, else awaited before the
    body ends. A client that goes away (the body closed) closes the producer's stream.
    Arguments that are not a turn raise `InvalidArgumentError` here, before any work.
    """
    check_turn_arguments(identity, hooks, wait_until, persist_errors)
    body = turn_body(identity, hooks, wait_until, as_log(log), persist_errors, TurnFrame())
    return ChatTurnResult(body=body)


async def turn_body(
    identity: ChatTurnIdentity,
    hooks: Any,
    wait_until: WaitUntil | None,
    log: ChatTurnLog,
    persist_errors: PersistErrors,
    frame: TurnFrame,
) -> AsyncIterator[bytes]:
    """The lines of one turn (see `handle_chat_turn`)."""
    session_id = identity.session_id
    on_event = _optional(hooks, "on_event")

    async def observed(event: ChatStreamEvent) -> None:
        if on_event is None:
            return
        try:
            await _call(on_event, event)
        except Exception as exc:
            _safe_log(log, "[chat-engine] onEvent hook threw", {"error": error_message(exc)})

    flushed = False
    try:
        started = {
            "type": "session.run.started",
            "data": {
                "sessionId": session_id,
                "tenantId": identity.tenant_id,
                "turnIndex": identity.turn_index,
            },
        }
        yield encode_ndjson(started)
        await observed(started)
        stage = "produce"
        try:
            producer = await _call(hooks.produce)
            stream = producer.stream
            try:
                async for event in stream:
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise InvalidArgumentError(
                            "producer events must be dicts with a string `type`", path="event"
                        )
                    yield encode_ndjson(event)
                    await observed(event)
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
            try:
                await _call(hooks.persist_assistant_message, identity, text)
            except Exception as exc:
                if persist_errors == "fail":
                    raise
                _safe_log(
                    log,
                    "[chat-engine] persistAssistantMessage threw",
                    {"error": error_message(exc)},
                )
            complete = _optional(hooks, "on_turn_complete")
            if complete is not None and frame.announce():
                try:
                    await _call(complete, identity, text)
                except Exception as exc:
                    _safe_log(
                        log, "[chat-engine] onTurnComplete threw", {"error": error_message(exc)}
                    )
            completed = {
                "type": "session.run.completed",
                "data": {"sessionId": session_id, **frame.completed()},
            }
        except Exception as exc:
            message = error_message(exc)
            _safe_log(log, "[chat-engine] turn failed", {"error": message})
            error = {"type": "error", "data": _error_data(exc, stage)}
            yield encode_ndjson(error)
            await observed(error)
            failed = {
                "type": "session.run.failed",
                "data": {"sessionId": session_id, "message": message},
            }
            yield encode_ndjson(failed)
            await observed(failed)
        else:
            yield encode_ndjson(completed)
            await observed(completed)
        flushed = True
        await _flush(hooks, wait_until, log)
    finally:
        if not flushed:  # the client went away mid-turn: the trace is still flushed
            await _flush(hooks, wait_until, log)


async def _flush(hooks: Any, wait_until: WaitUntil | None, log: ChatTurnLog) -> None:
    flush = _optional(hooks, "trace_flush")
    if flush is None:
        return

    async def guarded() -> None:
        try:
            await _call(flush)
        except Exception as exc:
            _safe_log(log, "[chat-engine] traceFlush threw", {"error": error_message(exc)})

    if wait_until is None:
        await guarded()
        return
    pending = guarded()
    try:
        wait_until(pending)
    except Exception as exc:  # the flush never started: nothing is left unawaited
        pending.close()
        _safe_log(log, "[chat-engine] waitUntil threw", {"error": error_message(exc)})
