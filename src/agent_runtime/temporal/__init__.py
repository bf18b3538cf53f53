"""The same durable task functions on Temporal (extra `temporal`): the original's pattern B.

A `task(ctx, *args)` written against `DurableContext` runs as a Temporal workflow: each
`ctx.step(intent, fn, args=...)` is an activity (retried per a `WorkflowStepConfig`),
`ctx.now()`/`ctx.uuid()` come from the workflow's deterministic clock and UUIDs,
`ctx.await_event` waits for a signal (`emit_event` sends one). Chat turns and agent tasks
stream their events into our durable stream log, so browsers re-attach as on our stores.
"""

from ._activities import WorkerResources, current_worker
from ._chat import agent_task, chat_turn, chat_turn_request, drive_agent_task, drive_chat_turn
from ._client import emit_event, run_task, start_task, task_result
from ._context import STEP_ACTIVITY, TemporalContext
from ._errors import TemporalStepFailedError
from ._policy import DEFAULT_STEP_CONFIG, StepOptions, step_options
from ._worker import create_replayer, create_worker, workflow_runner
from ._workflow import EVENT_SIGNAL, WORKFLOW_TYPE, DurableTaskWorkflow

__all__ = [
    "DEFAULT_STEP_CONFIG",
    "EVENT_SIGNAL",
    "STEP_ACTIVITY",
    "WORKFLOW_TYPE",
    "DurableTaskWorkflow",
    "StepOptions",
    "TemporalContext",
    "TemporalStepFailedError",
    "WorkerResources",
    "agent_task",
    "chat_turn",
    "chat_turn_request",
    "create_replayer",
    "create_worker",
    "current_worker",
    "drive_agent_task",
    "drive_chat_turn",
    "emit_event",
    "run_task",
    "start_task",
    "step_options",
    "task_result",
    "workflow_runner",
]
