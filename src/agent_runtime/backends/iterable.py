"""Scripted backends: replay a fixed list of events, or events made per call by a factory.

Used by tests and demos, and as the `echo` backend when no model endpoint is configured.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import TypeAlias

from ..errors import ConfigurationError
from ..types import (
    AgentBackendContext,
    AgentBackendInput,
    DoneEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
)

__all__ = ["EventSource", "IterableBackend", "create_echo_backend", "create_iterable_backend"]

_Events: TypeAlias = Iterable[RuntimeStreamEvent] | AsyncIterable[RuntimeStreamEvent]
EventSource: TypeAlias = _Events | Callable[[AgentBackendInput, AgentBackendContext], _Events]


class IterableBackend:
    """Yields the scripted events; a list replays on every call, a factory is called per run."""

    __slots__ = ("_kind", "_source")

    def __init__(self, source: EventSource, kind: str = "iterable") -> None:
        self._source = source
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        src = self._source
        events: _Events = src(input, context) if callable(src) else src
        if inspect.isawaitable(events):
            raise ConfigurationError(
                "an iterable-backend factory must not be async; return an async iterable instead"
            )
        if isinstance(events, AsyncIterable):
            async for event in events:
                yield event
        else:
            for event in events:
                yield event


def create_iterable_backend(
    events_or_factory: EventSource, *, kind: str = "iterable"
) -> IterableBackend:
    """A backend that yields `events_or_factory` (a list, an (async) iterable, or a callable
    `(input, context) -> (async) iterable` invoked per run)."""
    if not (callable(events_or_factory) or isinstance(events_or_factory, Iterable | AsyncIterable)):
        raise ConfigurationError(
            "create_iterable_backend needs an iterable of events or a factory callable"
        )
    if isinstance(events_or_factory, str | bytes):
        raise ConfigurationError("create_iterable_backend needs events, not a string")
    if not isinstance(kind, str) or not kind:
        raise ConfigurationError("backend kind must be a non-empty string")
    return IterableBackend(events_or_factory, kind=kind)


def create_echo_backend(*, chunk_chars: int = 16) -> IterableBackend:
    """Echoes the prompt back as text deltas (`echo: <prompt>`); no model, no tokens billed."""
    if type(chunk_chars) is not int or chunk_chars < 1:
        raise ConfigurationError("chunk_chars must be a positive int")

    def factory(input: AgentBackendInput, _ctx: AgentBackendContext) -> list[RuntimeStreamEvent]:
        text = f"echo: {input.prompt}"
        out: list[RuntimeStreamEvent] = [
            TextDeltaEvent(text=text[i : i + chunk_chars]) for i in range(0, len(text), chunk_chars)
        ]
        out.append(DoneEvent(finish_reason="stop"))
        return out

    return IterableBackend(factory, kind="echo")
