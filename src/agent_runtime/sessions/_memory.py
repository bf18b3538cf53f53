"""`InMemoryRuntimeSessionStore` (ORIGINAL §6): sessions and their events in two dicts."""

from __future__ import annotations

from ..types import RuntimeSession, RuntimeStreamEvent
from ._checks import check_event, check_id, check_session

__all__ = ["InMemoryRuntimeSessionStore"]


class InMemoryRuntimeSessionStore:
    """A synchronous `RuntimeSessionEventLog` in process memory, as the original's: `get`
    returns the very object `put` was given; `list_events` returns a new list."""

    __slots__ = ("_events", "_sessions")

    def __init__(self) -> None:
        self._sessions: dict[str, RuntimeSession] = {}
        self._events: dict[str, list[RuntimeStreamEvent]] = {}

    def get(self, session_id: str) -> RuntimeSession | None:
        """The session stored under `session_id`, or None."""
        return self._sessions.get(check_id(session_id, "InMemoryRuntimeSessionStore.get"))

    def put(self, session: RuntimeSession) -> None:
        """Store `session` under `session.id` (the object itself, not a copy)."""
        check_session(session, "InMemoryRuntimeSessionStore.put")
        self._sessions[session.id] = session

    def append_event(self, session_id: str, event: RuntimeStreamEvent) -> None:
        """Append `event` to the session's list (created when needed)."""
        check_id(session_id, "InMemoryRuntimeSessionStore.append_event")
        check_event(event, "InMemoryRuntimeSessionStore.append_event")
        events = self._events.get(session_id)
        if events is None:
            self._events[session_id] = [event]
        else:
            events.append(event)

    def list_events(self, session_id: str) -> list[RuntimeStreamEvent]:
        """A copy of the session's events in append order (empty when unknown)."""
        check_id(session_id, "InMemoryRuntimeSessionStore.list_events")
        return list(self._events.get(session_id, ()))

    def close(self) -> None:
        """Nothing to release (present so every store closes the same way)."""
        return None
