"""The `ConversationHistoryStore` protocol: the server's chat messages per tenant, user and
session id (memory, SQLite and PostgreSQL implement it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ._records import Conversation

__all__ = ["ConversationHistoryStore"]


@runtime_checkable
class ConversationHistoryStore(Protocol):
    """Persistence for chat conversations, scoped by tenant and user.

    Every method takes the caller's `tenant_id` and `user_id` (None for an anonymous user)
    and raises `ConversationOwnerError` when the conversation exists under another owner, so a
    guessed or reused session id never reads or writes someone else's conversation.
    """

    async def get_or_create(
        self,
        session_id: str,
        *,
        tenant_id: str,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Conversation:
        """The session with its messages, created (with `metadata`) when new."""
        ...

    async def load(
        self, session_id: str, *, tenant_id: str, user_id: str | None = None
    ) -> Conversation | None:
        """The session with its messages, or None when it does not exist."""
        ...

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        """Append JSON-object messages in one transaction (creating the session if new)."""
        ...

    async def add_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> int:
        """`append_messages` without reading the conversation back: returns its message
        count (what a writer needs on a long conversation)."""
        ...

    async def advance_metadata(
        self,
        session_id: str,
        *,
        at_least: Mapping[str, int],
        defaults: Mapping[str, Any] | None = None,
        tenant_id: str,
        user_id: str | None = None,
    ) -> None:
        """In one atomic write, without reading messages: raise each `at_least` key of the
        session's metadata to its int floor (never lower it) and set each `defaults` key
        that is absent, creating the session when new. Concurrent callers never undo each
        other's raise, as a read-then-`update_metadata` could."""
        ...

    async def update_metadata(
        self,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        """Shallow-merge `metadata` into the session's (creating it if new); a key set to None
        is removed."""
        ...

    async def list_sessions(
        self, *, tenant_id: str, user_id: str | None = None, limit: int = 50
    ) -> list[Conversation]:
        """The tenant's sessions (only `user_id`'s when given), most recently updated first,
        without their messages."""
        ...

    async def delete(self, session_id: str, *, tenant_id: str, user_id: str | None = None) -> bool:
        """Delete the session and its messages; False when it did not exist."""
        ...

    async def close(self) -> None: ...
