"""`AppendBatcher`: gather what a producer pushes into batches logged by one call each.

A durable stream appends each event before a client sees it. One transaction per event makes
the store's round trip the cost of every event, so a writer task takes whatever was pushed
while its previous flush was in flight, or within `max_delay_s` of the first pending item,
whichever comes first, and stops gathering early at `max_items` items or `max_bytes` (each
item's size as `size(item)` says). A producer faster than the store waits: `push` says when
the pending batch is full and `room()` returns once the writer has taken it, so at most one
batch waits while one is written. The writer task starts only when a batch is due (its window
ended, it is full, or a `sync` asks): a short stream closed within its first window is logged
by `close` itself, in one call, with no task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .._aio import wake as _wake

__all__ = ["AppendBatcher"]

T = TypeVar("T")
Flush = Callable[[list[T], "bool | None"], Awaitable[None]]


class AppendBatcher(Generic[T]):
    """A writer task that calls `flush(items, end)` with each batch, in push order.

    `end` is None for every batch but the last, which gets `close(end)`'s value (the final
    batch may be empty). A flush that raises stops the writer: `failed` turns true, pushes
    are dropped, and `close` raises the error. `cancel()` stops at once, flushing nothing more.
    """

    def __init__(
        self,
        flush: Flush[T],
        *,
        max_items: int,
        max_bytes: int,
        max_delay_s: float,
        size: Callable[[T], int] | None = None,
    ) -> None:
        self._flush = flush
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._delay = max_delay_s
        self._size = size
        self._loop = asyncio.get_running_loop()
        self._pending: list[T] = []
        self._bytes = 0
        self._first_at = 0.0  # when the oldest pending item was pushed
        self._end: bool | None = None
        self._closing = False
        self._urgent = False  # flush what is pending now (a `sync`)
        self._idle = False  # the writer waits for a first item: any push wakes it
        self._wake: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._synced: list[tuple[int, asyncio.Future[None]]] = []
        self._pushed = 0
        self._flushed = 0
        self._task: asyncio.Task[None] | None = None  # started when a batch is due
        self._timer: asyncio.TimerHandle | None = None  # the first window, before the task
        self._stopped = False  # cancelled, or `close`'s own flush raised, before any task

    def _start(self) -> asyncio.Task[None]:
        """The writer task, started now if it was not yet."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None:
            self._task = self._loop.create_task(self._run())
            self._task.add_done_callback(_retrieve)
        return self._task

    def _fire(self) -> None:
        self._timer = None
        self._start()

    @property
    def failed(self) -> bool:
        """The writer stopped before `close` (a flush raised, or it was cancelled)."""
        return self._task.done() if self._task is not None else self._stopped

    def push(self, item: T) -> bool:
        """Queue `item`; True when the pending batch is full (then `await room()`)."""
        pending = self._pending
        if not pending:
            self._first_at = self._loop.time()
        pending.append(item)
        self._pushed += 1
        if self._size is not None:
            self._bytes += self._size(item)
        full = len(pending) >= self._max_items or self._bytes >= self._max_bytes
        if self._task is None:
            if self._stopped:
                pass  # cancelled: dropped, as a stopped writer drops them
            elif full:
                self._start()
            elif self._timer is None:
                self._timer = self._loop.call_later(self._delay, self._fire)
        elif self._idle or full:
            _wake(self._wake)
        return full

    async def room(self) -> None:
        """Wait until the pending batch has room (or the writer stopped)."""
        while self._is_full() and not self.failed:
            self._start()
            self._room = self._loop.create_future()
            await self._room

    async def sync(self) -> None:
        """Wait until everything pushed so far is flushed (raises a failed flush's error)."""
        if self._flushed >= self._pushed:
            return
        if self._task is None and self._stopped:
            raise asyncio.CancelledError  # cancelled before it could flush
        task = self._start()
        done = self._loop.create_future()
        self._synced.append((self._pushed, done))
        self._urgent = True
        _wake(self._wake)
        await asyncio.wait((done, task), return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            await task  # raises the flush's error
            raise asyncio.CancelledError  # cancelled before it could flush

    async def close(self, end: bool) -> None:
        """Flush what is pending, then a last `flush(rest, end)`, and wait for it."""
        task = self._task
        if task is None:  # nothing was due yet: one last flush here, no writer task
            if self._stopped:
                raise asyncio.CancelledError  # cancelled: nothing more is flushed
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch = self._pending
            self._pending = []
            self._bytes = 0
            self._stopped = True  # closed: later pushes are dropped
            await self._flush(batch, end)
            self._flushed += len(batch)
            return
        if not task.done():
            self._end = end
            self._closing = True
            _wake(self._wake)
        await task

    def cancel(self) -> None:
        """Stop at once; nothing pending is flushed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def _is_full(self) -> bool:
        return len(self._pending) >= self._max_items or self._bytes >= self._max_bytes

    async def _sleep(self, delay: float | None) -> None:
        self._wake = future = self._loop.create_future()
        timer = None if delay is None else self._loop.call_later(delay, _wake, future)
        try:
            await future
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending and not self._closing:
                    self._idle = True
                    try:
                        await self._sleep(None)
                    finally:
                        self._idle = False
                    continue
                if not (self._closing or self._urgent or self._is_full()):
                    wait = self._first_at + self._delay - self._loop.time()
                    if wait > 0:
                        await self._sleep(wait)
                        continue  # woken early by a full batch, a sync or close: re-check
                batch = self._pending
                self._pending = []
                self._bytes = 0
                self._urgent = False
                _wake(self._room)
                last = self._closing
                await self._flush(batch, self._end if last else None)
                self._flushed += len(batch)
                while self._synced and self._synced[0][0] <= self._flushed:
                    _wake(self._synced.pop(0)[1])
                if last:
                    return
        finally:
            _wake(self._room)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a writer's failure as seen: `close` raises it, or it is moot after a cancel."""
    if not task.cancelled():
        task.exception()
