"""The request bodies of the two dialects, parsed and validated before anything runs.

`parse_ui_chat_request`: `useChat`'s `POST` body (`{id, messages: UIMessage[], trigger,
messageId}`, plus whatever the app adds through the transport's `body`, ignored but `model`).
`parse_run_agent_input`: AG-UI's `RunAgentInput` (`{threadId, runId, messages, resume?, …}`).
Each conversation becomes our `AgentMessage`s: the text parts of a UI message joined, an AG-UI
message's string content or its text parts; tool, reasoning and activity messages are the
client's record of what the server sent and are not sent back to the model. A body that is not
a JSON object is a `DialectJSONError` (400); a wrong shape an `InvalidArgumentError` naming
the field (422); more messages or longer text than the limits a `BodyTooLargeError` (413), as
on `/api/chat`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...errors import InvalidArgumentError
from ...types import AgentMessage
from .._errors import BodyTooLargeError
from .._request import check_client_id, json_object

__all__ = [
    "AguiResume",
    "AguiRunInput",
    "DialectJSONError",
    "UiChatRequest",
    "parse_run_agent_input",
    "parse_ui_chat_request",
]

_UI_ROLES = frozenset(("system", "user", "assistant"))
_AGUI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_AGUI_SKIPPED = frozenset(("tool", "activity", "reasoning"))
_TRIGGERS = ("submit-message", "regenerate-message")


class DialectJSONError(InvalidArgumentError):
    """A dialect request body that is not a JSON object at all (answered 400, not 422)."""

    code = "invalid_json"


@dataclass(frozen=True, slots=True)
class UiChatRequest:
    """One `useChat` request: the chat (our session), its conversation, what to do."""

    chat_id: str
    messages: tuple[AgentMessage, ...]
    trigger: Literal["submit-message", "regenerate-message"]
    message_id: str | None = None
    model: str | None = None

    @property
    def turn_index(self) -> int:
        """The turn the last user message asks: how many user messages came before it."""
        return sum(1 for m in self.messages if m.role == "user") - 1


@dataclass(frozen=True, slots=True)
class AguiResume:
    """One answer to an interrupt: `resolved` with its payload, or `cancelled`."""

    interrupt_id: str
    status: Literal["resolved", "cancelled"]
    payload: Any = None


@dataclass(frozen=True, slots=True)
class AguiRunInput:
    """One AG-UI run request: the thread (our session), the client's run id, the messages,
    the answers to the thread's open interrupts."""

    thread_id: str
    run_id: str
    messages: tuple[AgentMessage, ...]
    resume: tuple[AguiResume, ...] = ()
    forwarded_props: Any = None

    @property
    def turn_index(self) -> int:
        """The turn the last user message asks (answers to interrupts continue that turn's
        conversation: the caller decides which turn they start)."""
        return sum(1 for m in self.messages if m.role == "user") - 1


def _object(body: bytes) -> dict[str, Any]:
    return json_object(body, DialectJSONError)


def _text(value: Any, path: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"must be a string, got {type(value).__name__}", path=path)
    if len(value) > max_chars:
        raise BodyTooLargeError(f"{path}: must be at most {max_chars} characters")
    if "\x00" in value:
        raise InvalidArgumentError("must not contain NUL", path=path)
    return value


def _list(value: Any, path: str, max_items: int) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InvalidArgumentError("must be a non-empty list", path=path)
    if len(value) > max_items:
        raise BodyTooLargeError(f"{path}: at most {max_items} items")
    return value


def _text_parts(parts: Any, path: str, max_chars: int) -> str:
    if not isinstance(parts, list):
        raise InvalidArgumentError("must be a list of parts", path=path)
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidArgumentError(
                "must be an object with a string `type`", path=f"{path}[{j}]"
            )
        if part["type"] == "text":
            texts.append(_text(part.get("text"), f"{path}[{j}].text", max_chars))
    joined = "".join(texts)
    if len(joined) > max_chars:
        raise BodyTooLargeError(f"{path}: text must be at most {max_chars} characters")
    return joined


def _last_user(messages: list[AgentMessage], path: str) -> tuple[AgentMessage, ...]:
    if not messages or messages[-1].role != "user" or not messages[-1].content.strip():
        raise InvalidArgumentError("the last message must be a non-blank user message", path=path)
    return tuple(messages)


def _model(data: dict[str, Any]) -> str | None:
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidArgumentError("must be a non-empty string", path="model")
    return model.strip() if isinstance(model, str) else None


