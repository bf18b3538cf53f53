"""`SessionHistory`: the chat service's conversations in the history store, per tenant, user
and session.

A session is recorded when one of its turns is admitted (its title, how many turns it has);
each finished turn adds its user message and the assistant's text (a stopped turn's partial
text), with the turn's token usage and cost from its `llm_call` events. A text-only turn
sees the messages of the session's earlier turns as context, and only those: asked again
(a reload, a replay, a retry) it sees the same context, so it is the same turn.

Keys are the principal's scope and the client's session id (`chat:TENANT:USER:SESSION`), so
two callers' session ids never meet; another's session answers exactly like an unknown one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from ..durable import (
    DurableRunStore,
    FileSystemDurableRunStore,
    PostgresDurableRunStore,
    RunRecord,
    SQLiteDurableRunStore,
)
from ..errors import ConversationOwnerError, InvalidArgumentError
from ..history import (
    Conversation,
    ConversationHistoryStore,
    InMemoryConversationHistory,
    PostgresConversationHistory,
    SQLiteConversationHistory,
)
from ..sanitize import sanitize_text
from ..types import AgentMessage
from ._auth import Principal
from ._errors import HTTPRequestError
from ._ids import TurnRef
from ._request import ChatRequest

__all__ = [
    "MAX_TITLE_CHARS",
    "SessionHistory",
    "SessionNotFoundError",
    "check_title",
    "history_for",
]

MAX_TITLE_CHARS = 200
_DEFAULT_TITLE_CHARS = 80
_READ_PAGE = 500
_log = logging.getLogger("agent_runtime.server")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SessionNotFoundError(HTTPRequestError):
    """No session with this id for the caller (404), whoever else may have one."""

    code = "session_not_found"
    status = 404


def check_title(value: Any) -> str:
    """A session title: a string of 1 to `MAX_TITLE_CHARS` characters once trimmed, without
    control characters (`InvalidArgumentError` otherwise)."""
    if not isinstance(value, str):
        raise InvalidArgumentError("must be a string", path="title")
    title = value.strip()
    if not title:
        raise InvalidArgumentError("must not be blank", path="title")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidArgumentError(f"must be at most {MAX_TITLE_CHARS} characters", path="title")
    if _CONTROL.search(title):
        raise InvalidArgumentError("must not contain control characters", path="title")
    return title


def _default_title(prompt: str) -> str:
    line = " ".join(_CONTROL.sub(" ", prompt).split())
    if len(line) > _DEFAULT_TITLE_CHARS:
        line = line[: _DEFAULT_TITLE_CHARS - 1].rstrip() + "…"
    return line or "New chat"


def _iso(conversation: Conversation) -> tuple[str, str]:
    return (
        conversation.created_at.isoformat().replace("+00:00", "Z"),
        conversation.updated_at.isoformat().replace("+00:00", "Z"),
    )


def _turns_of(conversation: Conversation) -> dict[int, dict[str, Any]]:
    """The recorded turns by index (the last record of a turn wins)."""
    turns: dict[int, dict[str, Any]] = {}
    for message in conversation.messages:
        turn = message.get("turn")
        if type(turn) is not int:
            continue
        entry = turns.setdefault(turn, {})
        if message.get("role") == "user":
            entry.clear()
            entry["prompt"] = message.get("content", "")
        elif message.get("role") == "assistant":
            entry["text"] = message.get("content", "")
            entry["status"] = message.get("status", "completed")
            entry["usage"] = message.get("usage")
    return {k: v for k, v in turns.items() if "text" in v}


def _usage(records: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Tokens and cost of a turn's last attempt (None when no model call reported any)."""
    usage: dict[str, Any] = {"tokensIn": None, "tokensOut": None, "costUsd": None, "calls": 0}
    for payload in records:
        if payload.get("type") != "llm_call":
            continue
        usage["calls"] += 1
        for key in ("tokensIn", "tokensOut", "costUsd"):
            value = payload.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                usage[key] = (usage[key] or 0) + value
    return usage if usage["calls"] else None


