"""The step activity: runs a registered step function with its JSON args on this worker.

It heartbeats while the function runs (every third of the heartbeat timeout), so a worker
that dies mid-step is noticed within that timeout and the step is retried elsewhere. The
result travels wrapped with the position, intent and input hash the workflow sent, which is
how a replay notices that the task's code changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from temporalio import activity

from ..errors import AgentRuntimeError, DurableRunError, DurableValueError
from ..jsoncanon import ensure_json
from ._context import STEP_ACTIVITY
from ._errors import NON_RETRYABLE, to_application_error
from ._registry import registered_step

if TYPE_CHECKING:
    from ..backends import AgentExecutionBackend
    from ..durable import DurableRunStore
    from ..server import TurnRunner

__all__ = ["StepActivities", "WorkerResources", "current_worker"]


@dataclass(frozen=True, slots=True)
class WorkerResources:
    """What a worker lends its step functions: the durable store whose stream log carries
    streamed events, the backend, and the chat turn runner over both (None without a store)."""

    store: DurableRunStore | None = None
    backend: AgentExecutionBackend | None = None
    turns: TurnRunner | None = None
    project_id: str = "chat"
    lease_ms: int = 5_000


_CURRENT: contextvars.ContextVar[WorkerResources] = contextvars.ContextVar(
    "agent_runtime_temporal_worker"
)


def current_worker() -> WorkerResources:
    """The resources of the worker running the current step (inside a step function only)."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise DurableRunError(
            "current_worker() is only available inside a step running on a Temporal worker",
            code="not_in_step",
        ) from None


@contextlib.contextmanager
def _using(resources: WorkerResources) -> Iterator[None]:
    token = _CURRENT.set(resources)
    try:
        yield
    finally:
        _CURRENT.reset(token)


async def _heartbeat(interval: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(interval)


class StepActivities:
    """The activities a worker registers, bound to its resources."""

    def __init__(self, resources: WorkerResources) -> None:
        self.resources = resources

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, call: dict[str, Any]) -> dict[str, Any]:
        """Run `call["fn"](*call["args"])` and return its JSON result in an envelope."""
        name = call.get("fn")
        fn = registered_step(name) if isinstance(name, str) else None
        if fn is None:
            raise to_application_error(
                DurableValueError(f"step fn {name!r} is not registered with this worker", path="fn")
            )
        timeout = activity.info().heartbeat_timeout
        beat = (
            asyncio.get_running_loop().create_task(_heartbeat(timeout.total_seconds() / 3))
            if timeout
            else None
        )
        try:
            with _using(self.resources):
                if inspect.iscoroutinefunction(inspect.unwrap(fn)):
                    value = await fn(*call.get("args", ()))
                else:  # a blocking function must not stall the worker's event loop
                    value = await asyncio.to_thread(fn, *call.get("args", ()))
                    if inspect.isawaitable(value):
                        value = await value
            ensure_json(value, root="result")
        except NON_RETRYABLE as exc:
            raise to_application_error(exc) from exc
        except AgentRuntimeError as exc:
            raise to_application_error(exc, non_retryable=False) from exc
        finally:
            if beat is not None:
                beat.cancel()
        return {
            "index": call.get("index"),
            "intent": call.get("intent"),
            "inputHash": call.get("inputHash"),
            "result": value,
        }
