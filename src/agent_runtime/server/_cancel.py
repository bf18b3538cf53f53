"""Stopping a turn: one abort controller per turn this process drives, by durable run id.

`POST /api/runs/{execution_id}/cancel` trips the controller of the turn's producer; the
producer stops reading its backend (the upstream request closes), logs a terminal `final`
event with status `aborted` and ends, so the partial text is checkpointed and the run
completes: every later re-attach replays the stopped turn, none re-runs it. A client that only
disconnects never reaches this: its turn runs on headless.

A cancel can arrive after this process claimed the turn but before its producer registered
(the claim, the step, the producer's start are awaits apart). The caller then says the turn is
`claimed` here (its lease holder is this worker) and the stop is kept for a while: the
producer's controller is born aborted, so the turn stops before the backend says a word.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ..types import AbortController

__all__ = ["STOP_REASON", "TurnCancels"]

STOP_REASON = "stopped by the user"
PENDING_STOP_S = 60.0
"""How long a stop for a claimed turn whose producer has not registered yet is kept."""
MAX_PENDING = 10_000


class TurnCancels:
    """The abort controllers of the turns this process is producing, by durable run id, and
    the stops that arrived for claimed turns before their producer registered."""

    __slots__ = ("_live", "_pending", "before_register")

    def __init__(self) -> None:
        self._live: dict[str, AbortController] = {}
        self._pending: dict[str, tuple[str, float]] = {}
        self.before_register: Callable[[str], Awaitable[None]] | None = None
        """A fault hook for tests: awaited by a producer just before it registers."""

    def register(self, run_id: str) -> AbortController:
        """A fresh controller for the producer of `run_id` (replacing an older one), already
        aborted when a stop for the turn is pending."""
        controller = AbortController()
        self._live[run_id] = controller
        pending = self._pending.pop(run_id, None)
        if pending is not None and pending[1] > time.monotonic():
            controller.abort(pending[0])
        return controller

    def release(self, run_id: str, controller: AbortController) -> None:
        """Forget `controller` once its producer has ended (a newer one is kept)."""
        if self._live.get(run_id) is controller:
            del self._live[run_id]

    def cancel(self, run_id: str, reason: str = STOP_REASON, *, claimed: bool = False) -> bool:
        """Stop the producer of `run_id`; with `claimed` (this process holds the turn's lease)
        a turn whose producer has not registered yet is stopped when it does. False when this
        process is not producing it and it is not `claimed` here."""
        controller = self._live.get(run_id)
        if controller is not None:
            controller.abort(reason)
            return True
        if not claimed:
            return False
        now = time.monotonic()
        if len(self._pending) >= MAX_PENDING:
            self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
            while len(self._pending) >= MAX_PENDING:
                del self._pending[next(iter(self._pending))]
        self._pending[run_id] = (reason, now + PENDING_STOP_S)
        return True

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._live
