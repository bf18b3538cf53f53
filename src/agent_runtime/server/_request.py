"""The `POST /api/chat` request body: parsed and validated before anything runs.

A malformed body is an `InvalidArgumentError` naming the field, which the app answers with a
JSON 400 (not JSON) or 422 (JSON of the wrong shape), a message over the size limit a 413;
nothing is stored for it. The body never says who is asking: `tenant_id` and `user_id` come
from authentication (the server sets them), and a body naming them is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from ..chat._turn import ChatTurnIdentity
from ..errors import InvalidArgumentError
from ..models import clean_model_id, is_well_formed_model_id
from ..types import AgentMessage
from ._errors import BodyTooLargeError, RequestJSONError

__all__ = [
    "MAX_MESSAGES",
    "MAX_TEXT_CHARS",
    "ChatRequest",
    "RequestJSONError",
    "parse_chat_request",
]

MAX_MESSAGES = 200
MAX_TEXT_CHARS = 100_000
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}")
"""A session, chat, thread or run id a client names (it becomes part of a stored run id)."""
_ROLES = ("system", "user", "assistant")
_FIELDS = frozenset(("session_id", "turn_index", "text", "messages", "model"))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One validated chat turn request; `tenant_id` and `user_id` are the authenticated
    caller's (set by the server, never read from the body)."""

    session_id: str
    turn_index: int
    messages: tuple[AgentMessage, ...]
    model: str | None = None
    tenant_id: str = "local"
    user_id: str = "local"
    from_text: bool = False
    """The body gave only the new message (`text`): the session's history is its context."""

    @property
    def identity(self) -> ChatTurnIdentity:
        """Who asks which turn, as the chat engine names it."""
        return ChatTurnIdentity(
            tenant_id=self.tenant_id,
            session_id=self.session_id,
            user_id=self.user_id,
            turn_index=self.turn_index,
        )

    @property
    def prompt(self) -> str:
        """The last user message's text."""
        return self.messages[-1].content

    def to_input(self) -> dict[str, Any]:
        """The JSON form recorded as the durable run's input (the manifest hashes it)."""
        return {
            "session_id": self.session_id,
            "turn_index": self.turn_index,
            "messages": [m.to_dict() for m in self.messages],
            "model": self.model,
        }


def is_client_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a session, chat, thread or run id a client may name: 1-128 letters,
    digits and `. _ @ + -`, starting with a letter or digit."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check_client_id(value: Any, path: str) -> str:
    """`value` when `is_client_id`; `InvalidArgumentError` at `path` otherwise."""
    if not is_client_id(value):
        raise InvalidArgumentError(
            "must be 1-128 characters of letters, digits and . _ @ + - (starting with a letter "
            "or digit)",
            path=path,
        )
    return value


def _text(value: Any, path: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"must be a string, got {type(value).__name__}", path=path)
    if len(value) > max_chars:
        raise BodyTooLargeError(f"{path}: must be at most {max_chars} characters")
    if "\x00" in value:
        raise InvalidArgumentError("must not contain NUL", path=path)
    return value


def _messages(
    data: dict[str, Any], max_messages: int, max_chars: int, allow_system: bool
) -> tuple[AgentMessage, ...]:
    has_text, has_messages = "text" in data, "messages" in data
    if has_text == has_messages:
        raise InvalidArgumentError("give exactly one of `text` or `messages`", path="text")
    if has_text:
        text = _text(data["text"], "text", max_chars)
        if not text.strip():
            raise InvalidArgumentError("must not be blank", path="text")
        return (AgentMessage(role="user", content=text),)
    raw = data["messages"]
    if not isinstance(raw, list) or not raw:
        raise InvalidArgumentError("must be a non-empty list of messages", path="messages")
    if len(raw) > max_messages:
        raise BodyTooLargeError(f"messages: at most {max_messages} messages")
    out: list[AgentMessage] = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict) or set(item) - {"role", "content"}:
            raise InvalidArgumentError("must be an object with `role` and `content`", path=where)
        role = item.get("role")
        if role not in _ROLES:
            raise InvalidArgumentError(f"must be one of {', '.join(_ROLES)}", path=f"{where}.role")
        if role == "system" and not allow_system:
            raise InvalidArgumentError(
                "system messages are not accepted from clients (the server sets the prompt)",
                path=f"{where}.role",
            )
        content = _text(item.get("content"), f"{where}.content", max_chars)
        out.append(AgentMessage(role=role, content=content))
    if out[-1].role != "user" or not out[-1].content.strip():
        raise InvalidArgumentError(
            "the last message must be a non-blank user message", path="messages"
        )
    return tuple(out)


def json_object(
    body: bytes, error: type[InvalidArgumentError] = RequestJSONError
) -> dict[str, Any]:
    """A request body that must be one JSON object; `error` (path `body`) otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise error(f"request body is not valid JSON: {exc}", path="body") from None
    if not isinstance(data, dict):
        raise error("request body must be a JSON object", path="body")
    return data


def parse_chat_request(
    body: bytes,
    *,
    max_messages: int = MAX_MESSAGES,
    max_text_chars: int = MAX_TEXT_CHARS,
    allow_system: bool = False,
) -> ChatRequest:
    """Parse and validate a request body; `RequestJSONError` (not a JSON object),
    `InvalidArgumentError` (a field is wrong, `path` says which), `BodyTooLargeError` (more
    than `max_messages` messages or `max_text_chars` characters in one). `system` messages
    are refused unless `allow_system`."""
    data = json_object(body)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise InvalidArgumentError(f"unknown field(s): {', '.join(unknown)}", path="body")
    turn = data.get("turn_index")
    if type(turn) is not int or not 0 <= turn < 1_000_000:
        raise InvalidArgumentError("must be an int from 0 to 999999", path="turn_index")
    model = data.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise InvalidArgumentError("must be a string", path="model")
        cleaned = clean_model_id(model)
        if cleaned is None:
            raise InvalidArgumentError("Model id must be a non-empty string.", path="model")
        if not is_well_formed_model_id(cleaned):
            raise InvalidArgumentError(f"Model id is malformed: {cleaned}", path="model")
        model = cleaned
    return ChatRequest(
        session_id=check_client_id(data.get("session_id"), "session_id"),
        turn_index=turn,
        messages=_messages(data, max_messages, max_text_chars, allow_system),
        model=model,
        from_text="text" in data,
    )
