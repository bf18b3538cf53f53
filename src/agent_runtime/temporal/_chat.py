"""Chat turns and agent tasks as durable tasks on Temporal, streaming into our stream log.

The backend call is one step (an activity). It drives the same durable turn our stores run
(`TurnRunner` / `run_durable_turn`) on the worker's store: every event is appended to the
run's stream log under an id fixed by its position (`turn:<n>`), so an activity retried on
another worker re-emits nothing already logged: it waits for the dead worker's store lease
to lapse, then resumes exactly as a store-driven turn resumes. Browsers read the log through
the server's events endpoint, from any cursor, while Temporal drives the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from ..backends import AgentExecutionBackend
from ..chat import run_durable_turn
from ..durable import DurableContext, DurableRunManifest, DurableRunStore
from ..errors import DurableRunError, DurableTurnFailedError, InvalidArgumentError
from ..runtime import run_agent_task_stream
from ..types import AgentTaskSpec, TextDeltaEvent
from ._activities import WorkerResources, current_worker

__all__ = [
    "AGENT_TASK_INTENT",
    "BUILTIN_STEPS",
    "BUILTIN_TASKS",
    "CHAT_TURN_INTENT",
    "agent_task",
    "chat_turn",
    "chat_turn_request",
    "drive_agent_task",
    "drive_chat_turn",
    "turn_resources",
]

CHAT_TURN_INTENT = "chat.turn.produce"
AGENT_TASK_INTENT = "agent.task.stream"


def chat_turn_request(chat: Any, run_id: str) -> dict[str, Any]:
    """The `chat_turn` argument for a `ChatRequest` (`agent_runtime.server`) served as the
    turn `run_id`: the request's input and identity, as the worker rebuilds them."""
    return {
        "runId": run_id,
        "input": chat.to_input(),
        "tenantId": chat.tenant_id,
        "userId": chat.user_id,
    }


def turn_resources(
    store: DurableRunStore,
    backend: AgentExecutionBackend | None,
    *,
    project_id: str,
    lease_ms: int,
) -> WorkerResources:
    """The resources of a worker that runs chat turns: a `TurnRunner` over `store` and
    `backend` (default: `OPENAI_BASE_URL`'s endpoint, else echo)."""
    from ..server import TurnRunner, backend_from_env  # the server extra

    config = backend_from_env() if backend is None else None
    chosen = backend if backend is not None else config.backend  # type: ignore[union-attr]
    turns = TurnRunner(
        store,
        chosen,
        project_id=project_id,
        lease_ms=lease_ms,
        backend_for_model=None if config is None else config.backend_for,
    )
    return WorkerResources(
        store=store, backend=chosen, turns=turns, project_id=project_id, lease_ms=lease_ms
    )


def _resources() -> WorkerResources:
    res = current_worker()
    if res.store is None or res.turns is None:
        raise DurableRunError(
            "this worker has no store: create_worker(store=...) runs chat turns",
            code="no_store",
        )
    return res


async def drive_chat_turn(request: dict[str, Any]) -> dict[str, Any]:
    """Drive the chat turn `request["runId"]` to its end on this worker's store; returns
    `{"text", "events"}`. A turn another (possibly dead) worker holds is followed until its
    lease lapses, then resumed; a completed one is answered from the store."""
    from ..server import parse_chat_request

    res = _resources()
    turns = res.turns
    assert turns is not None and res.store is not None
    chat = parse_chat_request(orjson.dumps(request["input"]))
    chat = dataclasses.replace(chat, tenant_id=request["tenantId"], user_id=request["userId"])
    run_id = request["runId"]
    if turns.execution_id(chat) != run_id:
        raise InvalidArgumentError(
            f"turn {run_id!r} is not this worker's execution id for the request "
            f"(project {turns.project_id!r})",
            path="runId",
        )
    _, result = await turns.run_turn(chat)
    async for _line in result.body:  # the durable turn logs every event as it goes
        pass
    run = await res.store.load_run(run_id)
    outcome = run.outcome if run is not None and isinstance(run.outcome, Mapping) else {}
    if run is None or run.status != "completed":
        error = outcome.get("error")
        raise DurableTurnFailedError(
            f"turn {run_id!r} failed",
            run_id=run_id,
            error=error if isinstance(error, dict) else None,
        )
    return {"text": outcome.get("text"), "events": outcome.get("events")}


async def chat_turn(ctx: DurableContext, request: dict[str, Any]) -> Any:
    """A chat turn as a durable task: one `llm` step that streams into the store's log."""
    return await ctx.step(CHAT_TURN_INTENT, drive_chat_turn, args=(request,), kind="llm")


class _TaskProducer:
    """A chat-turn producer over an agent task's event stream: each event's wire form,
    the text deltas as the final text."""

    def __init__(self, spec: AgentTaskSpec, backend: Any, input: Mapping[str, Any] | None) -> None:
        self._spec = spec
        self._backend = backend
        self._input = input
        self._parts: list[str] = []

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        async for event in run_agent_task_stream(self._spec, self._backend, input=self._input):
            if isinstance(event, TextDeltaEvent):
                self._parts.append(event.text)
            yield event.to_dict()

    def final_text(self) -> str:
        return "".join(self._parts)


async def drive_agent_task(request: dict[str, Any]) -> dict[str, Any]:
    """Run the agent task `request["task"]` (an `AgentTaskSpec` wire form) on this worker's
    backend as the durable turn `request["runId"]`, logging every `RuntimeStreamEvent`."""
    res = _resources()
    assert res.store is not None
    run_id = request["runId"]
    spec = AgentTaskSpec.from_dict(request["task"])
    task_input = request.get("input")
    manifest = DurableRunManifest(
        res.project_id,
        {"id": spec.id, "intent": spec.intent, "domain": spec.domain},
        {"task": request["task"], "input": task_input},
    )
    turn = run_durable_turn(
        res.store,
        run_id,
        manifest,
        lambda: _TaskProducer(spec, res.backend, task_input),
        lease_ms=res.lease_ms,
    )
    async for _event in turn:
        pass
    return {"text": turn.text, "events": turn.events}


async def agent_task(ctx: DurableContext, request: dict[str, Any]) -> Any:
    """An agent task as a durable task: one `llm` step streaming its events into the log."""
    return await ctx.step(AGENT_TASK_INTENT, drive_agent_task, args=(request,), kind="llm")


BUILTIN_TASKS = (chat_turn, agent_task)
BUILTIN_STEPS = (drive_chat_turn, drive_agent_task)