def parse_ui_chat_request(
    body: bytes, *, max_messages: int = 200, max_text_chars: int = 100_000
) -> UiChatRequest:
    """Parse `useChat`'s body; see the module docstring."""
    data = _object(body)
    chat_id = check_client_id(data.get("id"), "id")
    trigger = data.get("trigger", "submit-message")
    if trigger not in _TRIGGERS:
        raise InvalidArgumentError(f"must be one of {', '.join(_TRIGGERS)}", path="trigger")
    message_id = data.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise InvalidArgumentError("must be a string", path="messageId")
    out: list[AgentMessage] = []
    for i, item in enumerate(_list(data.get("messages"), "messages", max_messages)):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise InvalidArgumentError("must be a UI message object", path=where)
        role = item.get("role")
        if role not in _UI_ROLES:
            raise InvalidArgumentError(
                f"must be one of {', '.join(sorted(_UI_ROLES))}", path=f"{where}.role"
            )
        text = _text_parts(item.get("parts"), f"{where}.parts", max_text_chars)
        if role == "assistant" and not text:
            continue  # a message of tool calls only: nothing for the model to read back
        out.append(AgentMessage(role=role, content=text))
    return UiChatRequest(
        chat_id=chat_id,
        messages=_last_user(out, "messages"),
        trigger=trigger,
        message_id=message_id,
        model=_model(data),
    )


def _agui_content(item: dict[str, Any], where: str, max_chars: int) -> str:
    content = item.get("content")
    if isinstance(content, list):
        return _text_parts(content, f"{where}.content", max_chars)
    if content is None and item.get("role") == "assistant":
        return ""  # an assistant message of tool calls only
    return _text(content, f"{where}.content", max_chars)


def parse_run_agent_input(
    body: bytes,
    *,
    max_messages: int = 200,
    max_text_chars: int = 100_000,
    resuming: bool = False,
) -> AguiRunInput:
    """Parse AG-UI's `RunAgentInput`; see the module docstring. A run that answers interrupts
    (`resume`) may end on an assistant message; any other must end on a user message, except
    that a run re-posted to resume its stream (`resuming`) drops the assistant messages after
    the last user message (the client's partial copy of the answer being resumed)."""
    data = _object(body)
    thread_id = check_client_id(data.get("threadId"), "threadId")
    run_id = check_client_id(data.get("runId"), "runId")
    raw = data.get("messages")
    if not isinstance(raw, list):
        raise InvalidArgumentError(f"must be a list of at most {max_messages}", path="messages")
    if len(raw) > max_messages:
        raise BodyTooLargeError(f"messages: at most {max_messages} messages")
    out: list[AgentMessage] = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise InvalidArgumentError("must be a message object with a `role`", path=where)
        role = item["role"]
        if role in _AGUI_SKIPPED:
            continue
        if role not in _AGUI_ROLES:
            raise InvalidArgumentError(
                f"is not an AG-UI message role: {role!r}", path=f"{where}.role"
            )
        text = _agui_content(item, where, max_text_chars)
        if role == "assistant" and not text:
            continue
        out.append(AgentMessage(role=_AGUI_ROLES[role], content=text))  # type: ignore[arg-type]
    resume: list[AguiResume] = []
    raw_resume = data.get("resume")
    if raw_resume is not None:
        if not isinstance(raw_resume, list):
            raise InvalidArgumentError("must be a list of resume entries", path="resume")
        if len(raw_resume) > max_messages:
            raise BodyTooLargeError(f"resume: at most {max_messages} entries")
        for i, entry in enumerate(raw_resume):
            where = f"resume[{i}]"
            if not isinstance(entry, dict):
                raise InvalidArgumentError("must be a resume entry object", path=where)
            interrupt = entry.get("interruptId")
            if not isinstance(interrupt, str) or not interrupt:
                raise InvalidArgumentError(
                    "must be a non-empty string", path=f"{where}.interruptId"
                )
            status = entry.get("status")
            if status not in ("resolved", "cancelled"):
                raise InvalidArgumentError("must be resolved or cancelled", path=f"{where}.status")
            resume.append(AguiResume(interrupt, status, entry.get("payload")))
    if resuming and not resume:
        while out and out[-1].role == "assistant":
            out.pop()
    messages = tuple(out) if resume else _last_user(out, "messages")
    return AguiRunInput(
        thread_id=thread_id,
        run_id=run_id,
        messages=messages,
        resume=tuple(resume),
        forwarded_props=data.get("forwardedProps"),
    )
