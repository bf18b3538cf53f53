"""Event collectors (ORIGINAL §9): sinks that keep the sanitized copy of every event, and for the
stream vocabulary a summary (counts by type, the text, the first session, the final status).

The two vocabularies share `type` strings (`task_start`, `readiness_end`, ...), so each has its
own collector: `on_event` of one plugs into `run_agent_task(on_event=...)`, the other is fed the
events of `run_agent_task_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._wire import WireRecord
from .sanitize import (
    RuntimeTelemetryOptions,
    sanitize_agent_runtime_event,
    sanitize_runtime_stream_event,
)
from .types import (
    AgentRuntimeEvent,
    FinalEvent,
    RuntimeStreamEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    TextDeltaEvent,
    parse_runtime_stream_event,
)

__all__ = [
    "RuntimeEventCollector",
    "RuntimeStreamEventCollector",
    "RuntimeStreamEventSummary",
    "create_runtime_event_collector",
    "create_runtime_stream_event_collector",
]


class RuntimeEventCollector:
    """`events` holds the sanitized wire dict of every `run_agent_task` event given to
    `on_event` (a plain callable, usable as the loop's `on_event`)."""

    __slots__ = ("events", "options")

    def __init__(self, options: RuntimeTelemetryOptions | None = None) -> None:
        self.options = RuntimeTelemetryOptions.of(options)
        self.events: list[dict[str, Any]] = []

    def on_event(self, event: AgentRuntimeEvent | Mapping[str, Any]) -> None:
        """Sanitize `event` and keep it."""
        self.events.append(sanitize_agent_runtime_event(event, self.options))


@dataclass(frozen=True, slots=True)
class RuntimeStreamEventSummary(WireRecord):
    """What a stream came to: how many events of each type, the first session id, the last
    `final`'s status and reason, and the concatenated text of the deltas."""

    event_count: int
    event_counts_by_type: Mapping[str, int] = field(default_factory=dict)
    first_session_id: str | None = None
    final_status: str | None = None
    final_reason: str | None = None
    final_text: str = ""


class RuntimeStreamEventCollector:
    """`events` holds the sanitized wire dict of every stream event given to `on_event`;
    `summary()` folds them. The text comes from the raw deltas, so it is complete even when
    the sanitized copies redact nothing or everything."""

    __slots__ = (
        "_counts",
        "_final_reason",
        "_final_status",
        "_first_session_id",
        "_text",
        "events",
        "options",
    )

    def __init__(self, options: RuntimeTelemetryOptions | None = None) -> None:
        self.options = RuntimeTelemetryOptions.of(options)
        self.events: list[dict[str, Any]] = []
        self._counts: dict[str, int] = {}
        self._text: list[str] = []
        self._first_session_id: str | None = None
        self._final_status: str | None = None
        self._final_reason: str | None = None

    def on_event(self, event: RuntimeStreamEvent | Mapping[str, Any] | str | bytes) -> None:
        """Sanitize `event` and keep it; count it, and fold its text, session or outcome."""
        clean = sanitize_runtime_stream_event(event, self.options)
        raw = (
            parse_runtime_stream_event(event) if isinstance(event, Mapping | str | bytes) else event
        )
        self.events.append(clean)
        kind = raw.TYPE
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if isinstance(raw, TextDeltaEvent):
            self._text.append(raw.text)
        elif isinstance(raw, SessionCreatedEvent | SessionResumedEvent):
            if self._first_session_id is None:
                self._first_session_id = raw.session.id
        elif isinstance(raw, FinalEvent):
            self._final_status = raw.status
            self._final_reason = raw.reason

    def summary(self) -> RuntimeStreamEventSummary:
        """A snapshot (`to_dict()` gives the original's `{eventCount, eventCountsByType, ...}`)."""
        return RuntimeStreamEventSummary(
            event_count=len(self.events),
            event_counts_by_type=dict(self._counts),
            first_session_id=self._first_session_id,
            final_status=self._final_status,
            final_reason=self._final_reason,
            final_text="".join(self._text),
        )


def create_runtime_event_collector(
    options: RuntimeTelemetryOptions | None = None,
) -> RuntimeEventCollector:
    """A collector of sanitized `run_agent_task` events (`events`, `on_event`)."""
    return RuntimeEventCollector(options)


def create_runtime_stream_event_collector(
    options: RuntimeTelemetryOptions | None = None,
) -> RuntimeStreamEventCollector:
    """A collector of sanitized stream events (`events`, `on_event`, `summary()`)."""
    return RuntimeStreamEventCollector(options)
