"""The dialects' request bodies: useChat's and AG-UI's RunAgentInput become our messages, and
every malformed field is a typed error naming it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.server import BodyTooLargeError
from agent_runtime.server.dialects import (
    DialectJSONError,
    parse_run_agent_input,
    parse_ui_chat_request,
)
from agent_runtime.types import AgentMessage


def _ui(**body: Any) -> bytes:
    return orjson.dumps(
        {
            "id": "chat-1",
            "trigger": "submit-message",
            "messages": [
                {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]},
                {"id": "a1", "role": "assistant", "parts": [
                    {"type": "step-start"},
                    {"type": "text", "text": "Hello"},
                    {"type": "dynamic-tool", "toolName": "t", "toolCallId": "c", "state": "output-available"},
                    {"type": "text", "text": " there"},
                ]},
                {"id": "u2", "role": "user", "metadata": {"k": 1},
                 "parts": [{"type": "text", "text": "And "}, {"type": "text", "text": "now?"}]},
            ],
            **body,
        }
    )  # fmt: skip


def test_a_use_chat_body_becomes_our_conversation() -> None:
    parsed = parse_ui_chat_request(_ui(messageId=None, extra="apps add their own fields"))
    assert parsed.chat_id == "chat-1" and parsed.trigger == "submit-message"
    assert parsed.messages == (
        AgentMessage(role="user", content="Hi"),
        AgentMessage(role="assistant", content="Hello there"),
        AgentMessage(role="user", content="And now?"),
    )
    assert parsed.turn_index == 1
    regenerate = parse_ui_chat_request(_ui(trigger="regenerate-message", messageId="a9", model="m"))
    assert (regenerate.trigger, regenerate.message_id, regenerate.model) == (
        "regenerate-message",
        "a9",
        "m",
    )


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_ui(id="bad id"), "id"),
        (_ui(trigger="resume-stream"), "trigger"),
        (_ui(messageId=3), "messageId"),
        (_ui(messages=[]), "messages"),
        (_ui(messages=[{"role": "tool", "parts": []}]), "messages[0].role"),
        (_ui(messages=[{"role": "user", "parts": "hi"}]), "messages[0].parts"),
        (_ui(messages=[{"role": "user", "parts": [{"type": "text", "text": 1}]}]),
         "messages[0].parts[0].text"),
        (_ui(messages=[{"role": "assistant", "parts": [{"type": "text", "text": "x"}]}]),
         "messages"),
        (_ui(messages=[{"role": "user", "parts": [{"type": "text", "text": "a\x00"}]}]),
         "messages[0].parts[0].text"),
        (_ui(model=""), "model"),
    ],
)  # fmt: skip
def test_a_malformed_use_chat_body_names_its_field(body: bytes, path: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_ui_chat_request(body)
    assert caught.value.path == path and not isinstance(caught.value, DialectJSONError)


def test_limits_and_non_json_bodies() -> None:
    with pytest.raises(BodyTooLargeError, match="at most 2"):
        parse_ui_chat_request(_ui(), max_messages=2)
    with pytest.raises(BodyTooLargeError, match="at most 3 characters"):
        parse_ui_chat_request(_ui(), max_text_chars=3)
    two = [{"type": "text", "text": "ab"}, {"type": "text", "text": "cd"}]
    with pytest.raises(BodyTooLargeError, match=r"messages\[0\]\.parts: text must be at most 3"):
        parse_ui_chat_request(_ui(messages=[{"role": "user", "parts": two}]), max_text_chars=3)
    with pytest.raises(BodyTooLargeError, match="at most 3 characters"):
        parse_run_agent_input(_agui(), max_text_chars=3)
    for body in (b"{", b"[1]"):
        with pytest.raises(DialectJSONError):
            parse_ui_chat_request(body)
        with pytest.raises(DialectJSONError):
            parse_run_agent_input(body)


def _agui(**body: Any) -> bytes:
    return orjson.dumps(
        {
            "threadId": "th-1",
            "runId": "3f1c2a7e-0000-4000-8000-000000000001",
            "state": {},
            "tools": [],
            "context": [],
            "forwardedProps": {"lastEventId": 4},
            "messages": [
                {"id": "s", "role": "developer", "content": "Be brief."},
                {"id": "u1", "role": "user", "content": "Hi"},
                {"id": "a1", "role": "assistant", "content": "Hello",
                 "toolCalls": [{"id": "c", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
                {"id": "c:result", "role": "tool", "toolCallId": "c", "content": "{}"},
                {"id": "r", "role": "reasoning", "content": "hmm"},
                {"id": "a2", "role": "assistant"},
                {"id": "u2", "role": "user", "content": [{"type": "text", "text": "More"}]},
            ],
            **body,
        }
    )  # fmt: skip


def test_a_run_agent_input_becomes_our_conversation() -> None:
    parsed = parse_run_agent_input(_agui())
    assert (parsed.thread_id, parsed.run_id) == ("th-1", "3f1c2a7e-0000-4000-8000-000000000001")
    assert parsed.messages == (
        AgentMessage(role="system", content="Be brief."),
        AgentMessage(role="user", content="Hi"),
        AgentMessage(role="assistant", content="Hello"),
        AgentMessage(role="user", content="More"),
    )
    assert parsed.turn_index == 1 and parsed.resume == ()
    assert parsed.forwarded_props == {"lastEventId": 4}


def test_a_run_that_answers_interrupts() -> None:
    answer = {"interruptId": "question_city", "status": "resolved", "payload": {"answer": "Porto"}}
    ends_on_assistant = [{"id": "u", "role": "user", "content": "Hi"},
                         {"id": "a", "role": "assistant", "content": "Which city?"}]  # fmt: skip
    parsed = parse_run_agent_input(_agui(resume=[answer], messages=ends_on_assistant))
    (entry,) = parsed.resume
    assert (entry.interrupt_id, entry.status, entry.payload) == (
        "question_city",
        "resolved",
        {"answer": "Porto"},
    )
    with pytest.raises(InvalidArgumentError) as caught:
        parse_run_agent_input(_agui(messages=ends_on_assistant))
    assert caught.value.path == "messages"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (_agui(threadId=""), "threadId"),
        (_agui(runId=None), "runId"),
        (_agui(messages={}), "messages"),
        (_agui(messages=[{"content": "x"}]), "messages[0]"),
        (_agui(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (_agui(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_agui(resume={}), "resume"),
        (_agui(resume=[{"status": "resolved"}]), "resume[0].interruptId"),
        (_agui(resume=[{"interruptId": "q", "status": "maybe"}]), "resume[0].status"),
    ],
)
def test_a_malformed_run_agent_input_names_its_field(body: bytes, path: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_run_agent_input(body)
    assert caught.value.path == path
