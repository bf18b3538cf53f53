"""`TemporalContext`: the `DurableContext` a task sees inside a Temporal workflow.

Each `ctx.step` is one activity (`agent_runtime.step`) carrying the step function's import
name and JSON `args`; its result comes back wrapped with the position, intent and input hash
it ran under, so a replay by changed task code raises `DurableRunDivergenceError` or
`DurableStepInputMismatchError` as our stores do. `now`/`uuid` are the workflow's
deterministic clock and UUIDs; `await_event` waits for a signal; `emit_event` records an
event for this run, as a signal from outside (`emit_event` helper) does.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from ..durable import DurableContext, EmitOutcome, StepKind
from ..durable._validate import check_id, check_step_call
from ..errors import (
    DurableAwaitEventTimeoutError,
    DurableRunDivergenceError,
    DurableStepInputMismatchError,
    DurableValueError,
)
from ..jsoncanon import canonical_hash, ensure_json
from ._errors import NON_RETRYABLE, TemporalStepFailedError, error_from_failure
from ._policy import StepOptions
from ._registry import step_name

__all__ = ["STEP_ACTIVITY", "TemporalContext"]

STEP_ACTIVITY = "agent_runtime.step"
"""The activity every `ctx.step` runs as (one type: the step function travels by name)."""

_NON_RETRYABLE_TYPES = [cls.__name__ for cls in NON_RETRYABLE]


class TemporalContext(DurableContext):
    """A `DurableContext` whose steps are Temporal activities; built by the workflow."""

    def __init__(
        self,
        *,
        run_id: str,
        options: StepOptions,
        events: MutableMapping[str, Any],
    ) -> None:
        # the workflow history is the record: no store, no lease
        self.run_id = run_id
        self.worker_id = "temporal"
        self.lease_epoch = None
        self.steps = []
        self.replayed = 0
        self.executed = 0
        self._completed = {}
        self._position = 0
        self._lease_lost = False
        self._options = options
        self._events = events

    @property
    def replaying(self) -> bool:
        """True while Temporal replays this workflow from its history."""
        return workflow.unsafe.is_replaying()

    def _next(self) -> int:
        index = self._position
        self._position += 1
        return index

    async def step(
        self,
        intent: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kind: StepKind = "logic",
        input_fingerprint: Any = None,
    ) -> Any:
        """Run `fn(*args)` once as an activity (retried per the task's step config) and return
        its JSON result; a replay returns the recorded one without running it."""
        check_step_call(intent, args, kind)
        name = step_name(fn)
        call_args = list(args)
        ensure_json(call_args, root="args")
        input_hash = (
            None
            if input_fingerprint is None
            else canonical_hash(input_fingerprint, root="input_fingerprint")
        )
        index = self._next()
        call = {
            "fn": name,
            "args": call_args,
            "runId": self.run_id,
            "index": index,
            "intent": intent,
            "kind": kind,
            "inputHash": input_hash,
        }
        replaying = workflow.unsafe.is_replaying()
        envelope = await self._execute(call, index, intent)
        recorded_index, recorded_intent = envelope.get("index"), envelope.get("intent")
        if recorded_index != index or recorded_intent != intent:
            raise DurableRunDivergenceError(
                f"step {index}: intent changed across replays "
                f"({recorded_intent!r} at {recorded_index} -> {intent!r})",
                run_id=self.run_id,
            )
        recorded_hash = envelope.get("inputHash")
        if input_hash is not None and recorded_hash is not None and recorded_hash != input_hash:
            raise DurableStepInputMismatchError(
                f"step {index} ({intent!r}) of run {self.run_id!r} was recorded with another "
                "input fingerprint",
                run_id=self.run_id,
            )
        if replaying:
            self.replayed += 1
        else:
            self.executed += 1
        return envelope.get("result")

    async def _execute(self, call: dict[str, Any], index: int, intent: str) -> dict[str, Any]:
        options = self._options
        native = options.native_retries
        policy = RetryPolicy(
            initial_interval=timedelta(milliseconds=options.delay_ms),
            backoff_coefficient=2.0 if options.backoff == "exponential" else 1.0,
            maximum_attempts=options.attempts if native else 1,
            non_retryable_error_types=_NON_RETRYABLE_TYPES,
        )
        attempt = 1
        while True:
            try:
                result: dict[str, Any] = await workflow.execute_activity(
                    STEP_ACTIVITY,
                    call,
                    retry_policy=policy,
                    summary=f"{index}:{intent}",
                    start_to_close_timeout=timedelta(milliseconds=options.timeout_ms),
                    heartbeat_timeout=timedelta(milliseconds=options.heartbeat_ms),
                )
                return result
            except ActivityError as exc:
                cause = exc.cause
                retryable = not (isinstance(cause, ApplicationError) and cause.non_retryable)
                if not native and retryable and attempt < options.attempts:
                    await workflow.sleep(timedelta(milliseconds=options.retry_delay_ms(attempt)))
                    attempt += 1
                    continue
                raise self._failed(exc, index, intent) from exc

    def _failed(self, exc: ActivityError, index: int, intent: str) -> Exception:
        cause = exc.cause
        ours = error_from_failure(cause, run_id=self.run_id) if cause is not None else None
        if isinstance(ours, NON_RETRYABLE):
            return ours  # the step's input or result is malformed: the same error as on a store
        error: dict[str, Any] = {"type": type(cause).__name__, "message": str(cause)}
        if isinstance(cause, ApplicationError):
            error = {"type": cause.type or "ApplicationError", "message": cause.message}
        return TemporalStepFailedError(
            f"step {index} ({intent!r}) of run {self.run_id!r} failed: {error['message']}",
            run_id=self.run_id,
            error=error,
            intent=intent,
            step_index=index,
        )

    async def now(self) -> datetime:
        """The workflow's clock: the time of the current workflow task, the same on replay."""
        self._next()
        return workflow.now()

    async def uuid(self) -> str:
        """A UUID4 from the workflow's seeded generator: the same on replay."""
        self._next()
        return str(workflow.uuid4())

    async def emit_event(self, key: str, payload: Any) -> EmitOutcome:
        """Record an event of this run; the first emit of a key wins (a signal sent before
        counts as the first)."""
        check_id(key, "key")
        ensure_json(payload, root="payload")
        self._next()
        if key in self._events:
            return EmitOutcome(False, self._events[key])
        self._events[key] = payload
        return EmitOutcome(True, payload)

    async def await_event(
        self, key: str, timeout_ms: int = 60_000, *, poll_ms: int = 10, max_poll_ms: int = 250
    ) -> Any:
        """Wait for the event `key` (a signal, sent before or after the call) and return its
        payload; `DurableAwaitEventTimeoutError` after `timeout_ms` (a durable timer).
        `poll_ms` and `max_poll_ms` are checked and unused: nothing polls."""
        check_id(key, "key")
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise DurableValueError("timeout_ms must be an int >= 0", path="timeout_ms")
        if type(poll_ms) is not int or poll_ms < 0:
            raise DurableValueError("poll_ms must be an int >= 0", path="poll_ms")
        if type(max_poll_ms) is not int or max_poll_ms < 1:
            raise DurableValueError("max_poll_ms must be an int >= 1", path="max_poll_ms")
        self._next()
        events = self._events
        if key not in events:
            try:
                if timeout_ms == 0:
                    raise TimeoutError
                await workflow.wait_condition(
                    lambda: key in events, timeout=timedelta(milliseconds=timeout_ms)
                )
            except TimeoutError:
                raise DurableAwaitEventTimeoutError(
                    f"no event {key!r} for run {self.run_id!r} within {timeout_ms} ms",
                    run_id=self.run_id,
                ) from None
        return events[key]
