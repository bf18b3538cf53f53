"""Wire encoders (ORIGINAL §10): Server-Sent Events frames byte for byte as the original writes
them, the two sanitized telemetry frames, and NDJSON lines (`application/x-ndjson`).

A frame is `id:` then `event:` (each only when given, CR and LF inside replaced by a space),
`retry:` (floored) when it is a finite number >= 0, then the payload (a string as is, anything
else as compact JSON) as one `data:` line per line, joined by LF and ended by a blank line.
Ours beyond it: `comment=` lines (`: ...`, a keep-alive ping when alone); a lone CR inside string
data also breaks the line (the original splits on LF and CRLF only, and a reader would take the
text after a lone CR for a field of its own); an id with NUL is refused (readers ignore it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import DurableValueError, InvalidArgumentError, ValidationError
from .eval._records import KnowledgeReadinessReport
from .jsoncanon import dumps_json
from .sanitize import (
    RuntimeTelemetryOptions,
    sanitize_knowledge_readiness_report,
    sanitize_runtime_stream_event,
)
from .types import RuntimeStreamEvent

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

_DATA_LINES = re.compile(r"\r\n|\r|\n")
_FIELD_BREAKS = str.maketrans({"\r": " ", "\n": " "})
_NO_DATA: Any = object()


def _field(name: str, value: Any) -> str | None:
    """A single-line `id`/`event` value, or None when not given (falsy, as the original)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"encode_server_sent_event: {name} must be a string")
    if name == "id" and "\x00" in value:
        raise ValidationError("encode_server_sent_event: id must not contain NUL")
    return value.translate(_FIELD_BREAKS) if value else None


def _payload(data: Any) -> str:
    if isinstance(data, str):
        return data
    to_dict = getattr(data, "to_dict", None)
    value = to_dict() if callable(to_dict) and not isinstance(data, type) else data
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise ValidationError(f"encode_server_sent_event: data is not JSON: {exc}") from None


def encode_server_sent_event(
    data: Any = _NO_DATA,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: float | None = None,
    comment: str | None = None,
) -> str:
    """One SSE frame as the original writes it: `id:`, `event:`, `retry:`, the `data:` lines,
    a blank line. `data` is sent as is when a string, else as compact JSON (records through
    `to_dict()`); `comment=` (ours) adds `: ` lines first, and alone makes a keep-alive ping."""
    lines: list[str] = []
    if comment is not None:
        if not isinstance(comment, str):
            raise ValidationError("encode_server_sent_event: comment must be a string")
        lines.extend(f": {line}" if line else ":" for line in _DATA_LINES.split(comment))
    id_value = _field("id", id)
    event_value = _field("event", event)
    if id_value is not None:
        lines.append(f"id: {id_value}")
    if event_value is not None:
        lines.append(f"event: {event_value}")
    if retry is not None:
        if type(retry) not in (int, float):
            raise ValidationError("encode_server_sent_event: retry must be a number")
        if math.isfinite(retry) and retry >= 0:
            lines.append(f"retry: {math.floor(retry)}")
    if data is _NO_DATA:
        if comment is None:
            raise ValidationError("encode_server_sent_event: a frame needs data or a comment")
    else:
        text = _payload(data)
        if "\n" in text or "\r" in text:
            lines.extend(f"data: {line}" for line in _DATA_LINES.split(text))
        else:
            lines.append(f"data: {text}")
    return "\n".join(lines) + "\n\n"


def readiness_server_sent_event(
    report: KnowledgeReadinessReport,
    options: RuntimeTelemetryOptions | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: float | None = None,
    comment: str | None = None,
    **telemetry: Any,
) -> str:
    """`{type: 'readiness', readiness: <sanitized report>}` as one frame; telemetry flags
    (`include_evidence_ids=True`, ...) and SSE options go in the same call."""
    opts = RuntimeTelemetryOptions.of(options, **telemetry)
    payload = {"type": "readiness", "readiness": sanitize_knowledge_readiness_report(report, opts)}
    return encode_server_sent_event(payload, event=event, id=id, retry=retry, comment=comment)


def runtime_stream_server_sent_event(
    stream_event: RuntimeStreamEvent | Mapping[str, Any],
    /,
    options: RuntimeTelemetryOptions | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: float | None = None,
    comment: str | None = None,
    **telemetry: Any,
) -> str:
    """The sanitized wire dict of a stream event as one frame; telemetry flags and SSE options
    (`event=` names the SSE event, it is not the runtime event) go in the same call."""
    opts = RuntimeTelemetryOptions.of(options, **telemetry)
    payload = sanitize_runtime_stream_event(stream_event, opts)
    return encode_server_sent_event(payload, event=event, id=id, retry=retry, comment=comment)


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
