"""`create_worker`: a Temporal worker that runs durable tasks, their steps, and (given a
store) chat turns and agent tasks whose events stream into the store's log.

The workflow sandbox passes `agent_runtime` through (our modules are deterministic and load
once per process, not once per workflow run); task modules are imported inside the sandbox,
so its restrictions apply to task code. `create_replayer` replays recorded histories
against the same tasks, to check that changed task code still fits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from temporalio.client import Client
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ..backends import AgentExecutionBackend
from ..durable import DurableRunStore
from ..durable._store import is_durable_store
from ..errors import DurableValueError
from ._activities import StepActivities, WorkerResources
from ._registry import register_step, register_task
from ._workflow import DurableTaskWorkflow

__all__ = ["create_replayer", "create_worker", "workflow_runner"]

PASSTHROUGH = ("agent_runtime", "orjson", "httpx2", "opentelemetry", "rich", "typer")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox our workflows run in: the default restrictions, our package passed through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def _register(tasks: Iterable[Callable[..., Any]], steps: Iterable[Callable[..., Any]]) -> None:
    if isinstance(tasks, str | bytes) or isinstance(steps, str | bytes):
        raise DurableValueError("tasks and steps must be lists of functions", path="tasks")
    for task in list(tasks):
        register_task(task)
    for step in list(steps):
        register_step(step)


def create_worker(
    client: Client,
    *,
    task_queue: str,
    tasks: Iterable[Callable[..., Any]] = (),
    steps: Iterable[Callable[..., Any]] = (),
    activities: Iterable[Callable[..., Any]] = (),
    store: DurableRunStore | None = None,
    backend: AgentExecutionBackend | None = None,
    project_id: str = "chat",
    lease_ms: int = 5_000,
    **worker_options: Any,
) -> Worker:
    """A worker for `task_queue` running `tasks` (async `task(ctx, *args)`) and `steps`
    (module-level functions), plus any plain Temporal `activities`. A lambda or nested
    function as a task or step raises `DurableValueError` here.

    With a `store`, chat turns (`chat_turn`) and agent tasks (`agent_task`) run too: their
    backend calls are steps that log every event to the store's stream log, where the
    server's events endpoint serves them. `backend` defaults to `OPENAI_BASE_URL`'s
    endpoint, else echo; `lease_ms` is the store lease of a turn this worker drives (a
    killed worker's turn is resumed once Temporal retries it and this lease has lapsed).
    `worker_options` go to `temporalio.worker.Worker`."""
    if not isinstance(task_queue, str) or not task_queue:
        raise DurableValueError("task_queue must be a non-empty string", path="task_queue")
    _register(tasks, steps)
    extra = list(activities)  # plain Temporal activities beside ours
    resources = WorkerResources(project_id=project_id)
    if store is not None:
        if not is_durable_store(store):
            raise DurableValueError("store must be a DurableRunStore", path="store")
        from ._chat import BUILTIN_STEPS, BUILTIN_TASKS, turn_resources

        _register(BUILTIN_TASKS, BUILTIN_STEPS)
        resources = turn_resources(store, backend, project_id=project_id, lease_ms=lease_ms)
    step_activities = StepActivities(resources)
    worker_options.setdefault("workflow_runner", workflow_runner())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DurableTaskWorkflow],
        activities=[step_activities.run_step, *extra],
        **worker_options,
    )


def create_replayer(
    *, tasks: Iterable[Callable[..., Any]] = (), steps: Iterable[Callable[..., Any]] = ()
) -> Replayer:
    """A `Replayer` for histories of these tasks: `await replayer.replay_workflow(history)`
    fails when the task code no longer fits what was recorded (a divergence, an input
    fingerprint that changed, an unstable `now`/`uuid` fed into a step)."""
    _register(tasks, steps)
    return Replayer(workflows=[DurableTaskWorkflow], workflow_runner=workflow_runner())
