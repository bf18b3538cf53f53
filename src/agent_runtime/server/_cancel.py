"""Stopping a turn: one abort controller per turn this process drives, by durable run id.

`POST /api/runs/{execution_id}/cancel` trips the controller of the turn's producer; the
producer stops reading its backend (the upstream request closes), logs a terminal `final`
event with status `aborted` and ends, so the partial text is checkpointed and the run
completes: every later re-attach replays the stopped turn, none re-runs it. A client that only
disconnects never reaches this: its turn runs on headless.
"""

from __future__ import annotations

from ..types import AbortController

__all__ = ["STOP_REASON", "TurnCancels"]

STOP_REASON = "stopped by the user"


class TurnCancels:
    """The abort controllers of the turns this process is producing, by durable run id."""

    __slots__ = ("_live",)

    def __init__(self) -> None:
        self._live: dict[str, AbortController] = {}

    def register(self, run_id: str) -> AbortController:
        """A fresh controller for the producer of `run_id` (replacing an older one)."""
        controller = AbortController()
        self._live[run_id] = controller
        return controller

    def release(self, run_id: str, controller: AbortController) -> None:
        """Forget `controller` once its producer has ended (a newer one is kept)."""
        if self._live.get(run_id) is controller:
            del self._live[run_id]

    def cancel(self, run_id: str, reason: str = STOP_REASON) -> bool:
        """Stop the producer of `run_id`; False when this process is not producing it."""
        controller = self._live.get(run_id)
        if controller is None:
            return False
        controller.abort(reason)
        return True

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._live
