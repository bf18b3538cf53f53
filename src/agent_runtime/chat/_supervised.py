"""`run_supervised_turn`: drain a reconnectable substrate run (a sandbox execution) into the
stream log as it flows.

The substrate keeps running when the worker dies; what the worker must not lose is where it
was. So the run handle is persisted as soon as `start()` returns it (and again whenever an
event carries a newer one), every event is appended to the stream log (idempotent on the
substrate's event id) before it is delivered, and a worker resuming the run re-yields the
logged prefix and then `attach(handle, after_event_id)` continues after the last logged
event. A duplicate the substrate re-sends is dropped by the log, so no event is lost and none
is delivered twice. When the substrate run ends, its handle is marked `completed` (or
`failed`, when the substrate said so through a handle on its last events).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias, runtime_checkable

from ..durable._manifest import DurableRunManifest
from ..durable._records import RunHandle
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore, is_durable_store
from ..durable._validate import check_id, check_lease_ms, error_to_dict
from ..errors import (
    DurableRunLeaseLostError,
    DurableTurnFailedError,
    DurableValueError,
    InvalidArgumentError,
)
from ..jsoncanon import ensure_json
from ._turn import ChatStreamEvent

__all__ = [
    "SandboxReconnectAdapter",
    "SubstrateEvent",
    "SupervisedMode",
    "SupervisedStart",
    "SupervisedTurn",
    "run_supervised_turn",
]

SupervisedMode: TypeAlias = Literal["fresh", "resumed", "replayed"]

_log = logging.getLogger("agent_runtime.chat")
_HEADLESS: set[asyncio.Task[Any]] = set()


class SubstrateEvent(NamedTuple):
    """One event of a substrate run: its id (stable, unique in the run), its payload and,
    optionally, a newer handle of the run (persisted before the event; the last one wins: a
    handle with `status="failed"` says the substrate run failed)."""

    event_id: str
    payload: ChatStreamEvent
    handle: RunHandle | None = None


class SupervisedStart(NamedTuple):
    """What `SandboxReconnectAdapter.start()` returns: where to re-attach, and the events."""

    handle: RunHandle
    events: AsyncIterator[SubstrateEvent]


@runtime_checkable
class SandboxReconnectAdapter(Protocol):
    """A substrate whose runs outlive the worker draining them.

    `start()` launches the run and returns its handle with the event stream; `attach(handle,
    after_event_id)` streams the same run's events after `after_event_id` (from the start when
    None). Both streams end when the run ends. Re-sending an event already seen is harmless.
    """

    def start(self) -> Awaitable[SupervisedStart]: ...

    def attach(
        self, handle: RunHandle, after_event_id: str | None
    ) -> AsyncIterator[SubstrateEvent]: ...


def _check_substrate_event(item: Any) -> tuple[str, ChatStreamEvent, RunHandle | None]:
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise InvalidArgumentError(
            "substrate events must be (event_id, payload[, handle])", path="event"
        )
    event_id, payload = item[0], item[1]
    handle = item[2] if len(item) == 3 else None
    if handle is not None and not isinstance(handle, RunHandle):
        raise InvalidArgumentError("an event's handle must be a RunHandle or None", path="handle")
    check_id(event_id, "event_id")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise InvalidArgumentError(
            "event payloads must be dicts with a string `type`", path="event"
        )
    ensure_json(payload, root="event")
    return event_id, payload, handle


def _resumable(handle: RunHandle | None) -> bool:
    """A handle whose substrate run has not ended: re-attach to it."""
    return handle is not None and handle.status in (None, "running")


class SupervisedTurn:
    """The client-visible events of one supervised run; iterate it once.

    `mode` is `fresh`, `resumed` or `replayed` once the first event is out (or iteration
    ended); `handle` is the substrate handle. If the consumer stops early the drain keeps
    going headless until the substrate run ends; `wait()` waits for it.
    """

    def __init__(
        self,
        store: DurableRunStore,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        adapter: SandboxReconnectAdapter,
        lease_ms: int,
        heartbeat_ms: int,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.manifest = manifest
        self.worker_id = worker_id
        self.adapter = adapter
        self.lease_ms = lease_ms
        self.heartbeat_ms = heartbeat_ms
        self.mode: SupervisedMode | None = None
        self.handle: RunHandle | None = None
        self.events = 0
        self._last_id: str | None = None
        self._iterated = False
        self._task: asyncio.Task[None] | None = None

    def __aiter__(self) -> AsyncIterator[ChatStreamEvent]:
        if self._iterated:
            raise InvalidArgumentError("a SupervisedTurn can be iterated once", path="turn")
        self._iterated = True
        return self._serve()

    async def wait(self) -> None:
        """Wait for a drain that went headless to end."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _serve(self) -> AsyncIterator[ChatStreamEvent]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        detached = False

        def deliver(payload: ChatStreamEvent) -> None:
            self.events += 1
            if not detached:
                queue.put_nowait(("event", payload))

        async def drive() -> None:
            try:
                await self._drive(deliver)
            except BaseException as exc:
                queue.put_nowait(("error", exc))
                if not isinstance(exc, Exception):
                    raise
                return
            queue.put_nowait(("done", None))

        task = asyncio.get_running_loop().create_task(drive())
        self._task = task
        _HEADLESS.add(task)
        task.add_done_callback(_HEADLESS.discard)
        finished = False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                    continue
                finished = True
                if kind == "error":
                    raise value
                return
        finally:
            if not finished:
                detached = True

    async def _drive(self, deliver: Any) -> None:
        store, run_id = self.store, self.run_id
        run, _, lease = await store.start_or_resume(
            run_id, self.manifest, self.worker_id, lease_ms=self.lease_ms
        )
        logged = await store.read_stream_events(run_id)
        self.handle = run.handle
        if run.status == "completed" and lease is None:
            self.mode = "replayed"
            for rec in logged:
                deliver(rec.payload)
            return
        epoch = run.lease_epoch
        lost = asyncio.Event()
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(epoch, lost))
        last_id: str | None = None
        try:
            for rec in logged:
                last_id = rec.event_id
                deliver(rec.payload)
            if run.handle is not None and run.handle.status == "completed":
                self.mode = "resumed"  # the substrate run ended: everything it said is logged
            elif run.handle is not None and _resumable(run.handle):
                self.mode = "resumed"
                await self._drain(self.adapter.attach(run.handle, last_id), deliver, lost)
            else:  # never started, or its substrate run failed: start a new one
                self.mode = "fresh" if not logged else "resumed"
                started = await self.adapter.start()
                if not isinstance(started, tuple) or not isinstance(started[0], RunHandle):
                    raise InvalidArgumentError(
                        "start() must return SupervisedStart(handle, events)", path="start"
                    )
                self.handle = started[0]
                await store.set_run_handle(run_id, started[0])  # re-attachable from now on
                await self._drain(started[1], deliver, lost)
            last_id = self._last_id or last_id
            handle = self.handle
            if handle is not None and handle.status == "failed":
                raise DurableTurnFailedError(
                    f"the substrate run of {run_id!r} failed", run_id=run_id
                )
            if handle is not None and _resumable(handle):
                self.handle = dataclasses.replace(handle, status="completed")
                await store.set_run_handle(run_id, self.handle)
        except asyncio.CancelledError:
            heartbeat.cancel()
            await asyncio.shield(
                store.end_run(run_id, self.worker_id, "suspended", None, lease_epoch=epoch)
            )
            raise
        except DurableRunLeaseLostError:
            heartbeat.cancel()
            raise
        except Exception as exc:
            heartbeat.cancel()
            if not lost.is_set():
                await store.end_run(
                    run_id,
                    self.worker_id,
                    "failed",
                    {"error": error_to_dict(exc)},
                    lease_epoch=epoch,
                )
            raise
        heartbeat.cancel()
        outcome = {"events": self.events, "last_event_id": last_id}
        await store.end_run(run_id, self.worker_id, "completed", outcome, lease_epoch=epoch)

    async def _drain(
        self, stream: AsyncIterator[SubstrateEvent], deliver: Any, lost: asyncio.Event
    ) -> None:
        """Log each substrate event (its handle first), then deliver it unless a duplicate."""
        store, run_id = self.store, self.run_id
        try:
            async for item in stream:
                event_id, payload, handle = _check_substrate_event(item)
                if lost.is_set():
                    raise DurableRunLeaseLostError(
                        f"worker {self.worker_id!r} lost the lease of run {run_id!r}",
                        run_id=run_id,
                    )
                if handle is not None:
                    self.handle = handle
                    await store.set_run_handle(run_id, handle)
                res = await store.append_stream_event(run_id, event_id, payload)
                if res.accepted:  # a duplicate was delivered when it was first logged
                    self._last_id = event_id
                    deliver(payload)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _heartbeat(self, epoch: int, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_ms / 1000)
            try:
                ok = await self.store.renew_lease(
                    self.run_id, self.worker_id, lease_ms=self.lease_ms, lease_epoch=epoch
                )
            except Exception as exc:  # transient store trouble: the log still dedups
                _log.warning("lease renewal of run %s failed: %s", self.run_id, exc)
                continue
            if not ok:
                _log.warning("worker %s lost the lease of run %s", self.worker_id, self.run_id)
                lost.set()
                return


