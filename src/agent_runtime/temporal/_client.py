"""Starting, awaiting and signalling durable tasks on Temporal from outside a workflow.

The run id is the workflow id. Starting a run that exists attaches to it (a completed run
answers with its recorded result, as on our stores) unless it was started with other input:
then `DurableRunInputMismatchError`, as a store answers a manifest mismatch. A failed run may
be started again (it starts over: Temporal keeps no steps across runs of a workflow id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ..errors import DurableRunInputMismatchError, DurableRunNotFoundError, DurableValueError
from ..jsoncanon import canonical_hash, ensure_json
from ._errors import error_from_failure
from ._policy import step_options
from ._registry import function_name
from ._workflow import EVENT_SIGNAL, WORKFLOW_TYPE

__all__ = ["DIGEST_MEMO", "emit_event", "run_task", "start_task", "task_result"]

DIGEST_MEMO = "agent_runtime.digest"
"""The memo key holding the hash of a run's task name and args (its manifest, here)."""


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 512 or "\x00" in run_id:
        raise DurableValueError(
            "run_id must be a non-empty string of at most 512 characters", path="run_id"
        )
    return run_id


def _request(
    task_fn: Callable[..., Any], args: Sequence[Any], step_config: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str]:
    name = function_name(task_fn, "task_fn")
    if not isinstance(args, tuple | list):
        raise DurableValueError("args must be a tuple or a list", path="args")
    call_args = list(args)
    ensure_json(call_args, root="args")
    options = step_options(step_config)
    digest = canonical_hash({"task": name, "args": call_args}, root="args")
    return {"task": name, "args": call_args, "step": options.to_dict()}, digest


async def start_task(
    client: Client,
    task_fn: Callable[..., Any],
    *,
    run_id: str,
    task_queue: str,
    args: Sequence[Any] = (),
    step_config: Mapping[str, Any] | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start `task_fn(ctx, *args)` as the run `run_id` (or attach to it); bad arguments raise
    `DurableValueError` before anything is sent."""
    _check_run_id(run_id)
    if not isinstance(task_queue, str) or not task_queue:
        raise DurableValueError("task_queue must be a non-empty string", path="task_queue")
    request, digest = _request(task_fn, args, step_config)
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            request,
            id=run_id,
            task_queue=task_queue,
            memo={DIGEST_MEMO: digest},
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=request["task"],
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(run_id)
        memo = await (await handle.describe()).memo()
        if memo.get(DIGEST_MEMO) != digest:
            raise DurableRunInputMismatchError(
                f"run {run_id!r} exists with another task or other args; refuse to mix them",
                run_id=run_id,
            ) from None
        return handle


async def task_result(handle: WorkflowHandle[Any, Any]) -> Any:
    """The run's result; a failed run raises the error the task raised when it is one of
    ours (`DurableRunDivergenceError`, `DurableAwaitEventTimeoutError`, ...)."""
    try:
        return await handle.result()
    except WorkflowFailureError as exc:
        ours = error_from_failure(exc.cause, run_id=handle.id)
        if ours is not None:
            raise ours from exc
        raise


async def run_task(
    client: Client,
    task_fn: Callable[..., Any],
    *,
    run_id: str,
    task_queue: str,
    args: Sequence[Any] = (),
    step_config: Mapping[str, Any] | None = None,
) -> Any:
    """`start_task` then `task_result`: run (or attach to) `run_id` and return its result."""
    handle = await start_task(
        client, task_fn, run_id=run_id, task_queue=task_queue, args=args, step_config=step_config
    )
    return await task_result(handle)


async def emit_event(client: Client, run_id: str, key: str, payload: Any) -> None:
    """Send the event `key` to the run `run_id` (a signal: durable even while no worker
    runs); its `ctx.await_event(key)` returns `payload`. The first event per key wins."""
    _check_run_id(run_id)
    if not isinstance(key, str) or not key or len(key) > 512 or "\x00" in key:
        raise DurableValueError("key must be a non-empty string", path="key")
    ensure_json(payload, root="payload")
    try:
        await client.get_workflow_handle(run_id).signal(EVENT_SIGNAL, args=[key, payload])
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DurableRunNotFoundError(f"no run {run_id!r} on Temporal", run_id=run_id) from None
        raise
