"""The real clients (the AI SDK's chat state machine and AG-UI's HttpAgent, from npm) read the
encoders' streams of fixed logs: what they assemble is the stored turn, through a dropped
connection and a resume as well. Each client runs its jobs in one Node process."""

from __future__ import annotations

from typing import Any

import pytest

from .logs import stored_text
from .node import run_client

_VERCEL_JOBS = {
    "tools": {"log": "tools"},
    "tools-v6": {"log": "tools", "package": "ai-v6"},
    "reasoning": {"log": "reasoning"},
    "text": {"log": "text"},
    "failed": {"log": "failed"},
    "stopped": {"log": "stopped"},
    **{
        f"drop-{package}-{'replay' if replay else 'cursor'}": {
            "log": "text",
            "package": package,
            "dropAfterDeltas": 2,
            "resume": True,
            "replay": replay,
        }
        for package in ("ai", "ai-v6")
        for replay in (True, False)
    },
}
_AGUI_JOBS = {
    "tools": {"log": "tools"},
    "blocked": {"log": "blocked"},
    "stopped": {"log": "stopped"},
    "failed": {"log": "failed"},
    "reasoning": {"log": "reasoning"},
    "drop": {"log": "text", "dropAfterDeltas": 2, "resumeAfterDrop": True},
}


@pytest.fixture(scope="module")
def vercel(node: str, static_url: str) -> dict[str, Any]:
    jobs = [
        {"api": f"{static_url}/v/{job.pop('log')}", "chatId": "c", "text": "hi", **job}
        for job in (dict(j) for j in _VERCEL_JOBS.values())
    ]
    return dict(zip(_VERCEL_JOBS, run_client(node, "vercel_client.mjs", jobs), strict=True))


@pytest.fixture(scope="module")
def agui(node: str, static_url: str) -> dict[str, Any]:
    jobs = [
        {"url": f"{static_url}/agui/{job.pop('log')}", "threadId": "th", "text": "hi", **job}
        for job in (dict(j) for j in _AGUI_JOBS.values())
    ]
    return dict(zip(_AGUI_JOBS, run_client(node, "agui_client.mjs", jobs), strict=True))


def _assistant(out: dict[str, Any]) -> dict[str, Any]:
    (message,) = [m for m in out["messages"] if m["role"] == "assistant"]
    return message


def _text_parts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["parts"] if p["type"] == "text"]


@pytest.mark.parametrize("run", ["tools", "tools-v6"])
def test_ai_sdk_assembles_a_turn_with_tool_calls(vercel: dict[str, Any], run: str) -> None:
    out = vercel[run]
    assert out["status"] == "ready" and out["errors"] == []
    message = _assistant(out)
    assert message["id"] == "assistant-1"
    assert [p["type"] for p in message["parts"]] == ["text", "dynamic-tool", "text"]
    tool = message["parts"][1]
    assert (tool["toolCallId"], tool["state"], tool["input"], tool["output"]) == (
        "call_1",
        "output-available",
        {"q": "tides"},
        {"hits": 2},
    )
    assert "".join(_text_parts(message)) == stored_text("tools")


def test_ai_sdk_reasoning_and_usage(vercel: dict[str, Any]) -> None:
    assert [(p["type"], p["text"]) for p in _assistant(vercel["reasoning"])["parts"]] == [
        ("reasoning", "thinking hard"),
        ("text", "Answer here"),
    ]
    assert _assistant(vercel["text"])["metadata"] == {
        "llmCalls": 1,
        "model": "echo",
        "tokensIn": 3,
        "tokensOut": 5,
    }


def test_ai_sdk_failed_and_stopped_turns(vercel: dict[str, Any]) -> None:
    failed = vercel["failed"]
    assert failed["status"] == "error" and failed["error"] == "upstream said no"
    assert _text_parts(_assistant(failed)) == ["Partial"]
    stopped = vercel["stopped"]
    assert stopped["status"] == "ready" and stopped["errors"] == []
    assert _text_parts(_assistant(stopped)) == ["Stop here"]
    chunks = [e["data"] for e in stopped["events"]]
    assert chunks[-2:] == [{"type": "abort", "reason": "stopped by the user"}, "[DONE]"]


@pytest.mark.parametrize("package", ["ai", "ai-v6"])
@pytest.mark.parametrize("mode", ["replay", "cursor"])
def test_ai_sdk_resumes_mid_text_after_a_dropped_connection(
    vercel: dict[str, Any], package: str, mode: str
) -> None:
    out = vercel[f"drop-{package}-{mode}"]
    assert out["errors"] == ["network error"] and out["status"] == "ready"
    assert out["statuses"] == [200, 200]  # the send, then the reconnect
    parts = _text_parts(_assistant(out))
    assert "".join(parts) == stored_text("text")  # nothing lost, nothing repeated
    if mode == "replay":  # the whole message again: the client resets and holds one part
        assert parts == [stored_text("text")]
    else:  # continued after the cursor: the part open there was re-opened
        assert parts == ["Hello, wor", "ld! How are you?"]


def _types(out: dict[str, Any]) -> list[str]:
    return [e["data"]["type"] for e in out["events"]]


def test_agui_assembles_a_turn_with_a_tool_call(agui: dict[str, Any]) -> None:
    out = agui["tools"]
    assert out["runs"] == [{"error": None, "pendingInterrupts": []}]
    user, first, result, second = out["messages"]
    assert user["role"] == "user"
    assert (first["role"], first["content"]) == ("assistant", "Let me look that up.")
    assert first["toolCalls"] == [
        {
            "id": "r:call_1",
            "type": "function",
            "function": {"name": "search", "arguments": '{"q":"tides"}'},
        }
    ]
    assert (result["role"], result["toolCallId"], result["content"]) == (
        "tool",
        "r:call_1",
        '{"hits":2}',
    )
    assert second["content"] == "Found two."
    assert _types(out)[0] == "RUN_STARTED" and _types(out)[-1] == "RUN_FINISHED"


def test_agui_interrupt_from_the_readiness_gate(agui: dict[str, Any]) -> None:
    (pending,) = agui["blocked"]["runs"][0]["pendingInterrupts"]
    assert (pending["id"], pending["reason"]) == ("question_city", "input_required")
    assert pending["message"] == "Please provide: the city you are in"
    assert pending["metadata"]["question"]["requirementId"] == "city"


def test_agui_stopped_failed_and_reasoning_turns(agui: dict[str, Any]) -> None:
    stopped = agui["stopped"]
    assert stopped["events"][-1]["data"]["outcome"] == {"type": "cancelled"}
    assert stopped["messages"][-1]["content"] == "Stop here"
    assert agui["failed"]["events"][-1]["data"] == {
        "type": "RUN_ERROR",
        "message": "upstream said no",
        "code": "backend_error",
    }
    assert [(m["role"], m["content"]) for m in agui["reasoning"]["messages"][1:]] == [
        ("reasoning", "thinking hard"),
        ("assistant", "Answer here"),
    ]


def test_agui_resumes_mid_text_by_reposting_with_the_last_event_id(agui: dict[str, Any]) -> None:
    out = agui["drop"]
    assert [r["error"] for r in out["runs"]] == ["network error", None]
    assistant = [m for m in out["messages"] if m["role"] == "assistant"]
    assert [m["content"] for m in assistant] == [stored_text("text")]  # one message, continued
    assert _types(out).count("RUN_STARTED") == 2
