"""Turn logs as the service records them (each backend event's wire form without `task` and
`session`), for the encoder tests, and a `TurnLog` over such a list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from agent_runtime import AgentTaskSpec, run_agent_task_stream
from agent_runtime.backends import create_echo_backend
from agent_runtime.durable import StreamEventRecord
from agent_runtime.eval import KnowledgeRequirement, score_knowledge_readiness
from agent_runtime.types import (
    BackendErrorEvent,
    FinalEvent,
    LlmCallEvent,
    ReasoningDeltaEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    _Event,
)

TASK = AgentTaskSpec(id="t", intent="answer", domain="chat")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def wire(event: _Event) -> dict[str, Any]:
    data = event.to_dict()
    data.pop("task", None)
    data.pop("session", None)
    return data


def records(
    payloads: Sequence[dict[str, Any]], run_id: str = "chat:s:0"
) -> list[StreamEventRecord]:
    return [
        StreamEventRecord(run_id=run_id, seq=i, event_id=f"turn:{i}", payload=p, created_at=NOW)
        for i, p in enumerate(payloads)
    ]


def text(*parts: str) -> list[dict[str, Any]]:
    return [wire(TextDeltaEvent(text=p, timestamp="2026-01-01T00:00:00.000Z")) for p in parts]


COMPLETED = {"type": "session.run.completed", "execution_id": "chat:s:0", "text": None}
FAILED = {
    "type": "session.run.failed",
    "execution_id": "chat:s:0",
    "error": {"code": "backend_error", "message": "upstream said no"},
}

LOGS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "text": (
        [
            *text("Hello", ", wor", "ld", "! How ", "are you?"),
            wire(LlmCallEvent(model="echo", tokens_in=3, tokens_out=5, finish_reason="stop")),
        ],
        COMPLETED,
    ),
    "tools": (
        [
            *text("Let me look", " that up."),
            wire(ToolCallEvent(tool_name="search", tool_call_id="call_1", args={"q": "tides"})),
            wire(ToolResultEvent(tool_name="search", tool_call_id="call_1", result={"hits": 2})),
            *text("Found ", "two."),
        ],
        COMPLETED,
    ),
    "reasoning": (
        [
            wire(ReasoningDeltaEvent(text="thinking")),
            wire(ReasoningDeltaEvent(text=" hard")),
            *text("Answer", " here"),
        ],
        COMPLETED,
    ),
    "failed": (
        [
            *text("Part", "ial"),
            wire(
                BackendErrorEvent(
                    task=TASK, backend="echo", message="upstream said no", recoverable=False
                )
            ),
        ],
        FAILED,
    ),
    "stopped": (
        [
            *text("Stop ", "here"),
            wire(
                FinalEvent(
                    task=TASK, status="aborted", reason="stopped by the user", text="Stop here"
                )
            ),
        ],
        {**COMPLETED, "text": "Stop here"},
    ),
}


class _Provider:
    def build_readiness(self, task: AgentTaskSpec) -> Any:
        return score_knowledge_readiness(
            task.id,
            [
                KnowledgeRequirement(
                    id="city", description="the city you are in", importance="blocking"
                )
            ],
        )


async def _blocked() -> list[dict[str, Any]]:
    out = []
    async for event in run_agent_task_stream(TASK, create_echo_backend(), knowledge=_Provider()):
        out.append(wire(event))
    return out


LOGS["blocked"] = (asyncio.run(_blocked()), COMPLETED)


def stored_text(name: str) -> str:
    """The assistant text a log's text deltas make."""
    return "".join(p["text"] for p in LOGS[name][0] if p.get("type") == "text_delta")


class StaticLog:
    """A finished turn's log as a `TurnLog` (also its own store for the prefix reads)."""

    def __init__(self, payloads: Sequence[dict[str, Any]], closing: dict[str, Any]) -> None:
        self.records = records(payloads)
        self._closing = closing

    @property
    def store(self) -> Any:
        return self

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        start = 0 if after_seq is None else after_seq + 1
        end = None if limit is None else start + limit
        return self.records[start:end]

    async def tail(self, run_id: str, after: int | None) -> AsyncIterator[StreamEventRecord]:
        for record in await self.read_stream_events(run_id, after):
            yield record

    async def closing(self, run_id: str) -> dict[str, Any]:
        return self._closing
