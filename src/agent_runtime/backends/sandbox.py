"""`create_sandbox_prompt_backend` (ORIGINAL §7.2): a sandboxed agent driven through a
`stream_prompt(box, message, ctx)` function, its raw events mapped to runtime events.

`HttpSandboxClient.stream_prompt` (module `sandbox_http`) is one such function.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Any, TypeVar, get_args

from ..errors import ValidationError
from ..types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeSession,
    RuntimeStreamEvent,
)
from .mapping import map_raw_backend_event

__all__ = ["SandboxPromptBackend", "create_sandbox_prompt_backend"]

_T = TypeVar("_T")
_EVENT_CLASSES: tuple[type, ...] = get_args(RuntimeStreamEvent)
GetBox = Callable[[AgentBackendInput, AgentBackendContext], Any]
StreamPrompt = Callable[[Any, str, AgentBackendContext], Any]
MapEvent = Callable[[Any, AgentBackendContext], RuntimeStreamEvent | None]
GetSessionId = Callable[[Any, AgentBackendInput], Any]


async def _resolve(value: _T | Awaitable[_T]) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value


async def _iterate(source: Any) -> AsyncGenerator[Any, None]:
    """The raw events of `stream_prompt`'s result: an async iterable, an iterable, or an
    awaitable of either; closed when the consumer stops early."""
    source = await _resolve(source)
    if isinstance(source, AsyncIterable):
        iterator = aiter(source)
        try:
            async for raw in iterator:
                yield raw
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
    elif isinstance(source, Iterable) and not isinstance(source, str | bytes):
        for raw in source:
            yield raw
    else:
        raise ValidationError("stream_prompt must return an (async) iterable of raw events")


class SandboxPromptBackend:
    """Sends the prompt to the box `get_box` returns and maps what `stream_prompt` yields:
    `map_event` first, the common mapping when it returns None. Sessions are resumable."""

    __slots__ = ("_get_box", "_get_session_id", "_map_event", "_stream_prompt", "kind")

    def __init__(
        self,
        *,
        kind: str,
        get_box: GetBox,
        stream_prompt: StreamPrompt,
        map_event: MapEvent | None,
        get_session_id: GetSessionId | None,
    ) -> None:
        self.kind = kind
        self._get_box = get_box
        self._stream_prompt = stream_prompt
        self._map_event = map_event
        self._get_session_id = get_session_id

    async def start(self, input: AgentBackendInput, ctx: AgentBackendContext) -> RuntimeSession:
        """A session whose id is `get_session_id(box, input)`, else the requested id, else a
        random UUID, with metadata `{"resumable": true}`."""
        box = await _resolve(self._get_box(input, ctx))
        session_id: Any = None
        if self._get_session_id is not None:
            session_id = await _resolve(self._get_session_id(box, input))
        if not (isinstance(session_id, str) and session_id):
            session_id = ctx.requested_session_id or str(uuid.uuid4())
        return RuntimeSession.new(self.kind, session_id, {"resumable": True})

    def resume(
        self, session: RuntimeSession, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> RuntimeSession:
        """A copy of `session`, active again and touched."""
        return session.touched(status="active")

    async def stream(
        self, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        box = await _resolve(self._get_box(input, ctx))
        raws = _iterate(self._stream_prompt(box, input.prompt, ctx))
        try:
            async for raw in raws:
                event = self._map_event(raw, ctx) if self._map_event is not None else None
                if event is not None and not isinstance(event, _EVENT_CLASSES):
                    raise ValidationError("map_event must return a RuntimeStreamEvent or None")
                if event is None:
                    event = map_raw_backend_event(raw, ctx)
                if event is not None:
                    yield event
        finally:
            await raws.aclose()

    def __repr__(self) -> str:
        return f"SandboxPromptBackend(kind={self.kind!r})"


def create_sandbox_prompt_backend(
    *,
    get_box: GetBox,
    stream_prompt: StreamPrompt,
    kind: str = "sandbox",
    map_event: MapEvent | None = None,
    get_session_id: GetSessionId | None = None,
) -> SandboxPromptBackend:
    """A backend that streams `stream_prompt(box, message, ctx)` for the box
    `get_box(input, ctx)` returns; `message` is `input.message`, else the last message's
    content, else the task's intent. `get_box` and `get_session_id` may be sync or async."""
    if not isinstance(kind, str) or not kind:
        raise ValidationError("create_sandbox_prompt_backend: kind must be a non-empty string")
    for name, fn, required in (
        ("get_box", get_box, True),
        ("stream_prompt", stream_prompt, True),
        ("map_event", map_event, False),
        ("get_session_id", get_session_id, False),
    ):
        if (fn is not None or required) and not callable(fn):
            what = "callable" if required else "callable or None"
            raise ValidationError(f"create_sandbox_prompt_backend: {name} must be {what}")
    return SandboxPromptBackend(
        kind=kind,
        get_box=get_box,
        stream_prompt=stream_prompt,
        map_event=map_event,
        get_session_id=get_session_id,
    )
