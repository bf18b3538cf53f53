"""Reading a backend's events until the turn is stopped: an abort ends the read it interrupts
without cancelling the turn's task; any other cancellation still reaches the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent_runtime.server._turns import _until_aborted
from agent_runtime.types import AbortController


class Backend:
    """Yields `ready` events, then blocks until closed; records how it ended."""

    def __init__(self, ready: int) -> None:
        self.ready = ready
        self.ended: str | None = None

    async def events(self) -> AsyncIterator[int]:
        try:
            for i in range(self.ready):
                yield i
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise
        finally:
            self.ended = self.ended or "closed"


async def test_an_abort_during_a_read_ends_the_events_and_leaves_the_task_running() -> None:
    backend = Backend(2)
    controller = AbortController()
    seen: list[int] = []

    async def consume() -> str:
        async for event in _until_aborted(backend.events(), controller):
            seen.append(event)
        await asyncio.sleep(0)  # the task still runs: its cancellation was taken back
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return "done"

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    controller.abort("stop")
    assert await task == "done"
    assert seen == [0, 1] and backend.ended == "cancelled"


async def test_a_cancellation_from_elsewhere_propagates() -> None:
    backend = Backend(1)
    controller = AbortController()

    async def consume() -> None:
        async for _event in _until_aborted(backend.events(), controller):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.ended == "cancelled" and not controller.signal.aborted


async def test_an_abort_and_a_cancellation_together_still_cancel() -> None:
    backend = Backend(0)
    controller = AbortController()

    async def consume() -> None:
        async for _event in _until_aborted(backend.events(), controller):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    controller.abort("stop")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_aborted_signal_reads_nothing() -> None:
    backend = Backend(3)
    controller = AbortController()
    controller.abort()
    assert [e async for e in _until_aborted(backend.events(), controller)] == []
    assert backend.ended is None  # never started
