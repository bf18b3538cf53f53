"""The interrupts a thread has open: the AG-UI interrupts of its latest turn when that turn
ended `blocked` by the readiness gate (one per gate question), and the rule a new run on the
thread must follow while any is open.

While interrupts are open, the next run must answer them: its `resume` entries name every
open interrupt and no other. A new message without answers, answers with no interrupt open,
or answers that leave one out are refused as a `RUN_ERROR` (its `code` says which) before
anything runs; re-posting a turn already asked (a replay, the same answers again) is not a new
run and passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ...durable import DurableRunStore
from ._requests import AguiResume
from ._timeline import Timeline, _Muted
from .agui import interrupts_for

__all__ = ["InterruptRefusal", "check_resume", "open_interrupts", "refusal_body"]


class _Blocked(_Muted):
    """A silent sink that remembers how the turn was blocked (a restart forgets it)."""

    def __init__(self) -> None:
        self.block: tuple[str, list[dict[str, Any]]] | None = None

    def restarted(self, attempt: int) -> None:
        self.block = None

    def blocked(self, reason: str, questions: list[dict[str, Any]]) -> None:
        self.block = (reason, questions)


async def open_interrupts(store: DurableRunStore, run_id: str) -> list[dict[str, Any]]:
    """The AG-UI interrupts the turn `run_id` left open (none unless it ended blocked)."""
    sink = _Blocked()
    timeline = Timeline(sink)
    for record in await store.read_stream_events(run_id):
        timeline.feed(record)
    if sink.block is None or not timeline.ended:
        return []
    return interrupts_for(*sink.block)


class InterruptRefusal(Exception):
    """A run that does not follow the open interrupts: its `RUN_ERROR` code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_resume(open_ids: Sequence[str], resume: Sequence[AguiResume]) -> None:
    """Refuse (`InterruptRefusal`) a new run whose `resume` does not answer exactly the open
    interrupts `open_ids`."""
    answered = [entry.interrupt_id for entry in resume]
    if not open_ids:
        if answered:
            raise InterruptRefusal(
                "no_open_interrupt", "the thread has no open interrupt to resume"
            )
        return
    if not answered:
        raise InterruptRefusal(
            "interrupt_pending",
            f"the thread has {len(open_ids)} open interrupt(s) ({', '.join(open_ids)}): "
            "answer them with resume entries before sending anything else",
        )
    unknown = [i for i in answered if i not in open_ids]
    if unknown:
        raise InterruptRefusal(
            "unknown_interrupt", f"resume names interrupts that are not open: {', '.join(unknown)}"
        )
    missing = [i for i in open_ids if i not in answered]
    if missing:
        raise InterruptRefusal(
            "resume_incomplete",
            f"resume must answer every open interrupt; missing: {', '.join(missing)}",
        )


def refusal_body(refusal: InterruptRefusal) -> bytes:
    """The whole event stream of a refused run: one `RUN_ERROR`."""
    event = {"type": "RUN_ERROR", "message": refusal.message, "code": refusal.code}
    return b"data: " + orjson.dumps(event) + b"\n\n"