def _prompt_of(run: RunRecord) -> str:
    """The last user message a turn's run was asked with (from its stored manifest)."""
    manifest = run.manifest if isinstance(run.manifest, dict) else {}
    recorded = manifest.get("input")
    data = recorded.get("input") if isinstance(recorded, dict) else None
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if isinstance(content, str):
            return content
    return ""


def history_for(store: DurableRunStore) -> ConversationHistoryStore:
    """The conversation history on the durable store's own database: its SQLite file, its
    PostgreSQL database, a SQLite file in a folder store; in memory beside a memory store."""
    if isinstance(store, SQLiteDurableRunStore):
        return SQLiteConversationHistory(store.path)
    if isinstance(store, PostgresDurableRunStore):  # on the store's own pool
        return PostgresConversationHistory(str(store.pool.conninfo or ""), pool=store.pool)
    if isinstance(store, FileSystemDurableRunStore):
        return SQLiteConversationHistory(store.root / "history.sqlite")
    return InMemoryConversationHistory()


class SessionHistory:
    """The service's view of a `ConversationHistoryStore`: every call is the principal's."""

    def __init__(self, store: ConversationHistoryStore, project_id: str) -> None:
        self.store = store
        self.project_id = project_id

    def key(self, principal: Principal, session_id: str) -> str:
        return f"{self.project_id}:{principal.tenant_id}:{principal.user_id}:{session_id}"

    def _prefix(self, principal: Principal) -> str:
        return f"{self.project_id}:{principal.tenant_id}:{principal.user_id}:"

    async def _load(self, principal: Principal, session_id: str) -> Conversation | None:
        try:
            return await self.store.load(
                self.key(principal, session_id),
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
            )
        except ConversationOwnerError:
            return None

    async def _owned(self, principal: Principal, session_id: str) -> Conversation:
        found = await self._load(principal, session_id)
        if found is None:
            raise SessionNotFoundError("no session with this id")
        return found

    # -- turns ------------------------------------------------------------------------------

    async def with_context(self, principal: Principal, request: ChatRequest) -> ChatRequest:
        """A text-only request with the session's earlier turns before its message; any other
        request as it is."""
        if not request.from_text or request.turn_index == 0:
            return request
        found = await self._load(principal, request.session_id)
        if found is None:
            return request
        context: list[AgentMessage] = []
        for turn, entry in sorted(_turns_of(found).items()):
            if turn >= request.turn_index:
                break
            context.append(AgentMessage(role="user", content=str(entry.get("prompt", ""))))
            if entry.get("text"):
                context.append(AgentMessage(role="assistant", content=str(entry["text"])))
        return dataclasses.replace(request, messages=(*context, *request.messages))

    async def admitted(self, principal: Principal, request: ChatRequest) -> None:
        """Record that the session has this turn (and a title from its first message)."""
        try:
            await self.store.advance_metadata(
                self.key(principal, request.session_id),
                at_least={"turns": request.turn_index + 1},
                defaults={"title": _default_title(request.prompt)},
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
            )
        except ConversationOwnerError:
            _log.warning("session key %s is owned by another caller", request.session_id)

    async def record(
        self,
        runs: DurableRunStore,
        request: ChatRequest,
        run_id: str,
        text: str,
        lines: list[Mapping[str, Any]] | None = None,
    ) -> None:
        """Record a finished turn: its user message, the assistant's text, and whether it was
        stopped, with its usage from the lines of its last attempt (`lines`, when this process
        produced them; else read from its stream log)."""
        principal = Principal(request.tenant_id, request.user_id)
        records = lines if lines is not None else await _last_attempt(runs, run_id)
        stopped = any(p.get("type") == "final" and p.get("status") == "aborted" for p in records)
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "turn": request.turn_index,
            "status": "stopped" if stopped else "completed",
            "usage": _usage(records),
        }
        user = {"role": "user", "content": request.prompt, "turn": request.turn_index}
        try:
            await self.store.add_messages(
                self.key(principal, request.session_id),
                [user, assistant],
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
            )
        except ConversationOwnerError:
            _log.warning("session key of turn %s is owned by another caller", run_id)

    # -- the sessions API -------------------------------------------------------------------

    async def sessions(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        """The caller's sessions, most recently updated first."""
        found = await self.store.list_sessions(
            tenant_id=principal.tenant_id, user_id=principal.user_id, limit=limit
        )
        prefix = self._prefix(principal)
        return [self._summary(c, prefix) for c in found if c.session_id.startswith(prefix)]

    def _summary(self, conversation: Conversation, prefix: str) -> dict[str, Any]:
        created, updated = _iso(conversation)
        meta = conversation.metadata
        turns = meta.get("turns")
        return {
            "sessionId": conversation.session_id[len(prefix) :],
            "title": meta.get("title") if isinstance(meta.get("title"), str) else "New chat",
            "createdAt": created,
            "updatedAt": updated,
            "turnCount": turns if type(turns) is int else 0,
        }

    async def detail(
        self, principal: Principal, session_id: str, runs: DurableRunStore
    ) -> dict[str, Any]:
        """One session with its turns: recorded ones from the history, the others (running,
        failed, interrupted) as their runs stand."""
        found = await self._owned(principal, session_id)
        out = self._summary(found, self._prefix(principal))
        recorded = _turns_of(found)
        turns: list[dict[str, Any]] = []
        for index in range(max(out["turnCount"], max(recorded, default=-1) + 1)):
            ref = TurnRef(self.project_id, principal, session_id, index)
            entry = recorded.get(index)
            if entry is not None:
                turns.append(
                    {
                        "turnIndex": index,
                        "executionId": ref.execution_id,
                        "status": entry["status"],
                        "prompt": entry.get("prompt", ""),
                        "text": entry["text"],
                        "usage": entry.get("usage"),
                    }
                )
                continue
            run = await runs.load_run(ref.run_id)
            if run is not None:
                turns.append(await _unrecorded(runs, ref, run))
        out["turns"] = turns
        return out

    async def rename(self, principal: Principal, session_id: str, title: str) -> dict[str, Any]:
        await self._owned(principal, session_id)
        updated = await self.store.update_metadata(
            self.key(principal, session_id),
            {"title": title},
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
        )
        return self._summary(updated, self._prefix(principal))

    async def delete(self, principal: Principal, session_id: str) -> None:
        await self._owned(principal, session_id)
        deleted = await self.store.delete(
            self.key(principal, session_id),
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
        )
        if not deleted:
            raise SessionNotFoundError("no session with this id")


async def _last_attempt(runs: DurableRunStore, run_id: str) -> list[Mapping[str, Any]]:
    """The payloads of a turn's stream log since its last restart marker."""
    out: list[Mapping[str, Any]] = []
    after = -1
    while True:
        page = await runs.read_stream_events(run_id, after_seq=after, limit=_READ_PAGE)
        for record in page:
            after = record.seq
            payload = record.payload
            if not isinstance(payload, Mapping):
                continue
            if payload.get("type") == "session.run.restarted":
                out.clear()
            out.append(payload)
        if len(page) < _READ_PAGE:
            return out


async def _unrecorded(runs: DurableRunStore, ref: TurnRef, run: RunRecord) -> dict[str, Any]:
    """A turn the history has no answer for, as its run stands."""
    outcome = run.outcome if isinstance(run.outcome, dict) else {}
    entry: dict[str, Any] = {
        "turnIndex": ref.turn_index,
        "executionId": ref.execution_id,
        "status": run.status,
        "prompt": _prompt_of(run),
        "text": "",
        "usage": None,
    }
    if run.status == "completed":
        finish = outcome.get("finish")
        text = finish.get("text") if isinstance(finish, dict) else outcome.get("text")
        entry["text"] = text if isinstance(text, str) else ""
        entry["usage"] = _usage(await _last_attempt(runs, ref.run_id))
    elif run.status == "failed":
        error = outcome.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        entry["error"] = sanitize_text(str(message or "the turn failed"))
    return entry
