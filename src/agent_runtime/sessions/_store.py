"""The `RuntimeSessionStore` protocol (ORIGINAL §2.5): where a stream keeps its sessions."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..types import RuntimeSession, RuntimeStreamEvent

__all__ = ["RuntimeSessionEventLog", "RuntimeSessionStore"]


@runtime_checkable
class RuntimeSessionStore(Protocol):
    """Sessions by id: `get(id)` returns the session or None, `put(session)` stores it by
    `session.id`. Optional (see `RuntimeSessionEventLog`): `append_event(session_id, event)`
    and `list_events(session_id)`. Every method may be sync or async (return an awaitable).
    """

    def get(self, session_id: str) -> Any:
        """The `RuntimeSession` stored under `session_id`, or None (or an awaitable of it)."""
        ...

    def put(self, session: RuntimeSession) -> Any:
        """Store `session` under its id, replacing the previous one (may be awaitable)."""
        ...


@runtime_checkable
class RuntimeSessionEventLog(RuntimeSessionStore, Protocol):
    """A session store that also keeps each session's events, in append order."""

    def append_event(self, session_id: str, event: RuntimeStreamEvent) -> Any:
        """Append `event` to the session's log (may be awaitable)."""
        ...

    def list_events(self, session_id: str) -> Any:
        """The session's events in append order, a new list (empty when unknown)."""
        ...
