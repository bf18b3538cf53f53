"""`run_on_workflow_step`: a durable task function on an engine whose steps take closures.

The original's pattern B (ORIGINAL §18.11): the same `task_fn(ctx)` that `run_durable` drives
runs on a workflow engine's `step` object (Cloudflare Workflows' shape, or anything alike).
Every `ctx.step` becomes `step.do("<workflow>/<n>:<intent>", [config,] fn)`, `await_event` a
`wait_for_event`, `now` and `uuid` steps of their own; the engine records and replays them.
"""

from __future__ import annotations

import inspect
import math
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from ..errors import DurableRunError, DurableValueError
from ._records import StepKind
from ._run import DurableContext, EmitOutcome
from ._validate import check_id, check_step_call

__all__ = [
    "WorkflowStepConfig",
    "WorkflowStepContext",
    "WorkflowStepLike",
    "WorkflowStepRetries",
    "run_on_workflow_step",
]


class WorkflowStepRetries(TypedDict, total=False):
    """How a failed step is retried: `limit` retries, `delay` (ms or a label such as
    `"5 seconds"`) before the first, growing `constant`, `linear` or `exponential`."""

    limit: int
    delay: str | int
    backoff: Literal["constant", "linear", "exponential"]


class WorkflowStepConfig(TypedDict, total=False):
    """A step's retry and timeout settings, passed to the engine unchanged (the original's
    `WorkflowStepConfig`); `agent_runtime.temporal` maps the same shape to activity options."""

    retries: WorkflowStepRetries
    timeout: str | int


@runtime_checkable
class WorkflowStepLike(Protocol):
    """The engine's step object: `do(name, fn)` or `do(name, config, fn)` runs `fn` once and
    returns its recorded result, `wait_for_event(name, {"type", "timeout"})` waits for an
    event sent from outside and returns it (its `payload` is what the task sees)."""

    async def do(self, name: str, *args: Any) -> Any: ...

    async def sleep(self, name: str, duration: str | int) -> Any: ...

    async def wait_for_event(self, name: str, options: Mapping[str, Any]) -> Any: ...


class WorkflowStepContext(DurableContext):
    """The `DurableContext` a task sees on a workflow step: every call is a named engine step.

    `run_id` is `cf-workflow:<workflow_name>` as in the original. `kind` and
    `input_fingerprint` are accepted and ignored (the engine keys steps by name)."""

    def __init__(
        self,
        workflow_step: WorkflowStepLike,
        workflow_name: str,
        step_config: WorkflowStepConfig | None,
    ) -> None:
        # no store and no lease here: the engine records the steps
        self.run_id = f"cf-workflow:{workflow_name}"
        self.project_id = workflow_name
        self.scenario_id: str | None = None
        self.worker_id = workflow_name
        self.lease_epoch = None
        self.steps = []
        self.replayed = 0
        self.executed = 0
        self._completed = {}
        self._position = 0
        self._lease_lost = False
        self._workflow_step = workflow_step
        self._workflow_name = workflow_name
        self._step_config = step_config

    @property
    def replaying(self) -> bool:
        """Unknown here: the engine replays behind `do` without saying so."""
        return False

    def _name(self, intent: str) -> str:
        index = self._position
        self._position += 1
        return f"{self._workflow_name}/{index}:{intent}"

    async def _do(self, name: str, thunk: Callable[[], Awaitable[Any]]) -> Any:
        self.executed += 1
        if self._step_config is None:
            return await self._workflow_step.do(name, thunk)
        return await self._workflow_step.do(name, self._step_config, thunk)

    async def step(
        self,
        intent: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kind: StepKind = "logic",
        input_fingerprint: Any = None,
    ) -> Any:
        """`step.do("<workflow>/<n>:<intent>", [config,] fn)`: the engine runs `fn(*args)`
        once and replays its result."""
        check_step_call(intent, args, kind)
        if not callable(fn):
            raise DurableValueError("step fn must be callable", path="fn")
        call_args = tuple(args)

        async def thunk() -> Any:
            value = fn(*call_args)
            if inspect.isawaitable(value):
                value = await value
            return value

        return await self._do(self._name(intent), thunk)

    async def now(self) -> datetime:
        """A `deterministic:now` step: the time, recorded once by the engine."""
        iso = await self._do(self._name("deterministic:now"), _iso_now)
        return datetime.fromisoformat(iso)

    async def uuid(self) -> str:
        """A `deterministic:uuid` step: a UUID4 string, recorded once by the engine."""
        value: str = await self._do(self._name("deterministic:uuid"), _new_uuid)
        return value

    async def emit_event(self, key: str, payload: Any) -> EmitOutcome:
        """Refused: events reach a workflow from outside (the engine's event API)."""
        raise DurableRunError(
            "run_on_workflow_step: emit_event is not available inside a workflow; send the "
            "event from outside through the engine",
            code="emit_event_unsupported",
            run_id=self.run_id,
        )

    async def await_event(
        self,
        key: str,
        timeout_ms: int | None = None,
        *,
        poll_ms: int = 10,
        max_poll_ms: int = 250,
    ) -> Any:
        """`step.wait_for_event(<name>, {"type": key, "timeout": "<s>s"})` and the event's
        payload; the timeout is rounded up to whole seconds, `poll_ms` is unused."""
        check_id(key, "key")
        if timeout_ms is not None and (type(timeout_ms) is not int or timeout_ms < 0):
            raise DurableValueError("timeout_ms must be an int >= 0 or None", path="timeout_ms")
        options: dict[str, Any] = {"type": key}
        if timeout_ms is not None:
            options["timeout"] = f"{math.ceil(timeout_ms / 1000)}s"
        self.executed += 1
        event = await self._workflow_step.wait_for_event(self._name(f"event:{key}"), options)
        if isinstance(event, Mapping):
            return event.get("payload")
        return getattr(event, "payload", None)


async def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


async def _new_uuid() -> str:
    return str(_uuid.uuid4())


async def run_on_workflow_step(
    workflow_step: WorkflowStepLike,
    *,
    workflow_name: str,
    task_fn: Callable[[DurableContext], Awaitable[Any]],
    step_config: WorkflowStepConfig | None = None,
    now: Callable[[], Any] | None = None,
) -> Any:
    """Run `task_fn(ctx)` with every durable call as a step of `workflow_step`; return what
    the task returns. `now` is accepted and unused, as in the original. Bad arguments raise
    `DurableValueError` before the engine is called."""
    if not isinstance(workflow_step, WorkflowStepLike) or not callable(
        getattr(workflow_step, "do", None)
    ):
        raise DurableValueError(
            "workflow_step must have do(), sleep() and wait_for_event()", path="workflow_step"
        )
    check_id(workflow_name, "workflow_name")
    if not callable(task_fn):
        raise DurableValueError("task_fn must be an async function", path="task_fn")
    if step_config is not None and not isinstance(step_config, Mapping):
        raise DurableValueError("step_config must be a mapping or None", path="step_config")
    if now is not None and not callable(now):
        raise DurableValueError("now must be callable or None", path="now")
    ctx = WorkflowStepContext(workflow_step, workflow_name, step_config)
    return await task_fn(ctx)
