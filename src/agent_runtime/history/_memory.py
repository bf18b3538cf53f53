"""`InMemoryConversationHistory`: conversations in a dict, for tests and single-process demos."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..jsoncanon import loads_json
from ._records import (
    Conversation,
    advancing,
    check_limit,
    check_owner,
    check_owner_args,
    encode_messages,
    encode_metadata,
    encode_patch,
    merge_metadata,
    ms_to_dt,
    now_ms,
)

__all__ = ["InMemoryConversationHistory"]


@dataclass
class _Entry:
    tenant_id: str
    user_id: str | None
    created_at_ms: int
    updated_at_ms: int
    metadata: str
    messages: list[str] = field(default_factory=list)


class InMemoryConversationHistory:
    """A `ConversationHistoryStore` in process memory; values are stored as JSON text so callers
    never share mutable state with the store."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}

    def _owned(self, session_id: str, tenant_id: str, user_id: str | None) -> _Entry | None:
        check_owner_args(session_id, tenant_id, user_id)
        entry = self._sessions.get(session_id)
        if entry is not None:
            check_owner(session_id, entry.tenant_id, entry.user_id, tenant_id, user_id)
        return entry

    def _create(self, session_id: str, tenant_id: str, user_id: str | None, meta: str) -> _Entry:
        now = now_ms()
        entry = _Entry(tenant_id, user_id, now, now, meta)
        self._sessions[session_id] = entry
        return entry

    @staticmethod
    def _record(session_id: str, entry: _Entry, *, with_messages: bool = True) -> Conversation:
        return Conversation(
            session_id=session_id,
            tenant_id=entry.tenant_id,
            user_id=entry.user_id,
            created_at=ms_to_dt(entry.created_at_ms),
            updated_at=ms_to_dt(entry.updated_at_ms),
            metadata=loads_json(entry.metadata),
            messages=tuple(loads_json(m) for m in entry.messages) if with_messages else (),
            message_count=len(entry.messages),
        )

    async def get_or_create(
        self,
        session_id: str,
        *,
        tenant_id: str,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Conversation:
        meta = encode_metadata(metadata)
        entry = self._owned(session_id, tenant_id, user_id)
        if entry is None:
            entry = self._create(session_id, tenant_id, user_id, meta)
        return self._record(session_id, entry)

    async def load(
        self, session_id: str, *, tenant_id: str, user_id: str | None = None
    ) -> Conversation | None:
        entry = self._owned(session_id, tenant_id, user_id)
        return None if entry is None else self._record(session_id, entry)

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        entry = self._append(session_id, messages, tenant_id, user_id)
        return self._record(session_id, entry)

    async def add_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> int:
        return len(self._append(session_id, messages, tenant_id, user_id).messages)

    def _append(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        tenant_id: str,
        user_id: str | None,
    ) -> _Entry:
        encoded = encode_messages(messages)
        entry = self._owned(session_id, tenant_id, user_id)
        if entry is None:
            entry = self._create(session_id, tenant_id, user_id, "{}")
        if encoded:
            entry.messages.extend(encoded)
            entry.updated_at_ms = max(entry.updated_at_ms, now_ms())
        return entry

    async def advance_metadata(
        self,
        session_id: str,
        *,
        at_least: Mapping[str, int],
        defaults: Mapping[str, Any] | None = None,
        tenant_id: str,
        user_id: str | None = None,
    ) -> None:
        self._change_metadata(session_id, tenant_id, user_id, advancing(at_least, defaults))

    async def update_metadata(
        self,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        patch = encode_patch(metadata)
        entry = self._change_metadata(
            session_id, tenant_id, user_id, lambda current: merge_metadata(current, patch)
        )
        return self._record(session_id, entry)

    def _change_metadata(
        self,
        session_id: str,
        tenant_id: str,
        user_id: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> _Entry:
        """The owner-checked session (created when new) with `change(its metadata)` set,
        unless that is None."""
        entry = self._owned(session_id, tenant_id, user_id)
        if entry is None:
            entry = self._create(session_id, tenant_id, user_id, "{}")
        merged = change(loads_json(entry.metadata))
        if merged is not None:
            entry.metadata = encode_metadata(merged)
            entry.updated_at_ms = max(entry.updated_at_ms, now_ms())
        return entry

    async def list_sessions(
        self, *, tenant_id: str, user_id: str | None = None, limit: int = 50
    ) -> list[Conversation]:
        check_owner_args("-", tenant_id, user_id)
        check_limit(limit)
        found = [
            (sid, e)
            for sid, e in self._sessions.items()
            if e.tenant_id == tenant_id and (user_id is None or e.user_id == user_id)
        ]
        found.sort(key=lambda item: (item[1].updated_at_ms, item[0]), reverse=True)
        return [self._record(sid, e, with_messages=False) for sid, e in found[:limit]]

    async def delete(self, session_id: str, *, tenant_id: str, user_id: str | None = None) -> bool:
        if self._owned(session_id, tenant_id, user_id) is None:
            return False
        del self._sessions[session_id]
        return True

    async def close(self) -> None:
        return None
