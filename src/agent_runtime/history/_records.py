"""The conversation record and the boundary checks every conversation history shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import ConversationOwnerError, DurableValueError, InvalidArgumentError
from ..jsoncanon import dumps_json, loads_json

__all__ = ["Conversation"]

MAX_ID_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation owned by one tenant and user: metadata plus its messages in order.

    `messages` holds JSON objects (chat messages or turn records) as appended; listings leave
    it empty and report `message_count` only.
    """

    session_id: str
    tenant_id: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: tuple[dict[str, Any], ...] = ()
    message_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (timestamps as ISO 8601)."""
        return {
            "session_id": self.session_id,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "metadata": self.metadata,
            "messages": list(self.messages),
            "message_count": self.message_count,
        }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def check_id(value: Any, name: str) -> str:
    """A non-empty string without NUL, at most 512 characters."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError("must be a non-empty string", path=name)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgumentError(f"is longer than {MAX_ID_LENGTH} characters", path=name)
    if "\x00" in value:
        raise InvalidArgumentError("contains a NUL character", path=name)
    return value


def check_owner_args(session_id: Any, tenant_id: Any, user_id: Any) -> None:
    check_id(session_id, "session_id")
    check_id(tenant_id, "tenant_id")
    if user_id is not None:
        check_id(user_id, "user_id")


def encode_json(value: Any, path: str) -> str:
    try:
        return dumps_json(value, root=path).decode()
    except DurableValueError as exc:
        raise InvalidArgumentError(exc.reason, path=exc.path) from None


def encode_metadata(metadata: Any) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError("must be a JSON object", path="metadata")
    return encode_json(dict(metadata), "metadata")


def encode_messages(messages: Any) -> list[str]:
    """Each message as JSON text; the whole batch is refused if any one is not a JSON object."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise InvalidArgumentError("must be a list of JSON objects", path="messages")
    out: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidArgumentError("must be a JSON object", path=f"messages[{i}]")
        out.append(encode_json(dict(message), f"messages[{i}]"))
    return out


def check_owner(
    session_id: str,
    stored_tenant: str,
    stored_user: str | None,
    tenant_id: str,
    user_id: str | None,
) -> None:
    """Refuse access to a conversation that belongs to another tenant or user.

    The message names only the caller's side, never the owner's, so it is safe to show."""
    if stored_tenant != tenant_id or stored_user != user_id:
        raise ConversationOwnerError(
            f"conversation {session_id!r} belongs to another tenant or user "
            f"(requested by tenant {tenant_id!r}, user {user_id!r})"
        )


def check_limit(limit: Any) -> int:
    if type(limit) is not int or limit <= 0:
        raise InvalidArgumentError("must be an int > 0", path="limit")
    return limit


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Shallow merge; a key whose new value is None is removed."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def encode_patch(metadata: Any) -> dict[str, Any]:
    """Validate a metadata patch and return a private copy of it."""
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError("must be a JSON object", path="metadata")
    return loads_json(encode_json(dict(metadata), "metadata"))  # type: ignore[no-any-return]


def check_at_least(at_least: Any) -> dict[str, int]:
    """`advance_metadata`'s floors: a mapping of keys to non-negative ints."""
    if not isinstance(at_least, Mapping):
        raise InvalidArgumentError("must be a mapping of keys to ints", path="at_least")
    out: dict[str, int] = {}
    for key, value in at_least.items():
        if not isinstance(key, str):
            raise InvalidArgumentError("keys must be strings", path="at_least")
        if type(value) is not int or value < 0:
            raise InvalidArgumentError("must be an int >= 0", path=f"at_least.{key}")
        out[key] = value
    return out


def advancing(at_least: Any, defaults: Any) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """`advance_metadata`'s change, its arguments checked: each `at_least` key raised to its
    floor (a missing or non-int value counts as below it), each `defaults` key set where
    absent; None when nothing changes."""
    floors = check_at_least(at_least)
    fallback = encode_patch(defaults or {})

    def change(current: dict[str, Any]) -> dict[str, Any] | None:
        merged = dict(current)
        for key, floor in floors.items():
            value = merged.get(key)
            if type(value) is not int or value < floor:
                merged[key] = floor
        for key, value in fallback.items():
            if key not in merged and value is not None:
                merged[key] = value
        return None if merged == current else merged

    return change
