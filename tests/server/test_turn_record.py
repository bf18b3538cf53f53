"""A finished turn's assistant message: the same usage and status whether they come from the
lines this process produced or are read back from the turn's stream log (its last attempt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_runtime.durable import SQLiteDurableRunStore
from agent_runtime.history import SQLiteConversationHistory
from agent_runtime.server._auth import Principal
from agent_runtime.server._conversations import SessionHistory
from agent_runtime.server._request import ChatRequest
from agent_runtime.types import AgentMessage

FIRST = [{"type": "llm_call", "model": "m", "tokensIn": 9, "tokensOut": 9}]
LAST = [
    {"type": "text_delta", "text": "hi"},
    {"type": "llm_call", "model": "m", "tokensIn": 3, "tokensOut": 1, "costUsd": 0.5},
    {"type": "llm_call", "model": "m", "tokensIn": 2, "tokensOut": 4},
    {"type": "final", "status": "aborted", "reason": "stopped"},
]


async def test_lines_given_and_lines_read_from_the_log_record_the_same(tmp_path: Path) -> None:
    runs = SQLiteDurableRunStore(tmp_path / "runs.db")
    history = SQLiteConversationHistory(tmp_path / "history.db")
    sessions = SessionHistory(history, "chat")
    log: list[tuple[str, Any]] = [(f"turn:{i}", e) for i, e in enumerate(FIRST)]
    log.append(("turn:restart:2", {"type": "session.run.restarted", "data": {"attempt": 2}}))
    log += [(f"turn:{i}:2", e) for i, e in enumerate(LAST)]
    await runs.append_stream_events("chat:local:local:s:0", log)
    recorded = []
    for session, lines in (("read", None), ("given", LAST)):
        request = ChatRequest(session, 0, (AgentMessage(role="user", content="q"),))
        await sessions.record(runs, request, "chat:local:local:s:0", "hi", lines)
        found = await history.load(
            sessions.key(Principal("local", "local"), session), tenant_id="local", user_id="local"
        )
        assert found is not None
        recorded.append(found.messages[-1])
    assert recorded[0] == recorded[1]
    assert recorded[0]["status"] == "stopped"
    assert recorded[0]["usage"] == {"tokensIn": 5, "tokensOut": 5, "costUsd": 0.5, "calls": 2}
    await runs.close()
    await history.close()
