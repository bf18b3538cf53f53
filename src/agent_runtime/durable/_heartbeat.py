"""Lease heartbeats: one timer per event loop serves every run the loop drives.

A run registers when its task starts and leaves when it ends; only a heartbeat that comes
due renews its lease (in a task of its own). A run that ends before its first renewal is due
costs two dict operations: no timer, no task.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable
from typing import Any

from ._store import DurableRunStore

__all__ = ["Heartbeat"]

log = logging.getLogger("agent_runtime.durable")

# a timer may fire a hair before its time; a renewal this much early does no harm
_EARLY_S = 0.001


class _Clock:
    """The due heartbeats of one event loop: a lane per interval, each in due order (due is
    now + interval, and now only grows), so the next due is the first entry of some lane."""

    __slots__ = ("__weakref__", "_lanes", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._lanes: dict[float, dict[Heartbeat, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add(self, beat: Heartbeat, loop: asyncio.AbstractEventLoop) -> None:
        due = loop.time() + beat.interval
        lane = self._lanes.get(beat.interval)
        if lane is None:
            lane = self._lanes[beat.interval] = {}
        lane[beat] = due
        if due < self._timer_at:
            self._arm(due, loop)

    def discard(self, beat: Heartbeat) -> None:
        """Forget `beat`; a timer armed for it stays and, firing, re-arms for the next due."""
        lane = self._lanes.get(beat.interval)
        if lane is not None:
            lane.pop(beat, None)

    def _arm(self, at: float, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._fire, loop)
        self._timer_at = at

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time() + _EARLY_S
        due: list[Heartbeat] = []
        upcoming = math.inf
        for interval, lane in list(self._lanes.items()):
            for beat, at in lane.items():
                if at > now:
                    upcoming = min(upcoming, at)
                    break
                due.append(beat)
            for beat in due:
                lane.pop(beat, None)
            if not lane:
                del self._lanes[interval]
            for beat in due:
                beat.fire()
            due.clear()
        if upcoming < self._timer_at:
            self._arm(upcoming, loop)


# the loop's clock holds no reference to its loop (it is handed the loop), so an ended loop
# and its clock go away together
_CLOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clock] = weakref.WeakKeyDictionary()


def _clock_of(loop: asyncio.AbstractEventLoop) -> _Clock:
    clock = _CLOCKS.get(loop)
    if clock is None:
        clock = _CLOCKS[loop] = _Clock()
    return clock


class Heartbeat:
    """Renews a run's lease every `interval` seconds while the run's task runs; on refusal
    calls `on_lost` and cancels `target` (the task running the run). `stop` ends it and takes
    back that cancellation, so none outlives the run."""

    __slots__ = (
        "_cancelled",
        "_clock",
        "_loop",
        "_on_lost",
        "_renewal",
        "_stopped",
        "_store",
        "_target",
        "interval",
        "lease_epoch",
        "lease_ms",
        "run_id",
        "worker_id",
    )

    def __init__(
        self,
        store: DurableRunStore,
        run_id: str,
        worker_id: str,
        *,
        lease_epoch: int | None,
        lease_ms: int,
        interval_ms: float,
        target: asyncio.Task[Any] | None,
        on_lost: Callable[[], None],
    ) -> None:
        self._store = store
        self.run_id = run_id
        self.worker_id = worker_id
        self.lease_epoch = lease_epoch
        self.lease_ms = lease_ms
        self.interval = interval_ms / 1000
        self._target = target
        self._on_lost = on_lost
        self._renewal: asyncio.Task[None] | None = None
        self._cancelled = False
        self._stopped = False
        self._loop = loop = asyncio.get_running_loop()
        self._clock = _clock_of(loop)
        self._clock.add(self, loop)

    def fire(self) -> None:
        """Due: renew in a task of its own (the clock's callback must not wait)."""
        if not self._stopped:
            self._renewal = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            ok = await self._store.renew_lease(
                self.run_id, self.worker_id, lease_ms=self.lease_ms, lease_epoch=self.lease_epoch
            )
        except Exception as exc:  # transient store trouble: the fence still protects commits
            log.warning("lease renewal of run %s failed: %s", self.run_id, exc)
            ok = True
        if self._stopped:
            return
        if not ok:
            log.warning("worker %s lost the lease of run %s", self.worker_id, self.run_id)
            self._on_lost()
            if self._target is not None:
                self._cancelled = self._target.cancel()
            return
        self._clock.add(self, self._loop)

    def stop(self) -> None:
        """End the heartbeat; a cancellation it asked of `target` is taken back (`uncancel`),
        so the caller sees only cancellations that came from elsewhere."""
        self._stopped = True
        self._clock.discard(self)
        if self._renewal is not None and not self._renewal.done():
            self._renewal.cancel()
        if self._cancelled and self._target is not None:
            self._cancelled = False
            self._target.uncancel()
