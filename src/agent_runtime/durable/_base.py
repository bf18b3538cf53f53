"""`StoreBase`: the policy half of every `DurableRunStore`, written once.

Each public method checks its arguments and encodes its JSON here, before any I/O, then calls
one hook with arguments already valid (ids checked, JSON as compact text). A store implements
only the hooks: claim, renew, end, write a step, append, and the reads. Optional capabilities
(`stream_length`, `close`, retention) have a default here that a store may override with a
cheaper one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import ConfigurationError, DurableRunError, DurableValueError
from ..jsoncanon import dumps_json, dumps_json_texts
from ._manifest import DurableRunManifest
from ._records import (
    AppendStreamResult,
    EmitEventResult,
    EventRecord,
    RunHandle,
    RunRecord,
    RunStatus,
    StartOrResumeResult,
    StepKind,
    StepRecord,
    StepStatus,
    StreamEventRecord,
)
from ._steps import StepWrite
from ._store import DEFAULT_LEASE_MS
from ._validate import (
    MAX_ID_LENGTH,
    check_after_seq,
    check_end_status,
    check_epoch,
    check_error,
    check_id,
    check_index,
    check_kind,
    check_lease_ms,
    check_limit,
    check_start,
    check_status,
)

__all__ = ["StoreBase", "decode_all", "detach", "dumps"]


class StoreBase:
    """Implements the `DurableRunStore` methods on top of a store's hooks (the `_` methods)."""

    # -- hooks: arguments arrive checked, JSON arrives as text ------------------------------------

    async def _claim(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int
    ) -> StartOrResumeResult:
        """Create the run or check its manifest hash, claim the lease (free, ours or expired:
        the epoch grows) and return the completed steps, atomically. A completed run is
        returned unclaimed with a None expiry."""
        raise NotImplementedError

    async def _renew(
        self, run_id: str, worker_id: str, lease_ms: int, lease_epoch: int | None
    ) -> bool:
        raise NotImplementedError

    async def _end(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: str,
        lease_epoch: int | None,
    ) -> RunRecord:
        """Fenced (when `worker_id` is given): set the status and the outcome text, free the
        lease."""
        raise NotImplementedError

    async def _write_step(self, write: StepWrite) -> StepRecord:
        """Fence, then apply `write` to its position (`_steps.next_step`) in one transaction."""
        raise NotImplementedError

    async def _append(
        self, run_id: str, event_ids: list[str], payloads: list[str]
    ) -> list[AppendStreamResult]:
        """Append a non-empty batch in one transaction: a new id takes the next seq, an id
        already logged (or earlier in the batch) is answered with the stored entry."""
        raise NotImplementedError

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        """Stream entries with `seq > after_seq` (-1 for all), at most `limit`."""
        raise NotImplementedError

    async def _load_run(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    async def _list_runs(self, limit: int, status: RunStatus | None) -> list[RunRecord]:
        raise NotImplementedError

    async def _load_steps(self, run_id: str) -> list[StepRecord]:
        raise NotImplementedError

    async def _load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        raise NotImplementedError

    async def _set_handle(self, run_id: str, handle: RunHandle | None, encoded: str | None) -> None:
        """Store the handle (its JSON text alongside); `DurableRunNotFoundError` for no run."""
        raise NotImplementedError

    async def _emit(self, run_id: str, key: str, payload: str) -> EmitEventResult:
        raise NotImplementedError

    async def _load_event(self, run_id: str, key: str) -> EventRecord | None:
        raise NotImplementedError

    async def _stream_length(self, run_id: str) -> int:
        """Default: read the whole log; stores that know the head override it."""
        return len(await self._read(run_id, -1, None))

    async def _restart_failed(
        self, run_id: str, manifest: DurableRunManifest, entry: tuple[str, str] | None
    ) -> RunRecord | None:
        """Atomically, only while the run is `failed`: drop its steps and keyed events, make
        it a `running` run of `manifest` with a free lease (epoch kept), append `entry`
        (event id, JSON text) to its kept stream log. None when the run is absent or not
        failed (nothing changed)."""
        raise NotImplementedError

    async def _prune(self, prefix: str, age_ms: int, at_ms: int | None, dry_run: bool) -> list[str]:
        """Delete (or with `dry_run` list) the runs under `prefix` idle for `age_ms` before
        `at_ms` (None: the store's clock), see `prune_idle_runs`. Default: this store cannot."""
        raise ConfigurationError(f"{type(self).__name__} cannot prune runs")

    async def _usage(self, prefix: str) -> int:
        """Default: through the public reads (the JSON of manifests, outcomes, step results
        and errors, stream payloads and ids)."""
        total = 0
        for run in await self._list_runs(2**31, None):
            if not run.run_id.startswith(prefix):
                continue
            total += len(orjson.dumps(run.manifest)) + len(orjson.dumps(run.outcome))
            for step in await self._load_steps(run.run_id):
                total += len(orjson.dumps(step.result)) + len(orjson.dumps(step.error))
            for rec in await self._read(run.run_id, -1, None):
                total += len(orjson.dumps(rec.payload)) + len(rec.event_id)
        return total

    # -- runs and leases ---------------------------------------------------------------------

    async def start_or_resume(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> StartOrResumeResult:
        check_start(run_id, manifest, worker_id, lease_ms)
        return await self._claim(run_id, manifest, worker_id, lease_ms)

    async def renew_lease(
        self,
        run_id: str,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
        *,
        lease_epoch: int | None = None,
    ) -> bool:
        check_id(run_id, "run_id")
        check_id(worker_id, "worker_id")
        check_lease_ms(lease_ms)
        check_epoch(lease_epoch)
        return await self._renew(run_id, worker_id, lease_ms, lease_epoch)

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        check_id(run_id, "run_id")
        check_end_status(status)
        check_epoch(lease_epoch)
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        return await self._end(run_id, worker_id, status, dumps(outcome, "outcome"), lease_epoch)

    async def load_run(self, run_id: str) -> RunRecord | None:
        return await self._load_run(check_id(run_id, "run_id"))

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        check_limit(limit, optional=False)
        if status is not None:
            check_status(status)
        return await self._list_runs(limit, status)

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        check_id(run_id, "run_id")
        if handle is not None and not isinstance(handle, RunHandle):
            raise DurableRunError("handle must be a RunHandle or None", run_id=run_id)
        encoded = None if handle is None else dumps(handle.to_dict(), "handle")
        await self._set_handle(run_id, handle, encoded)

    # -- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return await self._load_steps(check_id(run_id, "run_id"))

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        check_id(run_id, "run_id")
        return await self._load_step(run_id, check_index(step_index))

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
            intent,
            kind,
            input_hash,
            None,
            None,
            worker_id,
            lease_epoch,
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
            intent,
            kind,
            input_hash,
            encoded,
            None,
            worker_id,
            lease_epoch,
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
        encoded = dumps(check_error(error), "error")
        return await self._checked_write(
            run_id,
            step_index,
            "failed",
            intent,
            kind,
            input_hash,
            None,
            encoded,
            worker_id,
            lease_epoch,
        )

    async def _checked_write(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None,
        error: str | None,
        worker_id: str | None,
        lease_epoch: int | None,
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
            StepWrite(
                run_id,
                step_index,
                status,
                intent,
                kind,
                input_hash,
                result,
                error,
                worker_id,
                lease_epoch,
            )
        )

    # -- events ------------------------------------------------------------------------------

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        check_id(run_id, "run_id")
        check_id(key, "key")
        return await self._emit(run_id, key, dumps(payload, "payload"))

    async def load_event(self, run_id: str, key: str) -> EventRecord | None:
        check_id(run_id, "run_id")
        return await self._load_event(run_id, check_id(key, "key"))

    # -- stream log --------------------------------------------------------------------------

    async def append_stream_event(
        self, run_id: str, event_id: str, payload: Any
    ) -> AppendStreamResult:
        check_id(run_id, "run_id")
        check_id(event_id, "event_id")
        return (await self._append(run_id, [event_id], [dumps(payload, "payload")]))[0]

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        check_id(run_id, "run_id")
        checked = _checked_batch(events)
        if checked is None:
            return []
        return await self._append(run_id, *checked)

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        check_id(run_id, "run_id")
        check_after_seq(after_seq)
        check_limit(limit, optional=True)
        return await self._read(run_id, -1 if after_seq is None else max(after_seq, -1), limit)

    async def stream_length(self, run_id: str) -> int:
        """How many entries the run's stream log holds (its next seq: the log is gapless)."""
        return await self._stream_length(check_id(run_id, "run_id"))

    # -- restarting a failed run -------------------------------------------------------------

    async def restart_failed_run(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        log_entry: tuple[str, Any] | None = None,
    ) -> RunRecord | None:
        """Make the failed run `run_id` a new attempt of `manifest` (the same or another
        input), in one atomic change that happens only while the run is `failed`: its steps
        and keyed events are dropped, it is `running` with a free lease (the next
        `start_or_resume` of `manifest` claims it; the lease epoch goes on counting, so
        fencing holds across the restart) and `log_entry` (`(event_id, payload)`, e.g. the
        marker where the new attempt starts) is appended to its stream log, which is kept:
        its seqs go on, so a reader at any cursor stays correct. Returns the restarted run,
        or None when the run is absent or not failed (then nothing changed)."""
        check_id(run_id, "run_id")
        if not isinstance(manifest, DurableRunManifest):
            raise DurableRunError("manifest must be a DurableRunManifest", run_id=run_id)
        entry = None
        if log_entry is not None:
            event_id, payload = log_entry
            entry = (check_id(event_id, "event_id"), dumps(payload, "payload"))
        return await self._restart_failed(run_id, manifest, entry)

    # -- retention ---------------------------------------------------------------------------

    async def prune_idle_runs(
        self,
        prefix: str,
        older_than_ms: int,
        *,
        now_ms: int | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete every run under `prefix` last updated more than `older_than_ms` before
        `now_ms` (None: the store's clock) that no worker holds a live lease on, with its
        steps, events and stream log: a later run of the same id starts afresh, its log at
        seq 0. A run resumed meanwhile stays. `dry_run` only lists them. `ConfigurationError`
        for a store that cannot prune."""
        _check_prefix(prefix)
        if type(older_than_ms) is not int or older_than_ms <= 0:
            raise DurableValueError("older_than_ms must be a positive int", path="older_than_ms")
        if now_ms is not None and type(now_ms) is not int:
            raise DurableValueError("now_ms must be an int or None", path="now_ms")
        return await self._prune(prefix, older_than_ms, now_ms, bool(dry_run))

    async def stored_bytes(self, prefix: str) -> int:
        """Bytes of JSON stored for the runs whose id starts with `prefix` (manifests,
        outcomes, step results, events and stream log): what a per-tenant quota counts."""
        return await self._usage(_check_prefix(prefix))

    async def close(self) -> None:
        """Release what the store holds (connections, caches); the default holds nothing."""
        return None


def _check_prefix(prefix: Any) -> str:
    if type(prefix) is not str or "\x00" in prefix or len(prefix) > MAX_ID_LENGTH:
        raise DurableValueError(
            f"prefix must be a string of at most {MAX_ID_LENGTH} characters without NUL",
            path="prefix",
        )
    return prefix


def _checked_batch(events: Sequence[tuple[str, Any]]) -> tuple[list[str], list[str]] | None:
    """The ids and payload texts of a batch of `(event_id, payload)` pairs, None when empty.
    Checked in bulk (one join of all ids, the payloads' types a depth at a time); any doubt
    takes the path checking event by event, which raises the first bad one in order."""
    try:
        columns = list(zip(*events, strict=True))
    except (TypeError, ValueError):
        raise DurableValueError("events must be (event_id, payload) pairs", path="events") from None
    if not columns:
        return None
    if len(columns) != 2:
        raise DurableValueError("events must be (event_id, payload) pairs", path="events")
    ids, values = list(columns[0]), list(columns[1])
    try:
        joined = "".join(ids)  # refuses a non-str id
    except TypeError:
        joined = "\x00"
    # every id a str (joined), non-empty, short, ASCII (so valid text) and without NUL
    if (
        joined.isascii()
        and "\x00" not in joined
        and "" not in ids
        and max(map(len, ids)) <= MAX_ID_LENGTH
    ):
        texts = dumps_json_texts(values)
        if texts is not None:
            return ids, texts
    for i, (event_id, payload) in enumerate(zip(ids, values, strict=True)):
        check_id(event_id, "event_id")
        dumps_json(payload, root=f"events[{i}].payload")
    return ids, [dumps(v, "payload") for v in values]  # a non-ASCII id: valid, just slower


def dumps(value: Any, root: str) -> str:
    """Validated compact JSON text; `DurableValueError` names the bad value's path from `root`."""
    return dumps_json(value, root=root).decode()


def decode_all(texts: list[str]) -> list[Any]:
    """Parse many JSON texts (each validated compact JSON) in one call: a fresh value each."""
    return list(orjson.loads("[" + ",".join(texts) + "]")) if texts else []


def detach(value: Any) -> Any:
    """A private copy of a parsed JSON value, for stores that keep parsed values in memory:
    a caller editing what it was handed must not edit what later reads return."""
    if type(value) is dict or type(value) is list:
        return orjson.loads(orjson.dumps(value))
    return value
