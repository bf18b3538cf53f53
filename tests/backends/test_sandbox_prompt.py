"""`create_sandbox_prompt_backend` (ORIGINAL §7.2) with in-process box and `stream_prompt`
functions; the HTTP orchestrator client is tested in tests/tasks/test_sandbox.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    RuntimeSession,
    ValidationError,
    create_sandbox_prompt_backend,
)
from agent_runtime.types import ReasoningDeltaEvent, TextDeltaEvent

from .drive import TASK, context, drain

RAW = [
    {"type": "message.part.updated", "data": {"delta": "Hel"}},
    {"type": "status", "status": "busy"},
    {"type": "text_delta", "text": "lo"},
    {"type": "result", "data": {"finalText": "!"}},
]


class Box:
    def __init__(self, name: str = "box-1") -> None:
        self.name = name
        self.prompts: list[tuple[str, AgentBackendContext]] = []


def make(box: Box, raws: list[Any] = RAW, **kw: Any) -> Any:
    async def stream_prompt(b: Box, message: str, ctx: AgentBackendContext) -> AsyncIterator[Any]:
        b.prompts.append((message, ctx))
        for raw in raws:
            yield raw

    return create_sandbox_prompt_backend(
        get_box=lambda i, c: box, stream_prompt=stream_prompt, **kw
    )


async def test_stream_maps_raw_events_and_drops_unknown_ones() -> None:
    box = Box()
    backend = make(box)
    assert backend.kind == "sandbox"
    events = await drain(backend, message="hi")
    assert [(type(e), e.text) for e in events] == [
        (TextDeltaEvent, "Hel"),
        (TextDeltaEvent, "lo"),
        (TextDeltaEvent, "!"),
    ]
    assert box.prompts[0][0] == "hi"


async def test_message_is_input_message_else_last_message_else_intent() -> None:
    box = Box()
    backend = make(box)
    await drain(backend, message="explicit", messages=(AgentMessage("user", "m"),))
    await drain(backend, messages=(AgentMessage("user", "one"), AgentMessage("user", "two")))
    await drain(backend)
    assert [p for p, _ in box.prompts] == ["explicit", "two", TASK.intent]


async def test_map_event_first_then_the_common_mapping_as_fallback() -> None:
    seen: list[Any] = []

    def map_event(raw: Any, ctx: AgentBackendContext) -> Any:
        seen.append(raw)
        if raw.get("type") == "status":
            return ReasoningDeltaEvent(text=f"status: {raw['status']}")
        if raw.get("type") == "text_delta":
            return TextDeltaEvent(text="LO")
        return None  # does not suppress what the common mapping understands

    events = await drain(make(Box(), map_event=map_event))
    assert [(e.type, e.text) for e in events] == [
        ("text_delta", "Hel"),
        ("reasoning_delta", "status: busy"),
        ("text_delta", "LO"),
        ("text_delta", "!"),
    ]
    assert seen == RAW


async def test_map_event_returning_a_non_event_is_refused() -> None:
    backend = make(Box(), map_event=lambda raw, ctx: {"type": "text_delta"})
    with pytest.raises(ValidationError):
        await drain(backend)


async def test_start_session_id_from_get_session_id_else_requested_else_uuid() -> None:
    box = Box("box-7")
    inp = AgentBackendInput(task=TASK)
    got: list[tuple[Any, Any]] = []

    async def get_session_id(b: Box, i: AgentBackendInput) -> str | None:
        got.append((b, i))
        return f"{b.name}-session" if b.name == "box-7" else None

    backend = make(box, get_session_id=get_session_id, kind="sbx")
    ctx = AgentBackendContext(task=TASK, requested_session_id="wanted")
    session = await backend.start(inp, ctx)
    assert (session.id, session.backend, session.status) == ("box-7-session", "sbx", "active")
    assert session.metadata == {"resumable": True}
    assert got == [(box, inp)]

    box.name = "other"  # get_session_id gives nothing: the requested id
    assert (await backend.start(inp, ctx)).id == "wanted"
    plain = make(Box())
    assert (await plain.start(inp, ctx)).id == "wanted"
    fresh = await plain.start(inp, AgentBackendContext(task=TASK))
    assert uuid.UUID(fresh.id)  # no requested id: a random UUID


async def test_resume_is_an_active_touched_copy_and_there_is_no_stop() -> None:
    backend = make(Box())
    old = RuntimeSession(
        id="s",
        backend="sandbox",
        status="failed",
        created_at="2020-01-01T00:00:00.000Z",
        updated_at="2020-01-01T00:00:00.000Z",
        metadata={"resumable": True},
    )
    resumed = backend.resume(old, AgentBackendInput(task=TASK), context())
    assert (resumed.id, resumed.status, resumed.metadata) == ("s", "active", {"resumable": True})
    assert resumed.created_at == old.created_at and resumed.updated_at > old.updated_at
    assert not hasattr(backend, "stop")


async def test_get_box_is_called_for_start_and_for_stream_and_may_be_async() -> None:
    calls: list[str] = []
    box = Box()

    async def get_box(i: AgentBackendInput, c: AgentBackendContext) -> Box:
        calls.append("box")
        return box

    def stream_prompt(b: Box, message: str, ctx: AgentBackendContext) -> list[Any]:
        return [{"type": "delta", "text": message}]  # a plain iterable is accepted too

    backend = create_sandbox_prompt_backend(get_box=get_box, stream_prompt=stream_prompt)
    await backend.start(AgentBackendInput(task=TASK), AgentBackendContext(task=TASK))
    assert [e.text for e in await drain(backend, message="x")] == ["x"]
    assert calls == ["box", "box"]


async def test_closing_the_stream_early_closes_stream_prompt() -> None:
    closed: list[bool] = []

    async def stream_prompt(b: Any, message: str, ctx: AgentBackendContext) -> AsyncIterator[Any]:
        try:
            for i in range(100):
                yield {"type": "delta", "text": str(i)}
        finally:
            closed.append(True)

    backend = create_sandbox_prompt_backend(get_box=lambda i, c: None, stream_prompt=stream_prompt)
    stream = backend.stream(AgentBackendInput(task=TASK), context())
    assert (await anext(stream)).text == "0"
    await stream.aclose()
    assert closed == [True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"get_box": None, "stream_prompt": lambda b, m, c: []},
        {"get_box": lambda i, c: 1, "stream_prompt": "x"},
        {"get_box": lambda i, c: 1, "stream_prompt": lambda b, m, c: [], "kind": ""},
        {"get_box": lambda i, c: 1, "stream_prompt": lambda b, m, c: [], "map_event": 1},
        {"get_box": lambda i, c: 1, "stream_prompt": lambda b, m, c: [], "get_session_id": 1},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create_sandbox_prompt_backend(**kwargs)
