"""AppendBatcher: batches by in-flight flush, size, bytes and delay; back-pressure; the last
flush on close; a failed flush stops the writer."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.chat._batcher import AppendBatcher


class Sink:
    """Records each flush; while `gate` is clear a flush waits (a slow store)."""

    def __init__(self, *, fail_at: int | None = None) -> None:
        self.batches: list[tuple[list[int], bool | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.fail_at = fail_at

    async def flush(self, items: list[int], end: bool | None) -> None:
        self.entered.set()
        await self.gate.wait()
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            raise RuntimeError("store refused")
        self.batches.append((list(items), end))

    @property
    def items(self) -> list[int]:
        return [i for batch, _ in self.batches for i in batch]


async def test_items_pushed_while_a_flush_is_in_flight_go_in_one_batch() -> None:
    sink = Sink()
    sink.gate.clear()
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=0)
    b.push(0)
    await sink.entered.wait()  # the first item is being written
    for i in range(1, 50):
        assert not b.push(i)
    sink.gate.set()
    await b.close(True)
    assert sink.batches == [([0], None), (list(range(1, 50)), True)]


async def test_close_flushes_what_is_pending_at_once_with_the_end_flag() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=3600)
    for i in range(5):
        b.push(i)
    await asyncio.sleep(0)
    await b.close(False)  # an hour-long window does not hold the last batch back
    assert sink.batches == [(list(range(5)), False)]


async def test_a_full_batch_is_flushed_without_waiting_for_the_window() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=4, max_bytes=1 << 20, max_delay_s=3600)
    full = [b.push(i) for i in range(4)]
    assert full == [False, False, False, True]
    await b.room()
    await b.sync()  # waits for the flush the full batch triggered, not the hour
    assert sink.batches == [([0, 1, 2, 3], None)]
    await b.close(True)
    assert sink.batches[-1] == ([], True)


async def test_the_byte_limit_ends_a_batch() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=1000, max_bytes=10, max_delay_s=3600, size=lambda i: i)
    assert not b.push(4)
    assert b.push(6)  # 10 bytes: full
    await b.room()
    await b.sync()
    assert sink.batches == [([4, 6], None)]
    await b.close(True)


async def test_a_producer_faster_than_the_store_waits_for_room() -> None:
    sink = Sink()
    sink.gate.clear()
    b = AppendBatcher(sink.flush, max_items=3, max_bytes=1 << 20, max_delay_s=0)
    pushed = 0

    async def produce() -> None:
        nonlocal pushed
        for i in range(20):
            if b.push(i):
                await b.room()
            pushed += 1

    task = asyncio.create_task(produce())
    await sink.entered.wait()
    for _ in range(20):
        await asyncio.sleep(0)
    # one batch in flight, one full batch pending: the producer waits for room
    assert not task.done()
    assert pushed <= 3 + 3
    assert len(b._pending) <= 3
    sink.gate.set()
    await task
    await b.close(True)
    assert sink.items == list(range(20))
    assert all(len(batch) <= 3 for batch, _ in sink.batches)


async def test_a_failed_flush_stops_the_writer_and_close_raises() -> None:
    sink = Sink(fail_at=1)
    b = AppendBatcher(sink.flush, max_items=2, max_bytes=1 << 20, max_delay_s=0)
    b.push(0)
    await b.sync()
    b.push(1)
    b.push(2)
    await b.room()  # returns: the writer stopped
    with pytest.raises(RuntimeError):
        await b.sync()
    assert b.failed
    with pytest.raises(RuntimeError, match="store refused"):
        await b.close(True)
    assert sink.items == [0]


async def test_cancel_flushes_nothing_more() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=3600)
    b.push(1)
    await asyncio.sleep(0)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b.close(True)
    assert sink.batches == []


async def test_a_stream_closed_within_its_first_window_is_logged_by_close_alone() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=3600)
    b.push(0)
    b.push(1)
    await b.close(True)
    assert sink.batches == [([0, 1], True)]
    assert b._task is None  # no writer task was needed


async def test_the_first_window_ends_with_a_flush_without_close() -> None:
    sink = Sink()
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=0.01)
    b.push(0)
    b.push(1)
    for _ in range(100):
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    assert sink.batches == [([0, 1], None)]
    b.push(2)
    await b.close(False)
    assert sink.batches == [([0, 1], None), ([2], False)]


async def test_a_close_that_fails_before_any_writer_raises_and_marks_failed() -> None:
    sink = Sink(fail_at=0)
    b = AppendBatcher(sink.flush, max_items=100, max_bytes=1 << 20, max_delay_s=3600)
    b.push(0)
    with pytest.raises(RuntimeError, match="store refused"):
        await b.close(True)
    assert b.failed and sink.batches == []
