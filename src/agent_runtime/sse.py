"""Wire encoders: Server-Sent Events (`text/event-stream`) and NDJSON (`application/x-ndjson`).

Both produce exactly what goes on the wire, so an HTTP layer only concatenates frames. Field
values that would break framing (CR/LF in `event` or `id`) are refused with a typed error
instead of being silently mangled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import DurableValueError, InvalidArgumentError
from .jsoncanon import dumps_json, loads_json

__all__ = [
    "NDJSON_CONTENT_TYPE",
    "SSE_CONTENT_TYPE",
    "encode_ndjson",
    "encode_server_sent_event",
    "readiness_server_sent_event",
    "runtime_stream_server_sent_event",
]

SSE_CONTENT_TYPE = "text/event-stream"
NDJSON_CONTENT_TYPE = "application/x-ndjson"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _json_text(value: Any, path: str) -> str:
    try:
        return dumps_json(value, root=path).decode()
    except DurableValueError as exc:
        raise InvalidArgumentError(exc.reason, path=exc.path) from None


def _field(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"must be a string, got {type(value).__name__}", path=name)
    if "\r" in value or "\n" in value:
        raise InvalidArgumentError("must not contain CR or LF", path=name)
    if name == "id" and "\x00" in value:
        raise InvalidArgumentError("must not contain NUL (clients ignore such ids)", path=name)
    return value


def encode_server_sent_event(
    data: Any = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> str:
    """One SSE frame ending in a blank line.

    A `str` `data` is sent as is (each line its own `data:` line, so clients rejoin it with
    LF); any other `data` is sent as compact JSON. A `comment` alone is a keep-alive ping.
    """
    if data is None and event is None and id is None and retry is None and comment is None:
        raise InvalidArgumentError("an SSE frame needs data, event, id, retry or a comment")
    parts: list[str] = []
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidArgumentError("must be a string", path="comment")
        parts.extend(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(comment))
    if event is not None:
        parts.append(f"event: {_field('event', event)}\n")
    if id is not None:
        parts.append(f"id: {_field('id', id)}\n")
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise InvalidArgumentError("must be an int >= 0 (milliseconds)", path="retry")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        text = data if isinstance(data, str) else _json_text(data, "data")
        parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    parts.append("\n")
    return "".join(parts)


def _event_type(event: Any) -> str:
    event_type = event.get("type") if isinstance(event, Mapping) else getattr(event, "type", None)
    if not isinstance(event_type, str) or not event_type:
        raise InvalidArgumentError("event has no string `type`", path="event")
    return event_type


def _event_json(event: Any) -> str:
    if isinstance(event, Mapping):
        return _json_text(dict(event), "event")
    to_json = getattr(event, "to_json", None)
    if callable(to_json):
        text = to_json()
        if isinstance(text, bytes):
            text = text.decode()
        if isinstance(text, str):
            return text
    to_dict = getattr(event, "to_dict", None)
    if callable(to_dict):
        return _json_text(to_dict(), "event")
    raise InvalidArgumentError("event has neither to_json() nor to_dict()", path="event")


def runtime_stream_server_sent_event(
    event: Any, *, id: str | None = None, retry: int | None = None, sanitize: bool = True
) -> str:
    """A runtime event (anything with `type` and `to_json()`/`to_dict()`, or a dict with a
    `type`) as an SSE frame named after its type, its JSON as data. Secrets and internal
    fields are stripped first unless `sanitize=False` (the caller already did)."""
    event_type = _event_type(event)
    if sanitize:
        from .sanitize import sanitize_json

        data, _ = _as_dict(event)
        return encode_server_sent_event(
            _json_text(sanitize_json(data), "event"), event=event_type, id=id, retry=retry
        )
    return encode_server_sent_event(_event_json(event), event=event_type, id=id, retry=retry)


def _as_dict(event: Any) -> tuple[dict[str, Any], bool]:
    if isinstance(event, Mapping):
        return dict(event), True
    to_dict = getattr(event, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, Mapping):
            return dict(data), False
    to_json = getattr(event, "to_json", None)
    if callable(to_json):
        parsed = loads_json(to_json())
        if isinstance(parsed, dict):
            return parsed, False
    raise InvalidArgumentError("has neither to_dict() nor to_json()", path="event")


def readiness_server_sent_event(
    report: Any, *, event: str = "readiness", id: str | None = None, sanitize: bool = True
) -> str:
    """A knowledge-readiness report or decision (or its dict form) as an SSE frame, default
    event `readiness`; internal details and secrets are stripped unless `sanitize=False`."""
    if sanitize:
        from .sanitize import sanitize_json, sanitize_knowledge_readiness_report

        if not isinstance(report, Mapping):
            report = sanitize_knowledge_readiness_report(report) if _is_report(report) else report
        payload, _ = _as_dict(report)
        payload = sanitize_json(payload)
    else:
        payload, _ = _as_dict(report)
    return encode_server_sent_event(_json_text(payload, "report"), event=event, id=id)


def _is_report(value: Any) -> bool:
    from .knowledge import KnowledgeReadinessReport

    return isinstance(value, KnowledgeReadinessReport)


def encode_ndjson(obj: Any) -> bytes:
    """One compact JSON object followed by a newline; objects with `to_dict()` are accepted."""
    if not isinstance(obj, Mapping):
        to_dict = getattr(obj, "to_dict", None)
        if not callable(to_dict):
            raise InvalidArgumentError(
                f"NDJSON lines are JSON objects, got {type(obj).__name__}", path="obj"
            )
        obj = to_dict()
        if not isinstance(obj, Mapping):
            raise InvalidArgumentError("to_dict() did not return a mapping", path="obj")
    try:
        return dumps_json(dict(obj), root="obj") + b"\n"
    except DurableValueError as exc:
        raise InvalidArgumentError(exc.reason, path=exc.path) from None
