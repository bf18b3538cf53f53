"""The boundary checks and the JSON codec every session store shares."""

from __future__ import annotations

from typing import Any

from ..errors import DurableValueError, ValidationError
from ..jsoncanon import dumps_json, loads_json
from ..types import (
    _STREAM_CLASSES,
    RuntimeSession,
    RuntimeStreamEvent,
    parse_runtime_stream_event,
)

__all__ = [
    "check_event",
    "check_id",
    "check_session",
    "decode_event",
    "decode_session",
    "encode_event",
    "encode_session",
]


_EVENT_CLASSES = frozenset(_STREAM_CLASSES.values())


def check_id(value: Any, where: str, *, sql: bool = False) -> str:
    """A non-empty string (for a SQL store also without NUL, which PostgreSQL cannot hold)."""
    if type(value) is not str or not value:
        raise ValidationError(f"{where}: session_id must be a non-empty string")
    if sql and "\x00" in value:
        raise ValidationError(f"{where}: session_id must not contain a NUL character")
    return value


def check_session(value: Any, where: str) -> RuntimeSession:
    """`value` when it is a `RuntimeSession` (`ValidationError` otherwise)."""
    if not isinstance(value, RuntimeSession):
        raise ValidationError(f"{where}: session must be a RuntimeSession")
    return value


def check_event(value: Any, where: str) -> RuntimeStreamEvent:
    """`value` when it is one of the `RuntimeStreamEvent` classes."""
    if type(value) not in _EVENT_CLASSES:
        raise ValidationError(f"{where}: event must be a RuntimeStreamEvent")
    return value  # type: ignore[no-any-return]


def _dumps(value: Any, root: str) -> str:
    try:
        return dumps_json(value, root=root).decode()
    except DurableValueError as exc:
        raise ValidationError(f"{exc.path}: {exc.reason}") from None


def encode_session(session: RuntimeSession) -> str:
    """The session's wire JSON (`ValidationError` when its metadata is not JSON)."""
    return _dumps(session.to_dict(), "session")


def decode_session(text: str) -> RuntimeSession:
    """The session stored as `text`."""
    return RuntimeSession.from_dict(loads_json(text))


def encode_event(event: RuntimeStreamEvent) -> str:
    """The event's wire JSON, `to_dict()` (`ValidationError` when a payload is not JSON)."""
    return _dumps(event.to_dict(), event.TYPE)


def decode_event(text: str) -> RuntimeStreamEvent:
    """The event stored as `text` (`EventParseError` if the row was tampered with)."""
    return parse_runtime_stream_event(text)
