"""`create_iterable_backend` (ORIGINAL §7.1) and the `echo` backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentExecutionBackend,
    AgentMessage,
    RuntimeSession,
    ValidationError,
    create_echo_backend,
    create_iterable_backend,
)
from agent_runtime.types import TextDeltaEvent

from .drive import TASK, drain


async def _stream(input: AgentBackendInput, ctx: AgentBackendContext) -> AsyncIterator[Any]:
    yield TextDeltaEvent(text=input.prompt)


def _start(input: AgentBackendInput, ctx: AgentBackendContext) -> RuntimeSession:
    return RuntimeSession.new("scripted", ctx.requested_session_id)


async def test_the_options_become_the_backend() -> None:
    def resume(s: RuntimeSession, i: AgentBackendInput, c: AgentBackendContext) -> Any:
        return s

    def stop(s: RuntimeSession, reason: str) -> None:
        return None

    backend = create_iterable_backend(
        kind="scripted", stream=_stream, start=_start, resume=resume, stop=stop
    )
    assert backend.kind == "scripted"
    assert (backend.stream, backend.start, backend.resume, backend.stop) == (
        _stream,
        _start,
        resume,
        stop,
    )
    assert isinstance(backend, AgentExecutionBackend)
    assert [e.text for e in await drain(backend, message="hi")] == ["hi"]


def test_absent_options_are_absent_attributes() -> None:
    backend = create_iterable_backend(kind="scripted", stream=_stream)
    for name in ("start", "resume", "stop"):
        assert not hasattr(backend, name)
        assert getattr(backend, name, None) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "", "stream": _stream},
        {"kind": 3, "stream": _stream},
        {"kind": "k", "stream": None},
        {"kind": "k", "stream": [TextDeltaEvent(text="x")]},
        {"kind": "k", "stream": _stream, "start": "nope"},
        {"kind": "k", "stream": _stream, "stop": 1},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create_iterable_backend(**kwargs)


async def test_echo_streams_the_prompt_in_chunks() -> None:
    backend = create_echo_backend(chunk_chars=4)
    assert backend.kind == "echo"
    events = await drain(backend, message="hello there")
    assert all(isinstance(e, TextDeltaEvent) for e in events)  # no llm_call: nothing billed
    assert [e.text for e in events] == ["echo", ": he", "llo ", "ther", "e"]
    # the prompt: message, else the last message's content, else the task's intent
    msgs = (AgentMessage("user", "first"), AgentMessage("user", "last"))
    assert "".join(e.text for e in await drain(backend, messages=msgs)) == "echo: last"
    assert "".join(e.text for e in await drain(backend)) == f"echo: {TASK.intent}"


@pytest.mark.parametrize("chunk_chars", [0, -1, 1.5, "4", True])
def test_echo_refuses_a_bad_chunk_size(chunk_chars: Any) -> None:
    with pytest.raises(ValidationError):
        create_echo_backend(chunk_chars=chunk_chars)
