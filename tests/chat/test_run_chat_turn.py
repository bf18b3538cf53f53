"""`run_chat_turn` (ORIGINAL §16) against a real sandbox runtime of ours on 127.0.0.1: request
body and headers, the `claude-code` default, `model` only with an override, the line parsing
rules, non-2xx as `ChatTurnError` with the first 500 characters, abort; and
`sandbox_as_chat_turn_target`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_runtime import (
    AbortController,
    ChatTurnError,
    ChatTurnMessage,
    ChatTurnOverlay,
    ChatTurnSandbox,
    ValidationError,
    run_chat_turn,
    sandbox_as_chat_turn_target,
)
from tests.server.conftest import serving

PROFILE: dict[str, Any] = {
    "name": "tax",
    "prompt": {"systemPrompt": "You are a tax assistant.", "instructions": ["Be brief."]},
}
BODY = (
    b": heartbeat\n\n"
    b'data: {"type":"task_start","id":1}\r\n\r\n'
    b"event: message\n"
    b'data: {"type":"message","text":"hel"}\n\n'
    b"   \n"
    b"data: not json at all\n"
    b"data:\n"
    b'{"type":"message","text":"lo"}\n'
    b"data: [DONE]\n\n"
    b'data: {"type":"task_complete"}'  # no trailing newline: flushed at the end
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def run_stream(request: Request) -> Response:
        body = orjson.loads(await request.body())
        seen.append({"headers": dict(request.headers), "body": body})
        mode = request.query_params.get("mode") or body["messages"][-1]["content"]
        if mode == "fail":
            return PlainTextResponse("x" * 600 + "TAIL", status_code=503)
        if mode == "slow":

            async def slow() -> AsyncIterator[bytes]:
                yield b'data: {"type":"message","text":"first"}\n\n'
                await asyncio.sleep(30)
                yield b'data: {"type":"late"}\n\n'

            return StreamingResponse(slow(), media_type="text/event-stream")

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(BODY), 7):  # lines split across chunks
                yield BODY[i : i + 7]

        return StreamingResponse(chunks(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/runtime/agents/run/stream", run_stream, methods=["POST"])])
    with serving(app) as url:
        yield url, seen


async def collect(**kwargs: Any) -> list[Any]:
    return [e async for e in run_chat_turn(**kwargs)]


async def test_body_headers_and_parsing(sandbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = sandbox
    target = ChatTurnSandbox(
        id="sb-1", runtime_url=url, auth_header={"name": "X-Tangle-Token", "value": "tok-1"}
    )
    events = await collect(
        profile=PROFILE,
        message="hi",
        prior_messages=[ChatTurnMessage("user", "q1"), {"role": "assistant", "content": "a1"}],
        sandbox=target,
    )
    assert events == [
        {"type": "task_start", "id": 1},
        {"type": "message", "text": "hel"},
        {"type": "message", "text": "lo"},
        {"type": "task_complete"},
    ]
    request = seen[-1]
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["accept"] == "text/event-stream"
    assert request["headers"]["x-tangle-token"] == "tok-1"
    assert request["body"] == {
        "backend": {"type": "claude-code", "profile": PROFILE},  # no "model" key
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "hi"},
        ],
    }


async def test_overlay_backend_type_and_model_override(
    sandbox: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = sandbox
    profile = {**PROFILE, "metadata": {"backend": {"type": "codex"}}}
    await collect(
        profile=profile,
        message="hi",
        sandbox=ChatTurnSandbox(id="sb", runtime_url=url),
        overlay=ChatTurnOverlay(prompt_overlay={"instructions": ["Answer in French."]}),
        model_override="claude-sonnet-4",
    )
    backend = seen[-1]["body"]["backend"]
    assert backend["type"] == "codex"
    assert backend["model"] == {"default": "claude-sonnet-4"}
    assert backend["profile"]["prompt"] == {
        "systemPrompt": "You are a tax assistant.",
        "instructions": ["Be brief.", "Answer in French."],
    }
    assert "authorization" not in seen[-1]["headers"]


async def test_without_overlay_the_profile_is_sent_as_is(
    sandbox: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = sandbox
    odd = {"name": "x", "custom": {"kept": True}}
    await collect(profile=odd, message="hi", sandbox=ChatTurnSandbox(id="s", runtime_url=url))
    assert seen[-1]["body"]["backend"]["profile"] == odd


async def test_non_2xx_is_a_chat_turn_error_with_status(
    sandbox: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = sandbox
    with pytest.raises(ChatTurnError) as info:
        await collect(
            profile=PROFILE, message="fail", sandbox=ChatTurnSandbox(id="s", runtime_url=url)
        )
    assert info.value.status == 503
    assert str(info.value) == "runChatTurn: sandbox returned 503 Service Unavailable: " + "x" * 500


async def test_an_unreachable_sandbox_raises_from_the_transport() -> None:
    with pytest.raises(Exception) as info:
        await collect(
            profile=PROFILE,
            message="hi",
            sandbox=ChatTurnSandbox(id="s", runtime_url="http://127.0.0.1:9"),
        )
    assert not isinstance(info.value, AssertionError)


async def test_abort_closes_a_stalled_stream(sandbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = sandbox
    controller = AbortController()
    got: list[Any] = []

    async def consume() -> None:
        async for e in run_chat_turn(
            profile=PROFILE,
            message="slow",
            sandbox=ChatTurnSandbox(id="s", runtime_url=url),
            signal=controller.signal,
        ):
            got.append(e)
            controller.abort("user pressed stop")

    with pytest.raises(ChatTurnError, match="aborted"):
        await asyncio.wait_for(consume(), timeout=10)
    assert got == [{"type": "message", "text": "first"}]
    with pytest.raises(ChatTurnError, match="aborted"):  # already aborted: nothing is sent
        await collect(
            profile=PROFILE,
            message="hi",
            sandbox=ChatTurnSandbox(id="s", runtime_url=url),
            signal=controller.signal,
        )


async def test_arguments_are_validated() -> None:
    target = ChatTurnSandbox(id="s", runtime_url="http://127.0.0.1:9")
    with pytest.raises(ValidationError):
        await collect(profile="p", message="hi", sandbox=target)
    with pytest.raises(ValidationError):
        await collect(profile=PROFILE, message="hi", sandbox=target, prior_messages=[{"role": "x"}])
    with pytest.raises(ValidationError):
        ChatTurnSandbox(id="s", runtime_url="ftp://x")
    with pytest.raises(ValidationError):
        ChatTurnSandbox(id="s", runtime_url="http://x", auth_header={"name": "A"})


def test_sandbox_as_chat_turn_target() -> None:
    direct = sandbox_as_chat_turn_target(SimpleNamespace(id="a", url="https://a.example///"))
    assert direct == ChatTurnSandbox(id="a", runtime_url="https://a.example")
    via_connection = sandbox_as_chat_turn_target(
        SimpleNamespace(
            id="b", url=None, connection=SimpleNamespace(runtime_url="https://b.example/")
        ),
        auth_header={"name": "X-Tangle-Token", "value": "t"},
    )
    assert via_connection.runtime_url == "https://b.example"
    assert via_connection.auth_header == {"name": "X-Tangle-Token", "value": "t"}
    camel = sandbox_as_chat_turn_target(
        {"id": "c", "connection": {"runtimeUrl": "https://c.example"}}
    )
    assert camel.runtime_url == "https://c.example"
    with pytest.raises(ChatTurnError) as info:
        sandbox_as_chat_turn_target(SimpleNamespace(id="d", url="", connection=None))
    assert info.value.status is None
    assert "neither .url nor .connection.runtimeUrl" in str(info.value)
