"""`run_durable`: drive a task function as an ordered list of checkpointed steps.

Steps are identified by position. A completed step returns its stored result without calling
its function; the first unfinished position runs for real. The run holds a lease renewed by a
heartbeat; losing it cancels the task and every later commit by this worker is refused.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from ..errors import (
    DurableAwaitEventTimeoutError,
    DurableRunDivergenceError,
    DurableRunError,
    DurableRunLeaseLostError,
    DurableStepInputMismatchError,
    DurableValueError,
)
from ..jsoncanon import canonical_hash, ensure_json
from ._heartbeat import Heartbeat
from ._manifest import DurableRunManifest, derive_worker_id
from ._records import RunRecord, StepKind, StepRecord
from ._store import DEFAULT_LEASE_MS, DurableRunStore
from ._validate import check_id, check_lease_ms, check_step_call, error_to_dict

__all__ = ["DurableContext", "EmitOutcome", "RunDurableResult", "RunOutcome", "run_durable"]

log = logging.getLogger("agent_runtime.durable")

# Steps of these kinds are marked running durably before `fn` is called, so a crash during an
# LLM or tool call shows up as a second attempt. Other kinds begin and complete in one commit.
DURABLE_BEGIN_KINDS = frozenset(("llm", "tool"))


class EmitOutcome(NamedTuple):
    """What `ctx.emit_event` returns; `accepted` is False when the key was already emitted."""

    accepted: bool
    payload: Any


_OUTCOME_KEYS = frozenset(("pass", "score", "notes", "metadata"))


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run went, as the original records it: `pass` (`pass_` here), `score`, `notes`,
    `metadata`, each optional. Its wire form (`to_dict`) keeps only the fields that are set."""

    pass_: bool | None = None
    score: float | None = None
    notes: str | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.pass_ is not None and type(self.pass_) is not bool:
            raise DurableValueError("pass_ must be a bool or None", path="pass_")
        score = self.score
        if score is not None and (type(score) not in (int, float) or not math.isfinite(score)):
            raise DurableValueError("score must be a finite number or None", path="score")
        if self.notes is not None and type(self.notes) is not str:
            raise DurableValueError("notes must be a string or None", path="notes")
        if self.metadata is not None:
            if not isinstance(self.metadata, Mapping):
                raise DurableValueError("metadata must be a JSON object or None", path="metadata")
            ensure_json(dict(self.metadata), root="metadata")

    def to_dict(self) -> dict[str, Any]:
        """`{"pass", "score", "notes", "metadata"}` with the unset fields left out."""
        data: dict[str, Any] = {}
        if self.pass_ is not None:
            data["pass"] = self.pass_
        if self.score is not None:
            data["score"] = self.score
        if self.notes is not None:
            data["notes"] = self.notes
        if self.metadata is not None:
            data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOutcome:
        """Read the wire form back; keys other than the four are ignored."""
        if not isinstance(data, Mapping):
            raise DurableValueError("a run outcome must be a JSON object", path="outcome")
        return cls(
            pass_=data.get("pass"),
            score=data.get("score"),
            notes=data.get("notes"),
            metadata=data.get("metadata"),
        )


@dataclass(frozen=True, slots=True)
class RunDurableResult:
    """The task's return value, the final run record and every completed step; `outcome`
    is the recorded `RunOutcome` when the run was driven with `default_outcome=`."""

    result: Any
    record: RunRecord
    steps: list[StepRecord]
    replayed: int = 0
    executed: int = 0
    outcome: RunOutcome | None = None


