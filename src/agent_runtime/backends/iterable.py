"""`create_iterable_backend` (ORIGINAL §7.1): the options become the backend, with no
behaviour of their own; and the `echo` backend the service uses when no model is configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import ValidationError
from ..types import AgentBackendContext, AgentBackendInput, RuntimeStreamEvent, TextDeltaEvent

__all__ = ["IterableBackend", "create_echo_backend", "create_iterable_backend"]

StreamFn = Callable[[AgentBackendInput, AgentBackendContext], AsyncIterator[RuntimeStreamEvent]]


class IterableBackend:
    """A backend made of the given callables: `kind`, `stream`, and `start`, `resume`, `stop`
    only when they were given (an absent one is no attribute at all, as in the original)."""

    __slots__ = ("kind", "resume", "start", "stop", "stream")

    kind: str
    stream: StreamFn
    start: Callable[..., Any]
    resume: Callable[..., Any]
    stop: Callable[..., Any]

    def __init__(
        self,
        *,
        kind: str,
        stream: StreamFn,
        start: Callable[..., Any] | None = None,
        resume: Callable[..., Any] | None = None,
        stop: Callable[..., Any] | None = None,
    ) -> None:
        self.kind = kind
        self.stream = stream
        if start is not None:
            self.start = start
        if resume is not None:
            self.resume = resume
        if stop is not None:
            self.stop = stop

    def __repr__(self) -> str:
        return f"IterableBackend(kind={self.kind!r})"


def create_iterable_backend(
    *,
    kind: str,
    stream: StreamFn,
    start: Callable[..., Any] | None = None,
    resume: Callable[..., Any] | None = None,
    stop: Callable[..., Any] | None = None,
) -> IterableBackend:
    """A backend of `kind` whose `stream(input, ctx)` is `stream` (an async iterable of
    events) and whose optional `start(input, ctx)`, `resume(session, input, ctx)` and
    `stop(session, reason)` are the callables given (sync or async)."""
    if not isinstance(kind, str) or not kind:
        raise ValidationError("create_iterable_backend: kind must be a non-empty string")
    if not callable(stream):
        raise ValidationError("create_iterable_backend: stream must be callable")
    for name, fn in (("start", start), ("resume", resume), ("stop", stop)):
        if fn is not None and not callable(fn):
            raise ValidationError(f"create_iterable_backend: {name} must be callable or None")
    return IterableBackend(kind=kind, stream=stream, start=start, resume=resume, stop=stop)


def create_echo_backend(*, chunk_chars: int = 16) -> IterableBackend:
    """Kind `echo`: streams `echo: <prompt>` back as text deltas of `chunk_chars`
    characters; no model is called, so no `llm_call` is reported."""
    if type(chunk_chars) is not int or chunk_chars < 1:
        raise ValidationError("create_echo_backend: chunk_chars must be a positive int")

    async def stream(
        input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        text = f"echo: {input.prompt}"
        for i in range(0, len(text), chunk_chars):
            yield TextDeltaEvent(text=text[i : i + chunk_chars])

    return create_iterable_backend(kind="echo", stream=stream)