def run_supervised_turn(
    store: DurableRunStore,
    run_id: str,
    manifest: DurableRunManifest,
    worker_id: str,
    adapter: SandboxReconnectAdapter,
    lease_ms: int = DEFAULT_LEASE_MS,
    heartbeat_ms: int | None = None,
) -> SupervisedTurn:
    """Drain the substrate run `run_id` through the stream log: `fresh` starts it, `resumed`
    re-yields the logged prefix then attaches after the last logged event, `replayed` yields
    the whole log of a completed run. Another live holder raises `DurableRunLeaseHeldError`
    when iteration starts; bad arguments raise `DurableValueError` here."""
    check_id(run_id, "run_id")
    check_id(worker_id, "worker_id")
    check_lease_ms(lease_ms)
    if not is_durable_store(store):
        raise DurableValueError("store must be a DurableRunStore", path="store")
    if not isinstance(manifest, DurableRunManifest):
        raise DurableValueError("manifest must be a DurableRunManifest", path="manifest")
    if not isinstance(adapter, SandboxReconnectAdapter):
        raise DurableValueError("adapter must have start() and attach()", path="adapter")
    beat = lease_ms // 3 if heartbeat_ms is None else heartbeat_ms
    if type(beat) is not int or not 0 < beat < lease_ms:
        raise DurableValueError(
            "heartbeat_ms must be an int between 0 and lease_ms (exclusive)", path="heartbeat_ms"
        )
    return SupervisedTurn(store, run_id, manifest, worker_id, adapter, lease_ms, beat)