class DurableContext:
    """Handed to the task function: the only way to do work that must not repeat."""

    def __init__(
        self,
        *,
        store: DurableRunStore,
        run_id: str,
        worker_id: str,
        completed: list[StepRecord],
        lease_epoch: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.worker_id = worker_id
        self.lease_epoch = lease_epoch
        self._completed = {s.step_index: s for s in completed} if completed else {}
        self._position = 0
        self._lease_lost = False
        self.steps: list[StepRecord] = []
        self.replayed = 0
        self.executed = 0

    @property
    def position(self) -> int:
        """The position the next step will take."""
        return self._position

    @property
    def replaying(self) -> bool:
        """True while the next position has a stored result."""
        return self._position in self._completed

    def _lose(self) -> None:
        """The heartbeat was refused: every later step is refused without a store call."""
        self._lease_lost = True

    def _lost(self) -> DurableRunLeaseLostError:
        return DurableRunLeaseLostError(
            f"worker {self.worker_id!r} lost the lease of run {self.run_id!r}", run_id=self.run_id
        )

    def _replay(self, index: int, intent: str, input_hash: str | None) -> StepRecord | None:
        stored = self._completed.get(index)
        if stored is None:
            return None
        if stored.intent != intent:
            raise DurableRunDivergenceError(
                f"step {index}: intent changed across replays ({stored.intent!r} -> {intent!r})",
                run_id=self.run_id,
            )
        if (
            input_hash is not None
            and stored.input_hash is not None
            and stored.input_hash != input_hash
        ):
            raise DurableStepInputMismatchError(
                f"step {index} ({intent!r}) of run {self.run_id!r} was recorded with another "
                "input fingerprint",
                run_id=self.run_id,
            )
        self.replayed += 1
        self.steps.append(stored)
        return stored

    async def step(
        self,
        intent: str,
        fn: Callable[..., Any],
        *,
        args: Sequence[Any] = (),
        kind: StepKind = "logic",
        input_fingerprint: Any = None,
    ) -> Any:
        """Run `fn(*args)` once for this position and checkpoint its JSON result; replay it
        after. A module-level `fn` with its inputs in `args` also crosses to other engines'
        workers (`agent_runtime.temporal`), where a closure cannot."""
        check_step_call(intent, args, kind)
        input_hash = (
            None
            if input_fingerprint is None
            else canonical_hash(input_fingerprint, root="input_fingerprint")
        )
        index = self._position
        self._position += 1
        stored = self._replay(index, intent, input_hash)
        if stored is not None:
            return stored.result
        if self._lease_lost:
            raise self._lost()
        store, run_id, worker_id, epoch = self.store, self.run_id, self.worker_id, self.lease_epoch
        if kind in DURABLE_BEGIN_KINDS:
            await store.begin_step(
                run_id, index, intent, kind, input_hash, worker_id=worker_id, lease_epoch=epoch
            )
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            self.executed += 1
            await store.fail_step(
                run_id,
                index,
                error_to_dict(exc),
                intent=intent,
                kind=kind,
                input_hash=input_hash,
                worker_id=worker_id,
                lease_epoch=epoch,
            )
            raise
        record = await store.complete_step(
            run_id,
            index,
            value,
            intent=intent,
            kind=kind,
            input_hash=input_hash,
            worker_id=worker_id,
            lease_epoch=epoch,
        )
        self.executed += 1
        self.steps.append(record)
        return record.result

    async def now(self) -> datetime:
        """The wall-clock time, recorded once: the same value on every replay."""
        iso = await self.step("ctx.now", _iso_now, kind="deterministic")
        return datetime.fromisoformat(iso)

    async def uuid(self) -> str:
        """A random UUID4 string, recorded once."""
        value: str = await self.step("ctx.uuid", _new_uuid, kind="deterministic")
        return value

    async def emit_event(self, key: str, payload: Any) -> EmitOutcome:
        """Emit a keyed event for this run; the first emit of a key wins."""
        check_id(key, "key")
        ensure_json(payload, root="payload")  # refused before a failed step is recorded

        async def emit() -> dict[str, Any]:
            res = await self.store.emit_event(self.run_id, key, payload)
            return {"accepted": res.accepted, "payload": res.record.payload}

        data = await self.step(f"ctx.emit_event:{key}", emit, kind="event")
        return EmitOutcome(bool(data["accepted"]), data["payload"])

    async def await_event(
        self, key: str, timeout_ms: int = 60_000, *, poll_ms: int = 10, max_poll_ms: int = 250
    ) -> Any:
        """Wait for an event of this run (emitted before or after the call) and return its
        payload; `DurableAwaitEventTimeoutError` after `timeout_ms`. The outcome, payload or
        timeout, is recorded so a replay sees the same."""
        check_id(key, "key")
        if type(timeout_ms) is not int or timeout_ms < 0:
            raise DurableValueError("timeout_ms must be an int >= 0", path="timeout_ms")
        if type(poll_ms) is not int or poll_ms < 0:
            raise DurableValueError("poll_ms must be an int >= 0", path="poll_ms")
        if type(max_poll_ms) is not int or max_poll_ms < 1:  # 0 would poll in a tight loop
            raise DurableValueError("max_poll_ms must be an int >= 1", path="max_poll_ms")

        async def wait() -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_ms / 1000
            delay = max(poll_ms, 1) / 1000
            while True:
                rec = await self.store.load_event(self.run_id, key)
                if rec is not None:
                    return {"payload": rec.payload}
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return {"timeout": True}
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 1.5, max_poll_ms / 1000)

        data = await self.step(
            f"ctx.await_event:{key}", wait, kind="event", input_fingerprint=timeout_ms
        )
        if data.get("timeout"):
            raise DurableAwaitEventTimeoutError(
                f"no event {key!r} for run {self.run_id!r} within {timeout_ms} ms",
                run_id=self.run_id,
            )
        return data["payload"]


