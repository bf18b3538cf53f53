"""The step and stream half of `DurableRunStore` that every store shares.

Argument checks and JSON encoding happen here once, before any I/O; a store supplies
`_write_step` (one fenced transaction) and `append_stream_events` (one batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..jsoncanon import dumps_json
from ._records import AppendStreamResult, StepKind, StepRecord, StepStatus
from ._validate import check_epoch, check_error, check_id, check_index, check_kind

__all__ = ["StoreBase", "detach"]


class StoreBase:
    """Mixin implementing `begin_step`, `complete_step`, `fail_step`, `append_stream_event`."""

    async def _write_step(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        worker_id: str | None,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None,
        error: str | None,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        """Fence (holder and, when given, lease epoch), then insert or update the step at `step_index` in one transaction.

        `result` / `error` arrive as validated JSON text. Without `intent` the step must
        exist (begun) and keeps its intent and kind. Attempts grow on every begin and on a
        completion or failure that was not begun.
        """
        raise NotImplementedError

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        raise NotImplementedError

    async def _checked_write(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        worker_id: str | None,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None = None,
        error: str | None = None,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        check_id(run_id, "run_id")
        check_index(step_index)
        check_kind(kind)
        if intent is not None:
            check_id(intent, "intent")
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        if input_hash is not None:
            check_id(input_hash, "input_hash")
        check_epoch(lease_epoch)
        return await self._write_step(
            run_id,
            step_index,
            status,
            worker_id,
            intent,
            kind,
            input_hash,
            result,
            error,
            lease_epoch,
        )

    async def begin_step(
        self,
        run_id: str,
        step_index: int,
        intent: str,
        kind: StepKind,
        input_hash: str | None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        check_id(intent, "intent")
        return await self._checked_write(
            run_id,
            step_index,
            "running",
            worker_id,
            intent,
            kind,
            input_hash,
            lease_epoch=lease_epoch,
        )

    async def complete_step(
        self,
        run_id: str,
        step_index: int,
        result: Any,
        intent: str | None = None,
        kind: StepKind = "logic",
        input_hash: str | None = None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        encoded = dumps(result, "result")
        return await self._checked_write(
            run_id,
            step_index,
            "completed",
            worker_id,
            intent,
            kind,
            input_hash,
            result=encoded,
            lease_epoch=lease_epoch,
        )

    async def fail_step(
        self,
        run_id: str,
        step_index: int,
        error: dict[str, Any],
        intent: str | None = None,
        kind: StepKind = "logic",
        input_hash: str | None = None,
        worker_id: str | None = None,
        *,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        check_error(error)
        encoded = dumps(error, "error")
        return await self._checked_write(
            run_id,
            step_index,
            "failed",
            worker_id,
            intent,
            kind,
            input_hash,
            error=encoded,
            lease_epoch=lease_epoch,
        )

    async def append_stream_event(
        self, run_id: str, event_id: str, payload: Any
    ) -> AppendStreamResult:
        return (await self.append_stream_events(run_id, [(event_id, payload)]))[0]


def dumps(value: Any, root: str) -> str:
    """Validated compact JSON text."""
    return dumps_json(value, root=root).decode()


def detach(value: Any) -> Any:
    """A private copy of a parsed JSON value, for stores that keep parsed values in memory:
    a caller editing what it was handed must not edit what later reads return."""
    if type(value) is dict or type(value) is list:
        return orjson.loads(orjson.dumps(value))
    return value
