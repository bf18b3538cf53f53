"""Drive a backend directly: `backend.stream(AgentBackendInput(...), AgentBackendContext(...))`."""

from __future__ import annotations

from typing import Any

from agent_runtime import (
    AbortSignal,
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskSpec,
    RuntimeSession,
)

TASK = AgentTaskSpec(id="task-1", intent="say hello")


def context(
    kind: str = "test",
    *,
    task: AgentTaskSpec = TASK,
    signal: AbortSignal | None = None,
    session_id: str | None = "session-1",
) -> AgentBackendContext:
    """A stream context with an active session (as the run loop passes one)."""
    session = RuntimeSession.new(kind, session_id) if session_id is not None else None
    return AgentBackendContext(task=task, session=session, signal=signal)


async def drain(
    backend: Any,
    *,
    task: AgentTaskSpec = TASK,
    message: str | None = None,
    messages: Any = None,
    signal: AbortSignal | None = None,
    ctx: AgentBackendContext | None = None,
) -> list[Any]:
    """Every event `backend.stream` yields for one input."""
    inp = AgentBackendInput(task=task, message=message, messages=messages)
    ctx = ctx or context(backend.kind, task=task, signal=signal)
    return [e async for e in backend.stream(inp, ctx)]