def _iso_now() -> str:
    return datetime.now().astimezone().isoformat()


def _new_uuid() -> str:
    return str(_uuid.uuid4())


async def run_durable(
    *,
    run_id: str,
    manifest: DurableRunManifest,
    store: DurableRunStore,
    task_fn: Callable[[DurableContext], Awaitable[Any]],
    worker_id: str | None = None,
    lease_ms: int = DEFAULT_LEASE_MS,
    heartbeat_ms: int | None = None,
    default_outcome: RunOutcome | None = None,
) -> RunDurableResult:
    """Start or resume `run_id` and drive `task_fn(ctx)` to the end.

    Completed steps replay from the store in one read; a completed run returns its recorded
    outcome without a lease and without calling `task_fn`. Every commit is fenced by this
    claim's lease epoch, so a second claim (even under the same `worker_id`) stops the first.
    A step or task that raises ends the run `failed` (re-raised here); the task's return value
    must be JSON and becomes the run's outcome. The lease is renewed every `heartbeat_ms`
    (default: a third of `lease_ms`). `task_fn` runs in the caller's task; a lost lease
    cancels it there and raises `DurableRunLeaseLostError` with no cancellation left pending.

    With `default_outcome`, the run's recorded outcome is that `RunOutcome`'s wire form plus
    `"result"` (the task's return value) on success, or plus `"notes"` (the error message)
    and `"error"` on failure; `result` is still the task's return value, and a completed run
    returns it (and the recorded `RunOutcome` as `outcome`) without calling the task. Give the
    same `default_outcome` (or None) on every call of a run.
    """
    check_id(run_id, "run_id")
    check_lease_ms(lease_ms)
    if heartbeat_ms is not None and (
        type(heartbeat_ms) is not int or not 0 < heartbeat_ms < lease_ms
    ):
        raise DurableValueError(
            "heartbeat_ms must be an int between 0 and lease_ms (exclusive)", path="heartbeat_ms"
        )
    if not isinstance(manifest, DurableRunManifest):
        raise DurableValueError("manifest must be a DurableRunManifest", path="manifest")
    if not callable(task_fn):
        raise DurableValueError("task_fn must be an async function", path="task_fn")
    if default_outcome is not None and not isinstance(default_outcome, RunOutcome):
        raise DurableValueError(
            "default_outcome must be a RunOutcome or None", path="default_outcome"
        )
    worker = check_id(worker_id, "worker_id") if worker_id is not None else derive_worker_id()

    try:
        run, completed, lease_expires_at = await store.start_or_resume(
            run_id, manifest, worker, lease_ms=lease_ms
        )
    except asyncio.CancelledError:
        # the claim may have landed with its reply still in flight: free it (fenced by our
        # worker id, so a claim that never landed changes nothing)
        await _release(store, run_id, worker)
        raise
    if run.status == "completed" and lease_expires_at is None:
        # a completed run answers with its recorded outcome: nothing runs, not even the task
        # function, so code outside steps cannot repeat and a task that caught a failed step
        # still replays
        if default_outcome is None:
            return RunDurableResult(run.outcome, run, completed, len(completed), 0)
        recorded = run.outcome
        if not isinstance(recorded, dict) or "result" not in recorded:
            raise DurableValueError(
                f"run {run_id!r} was completed without default_outcome: call it without one",
                path="default_outcome",
            )
        return RunDurableResult(
            recorded["result"],
            run,
            completed,
            len(completed),
            0,
            RunOutcome.from_dict(recorded),
        )

    epoch = run.lease_epoch
    ctx = DurableContext(
        store=store,
        run_id=run_id,
        worker_id=worker,
        completed=completed,
        lease_epoch=epoch,
    )
    # the task runs inline in the caller's task; a lost lease cancels it and the cancellation
    # is taken back (uncancel) before this call returns, so none can outlive it
    interval_ms = lease_ms / 3 if heartbeat_ms is None else heartbeat_ms
    heartbeat = Heartbeat(
        store,
        run_id,
        worker,
        lease_epoch=epoch,
        lease_ms=lease_ms,
        interval_ms=interval_ms,
        target=asyncio.current_task(),
        on_lost=ctx._lose,
    )
    try:
        try:
            result = await task_fn(ctx)
        finally:
            heartbeat.stop()
    except DurableRunLeaseLostError:
        raise
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if ctx._lease_lost and (current is None or current.cancelling() == 0):
            raise ctx._lost() from None
        await _release(store, run_id, worker, epoch)
        raise
    except Exception as exc:
        if ctx._lease_lost:
            raise ctx._lost() from exc
        await store.end_run(
            run_id, worker, "failed", _failed_outcome(exc, default_outcome), lease_epoch=epoch
        )
        raise
    recorded = (
        result if default_outcome is None else {**default_outcome.to_dict(), "result": result}
    )
    # every step is done: a cancellation landing during the completion write must not strand
    # the run leased, so the write is issued again on its own (fenced, so at most one lands)
    try:
        record = await store.end_run(run_id, worker, "completed", recorded, lease_epoch=epoch)
    except asyncio.CancelledError:
        late = asyncio.ensure_future(
            store.end_run(run_id, worker, "completed", recorded, lease_epoch=epoch)
        )
        _LATE_WRITES.add(late)
        late.add_done_callback(_LATE_WRITES.discard)
        late.add_done_callback(_log_late_failure)
        raise
    except DurableValueError as exc:
        await store.end_run(
            run_id, worker, "failed", _failed_outcome(exc, default_outcome), lease_epoch=epoch
        )
        raise
    return RunDurableResult(result, record, ctx.steps, ctx.replayed, ctx.executed, default_outcome)


