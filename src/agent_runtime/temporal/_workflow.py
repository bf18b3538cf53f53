"""`DurableTaskWorkflow`: one Temporal workflow type that runs any registered task function.

Its input names the task (`"<module>:<qualname>"`), its JSON `args` and the resolved step
options; the workflow imports the task inside the sandbox and calls `task(ctx, *args)` with a
`TemporalContext`. Whatever the task raises ends the run failed (as on our stores), as a
non-retryable `ApplicationError` named after the error's class, so a task that is not
registered or a step that cannot cross fails at once instead of retrying a workflow task
forever. The exception is code that diverged from a recorded history (seen on replay): that
fails the workflow task with `DurableRunDivergenceError` or `DurableStepInputMismatchError`,
and the run goes on once a deploy that fits its history picks it up.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from ..errors import DurableRunDivergenceError, DurableStepInputMismatchError
    from ..jsoncanon import ensure_json
    from ._context import TemporalContext
    from ._errors import to_application_error
    from ._policy import StepOptions
    from ._registry import resolve_task

__all__ = ["EVENT_SIGNAL", "WORKFLOW_TYPE", "DurableTaskWorkflow"]

WORKFLOW_TYPE = "agent_runtime.DurableTask"
EVENT_SIGNAL = "agent_runtime.event"
"""The signal `emit_event` sends: args `[key, payload]`; the first payload per key wins."""


@workflow.defn(name=WORKFLOW_TYPE)
class DurableTaskWorkflow:
    """Runs `task(ctx, *args)` for the task its input names."""

    def __init__(self) -> None:
        self._events: dict[str, Any] = {}

    @workflow.signal(name=EVENT_SIGNAL)
    def event(self, key: str, payload: Any) -> None:
        """An event for `ctx.await_event(key)`; a later one for the same key is ignored."""
        if isinstance(key, str) and key not in self._events:
            self._events[key] = payload

    @workflow.run
    async def run(self, request: dict[str, Any]) -> Any:
        name = request.get("task")
        task = resolve_task(name) if isinstance(name, str) else None
        if task is None:
            raise ApplicationError(
                f"task {name!r} is not registered with this worker (create_worker(tasks=[...]))",
                {"type": "DurableValueError", "path": "task_fn", "reason": "not registered"},
                type="DurableValueError",
                non_retryable=True,
            )
        ctx = TemporalContext(
            run_id=workflow.info().workflow_id,
            options=StepOptions.from_dict(request["step"]),
            events=self._events,
        )
        try:
            result = await task(ctx, *request.get("args", ()))
            ensure_json(result, root="result")
        except FailureError:
            raise
        except (DurableRunDivergenceError, DurableStepInputMismatchError) as exc:
            if workflow.unsafe.is_replaying():
                # changed code under a recorded history: fail the workflow task, not the run,
                # so the run resumes on a fixed (or rolled back) deploy, as a store-driven run
                # does when it is resumed with the old code
                raise
            raise to_application_error(exc) from exc
        except Exception as exc:  # the run fails, as on our stores; a fixed deploy re-runs it
            raise to_application_error(exc) from exc
        return result
