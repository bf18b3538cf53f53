"""The common raw-event mapping (ORIGINAL §7.3): what a sandbox's `stream_prompt` or an
OpenAI-compatible stream sends, turned into a `RuntimeStreamEvent`, or nothing.

Hostile input (not a mapping, fields of the wrong type) maps to nothing or to a valid event;
it never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from ..types import (
    AgentBackendContext,
    ArtifactEvent,
    ProposalCreatedEvent,
    ReasoningDeltaEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    now_iso,
)

__all__ = ["NON_TEXT_RAW_TYPES", "TEXT_RAW_TYPES", "map_raw_backend_event"]

TEXT_RAW_TYPES: frozenset[str] = frozenset(("message.part.updated", "text_delta", "delta"))
"""Raw types whose text becomes a `text_delta`."""
NON_TEXT_RAW_TYPES: frozenset[str] = frozenset(
    (
        "reasoning_delta",
        "tool_call",
        "tool_result",
        "artifact",
        "proposal_created",
        "proposal",
        "filing",
    )
)
"""Raw types the mapping turns into something other than text."""
_PROPOSAL_STATUSES = ("pending", "approved", "rejected")


def _get(m: Mapping[Any, Any], key: str) -> Any:
    try:
        return m.get(key)
    except Exception:  # a hostile mapping whose lookup fails holds nothing usable
        return None


def _first_str(*values: Any) -> str | None:
    """The first non-empty string (the original's `a || b || c` over strings)."""
    for v in values:
        if isinstance(v, str) and v:
            return v
    return None


def _first_present(*values: Any) -> Any:
    """The first value that is not None (the original's `a ?? b ?? c`)."""
    for v in values:
        if v is not None:
            return v
    return None


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _text(data: Mapping[Any, Any], record: Mapping[Any, Any]) -> str | None:
    text = _first_str(_get(data, "text"), _get(data, "delta"), _get(record, "text"))
    if text is not None:
        return text
    part = _get(data, "part")
    if isinstance(part, Mapping) and _get(part, "type") in (None, "text"):
        return _first_str(_get(part, "text"))
    return None


def _tool_name(data: Mapping[Any, Any], record: Mapping[Any, Any]) -> str:
    return _first_str(_get(data, "name"), _get(record, "toolName")) or "tool"


def _tool_id(data: Mapping[Any, Any], record: Mapping[Any, Any]) -> str | None:
    return _first_str(_get(data, "id"), _get(record, "toolCallId"))


def _status(v: Any) -> Literal["pending", "approved", "rejected"] | None:
    if isinstance(v, str) and v in _PROPOSAL_STATUSES:
        return cast(Literal["pending", "approved", "rejected"], str(v))
    return None


def _metadata(v: Any) -> dict[str, Any] | None:
    if not isinstance(v, Mapping):
        return None
    try:
        return dict(v)
    except Exception:  # a hostile mapping that cannot be copied carries no metadata
        return None


def _map(kind: str, data: Mapping[Any, Any], record: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The event's class-specific fields, tagged with `type`; None when it maps to nothing."""
    if kind in TEXT_RAW_TYPES:
        text = _text(data, record)
        return None if text is None else {"type": TextDeltaEvent, "text": text}
    if kind == "reasoning_delta":
        text = _first_str(_get(data, "text"), _get(record, "text"))
        return None if text is None else {"type": ReasoningDeltaEvent, "text": text}
    if kind == "tool_call":
        return {
            "type": ToolCallEvent,
            "tool_name": _tool_name(data, record),
            "tool_call_id": _tool_id(data, record),
            "args": _first_present(_get(data, "args"), _get(data, "input"), _get(record, "args")),
        }
    if kind == "tool_result":
        return {
            "type": ToolResultEvent,
            "tool_name": _tool_name(data, record),
            "tool_call_id": _tool_id(data, record),
            "result": _first_present(
                _get(data, "result"), _get(data, "output"), _get(record, "result")
            ),
        }
    if kind == "artifact":
        artifact_id = _first_str(
            _get(data, "artifactId"), _get(data, "id"), _get(record, "artifactId")
        )
        if artifact_id is None:
            return None
        return {
            "type": ArtifactEvent,
            "artifact_id": artifact_id,
            "name": _opt_str(_get(data, "name")),
            "mime_type": _opt_str(_get(data, "mimeType")),
            "uri": _opt_str(_get(data, "uri")),
            "content": _first_present(_get(data, "content"), _get(data, "body")),
            "metadata": _metadata(_get(data, "metadata")),
        }
    if kind in ("proposal_created", "proposal", "filing"):
        proposal_id = _first_str(
            _get(data, "proposalId"), _get(data, "id"), _get(record, "proposalId")
        )
        if proposal_id is None:
            return None
        return {
            "type": ProposalCreatedEvent,
            "proposal_id": proposal_id,
            "title": _first_str(_get(data, "title")) or proposal_id,
            "status": _status(_get(data, "status")),
            "content": _first_present(_get(data, "content"), _get(data, "body")),
        }
    if kind in ("result", "final"):
        text = _first_str(_get(data, "finalText"), _get(data, "text"), _get(record, "text"))
        return None if text is None else {"type": TextDeltaEvent, "text": text}
    return None


def map_raw_backend_event(raw: Any, ctx: AgentBackendContext) -> RuntimeStreamEvent | None:
    """The `RuntimeStreamEvent` a raw backend record stands for, stamped with `ctx.task`,
    `ctx.session` and the current time; None for anything the mapping does not know.

    `type` is read from the record; the payload is its `data` field when that is an object,
    else the record itself. Text kinds (`message.part.updated`, `text_delta`, `delta`) take
    `data.text`, `data.delta`, `text` or a text `data.part.text`; `result`/`final` become one
    `text_delta` of `data.finalText`, `data.text` or `text`; `reasoning_delta`, `tool_call`,
    `tool_result` (tool name defaults to `"tool"`), `artifact` and `proposal_created` /
    `proposal` / `filing` (an id is required for the last two) map to their events.
    """
    if not isinstance(raw, Mapping):
        return None
    kind = _get(raw, "type")
    if not isinstance(kind, str):
        return None
    payload = _get(raw, "data")
    data: Mapping[Any, Any] = payload if isinstance(payload, Mapping) else raw
    fields = _map(kind, data, raw)
    if fields is None:
        return None
    cls = fields.pop("type")
    event: RuntimeStreamEvent = cls(
        **fields, task=ctx.task, session=ctx.session, timestamp=now_iso()
    )
    return event