def _failed_outcome(exc: BaseException, default: RunOutcome | None) -> dict[str, Any]:
    """What a failed run records: `{"error"}`, or with a default outcome the original's
    `{...default, "notes": <error message>}` plus `"error"`."""
    error = error_to_dict(exc)
    if default is None:
        return {"error": error}
    return {**default.to_dict(), "notes": error["message"], "error": error}


# completion writes finishing after their caller was cancelled; referenced until they end
_LATE_WRITES: set[asyncio.Future[Any]] = set()


def _log_late_failure(fut: asyncio.Future[Any]) -> None:
    exc = None if fut.cancelled() else fut.exception()
    if isinstance(exc, DurableRunLeaseLostError):  # the first write had landed: nothing to do
        log.debug("late completion write refused: %s", exc)
    elif exc is not None:
        log.warning("completing a cancelled run failed: %s", exc)


async def _release(
    store: DurableRunStore, run_id: str, worker: str, epoch: int | None = None
) -> None:
    """Cancelled from outside: free the lease so another worker can resume at once."""
    try:
        await asyncio.shield(store.end_run(run_id, worker, "suspended", None, lease_epoch=epoch))
    except (DurableRunError, Exception) as exc:  # best effort; the lease expires anyway
        log.debug("could not release run %s after cancellation: %s", run_id, exc)
