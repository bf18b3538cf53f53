"""Make a backend's awaits (connect, read, backoff sleep) honour the caller's `AbortSignal`.

An abort cancels the consuming task only while it waits inside one of the guarded awaits, so
the request or sleep is interrupted at once and a consumer suspended elsewhere is never hit
by a stray cancellation; the abort then surfaces as `signal.throw_if_aborted()`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

from ..types import AbortSignal

__all__ = ["AbortGuard"]

_T = TypeVar("_T")


class AbortGuard:
    """One per stream: `await guard.run(awaitable)` races it against the signal."""

    __slots__ = ("_owner", "_remove", "_sent", "_waiting", "signal")

    def __init__(self, signal: AbortSignal | None) -> None:
        self.signal = signal
        self._owner: asyncio.Task[object] | None = None
        self._waiting = False
        self._sent = False
        self._remove = signal.add_listener(self._on_abort) if signal is not None else None

    def _on_abort(self) -> None:
        owner = self._owner
        if self._waiting and owner is not None and not owner.done():
            self._sent = True
            owner.cancel()

    def check(self) -> None:
        """Raise the abort (see `AbortSignal.throw_if_aborted`) when the signal tripped."""
        if self.signal is not None and self.signal.aborted:
            self.signal.throw_if_aborted()

    async def run(self, awaitable: Awaitable[_T]) -> _T:
        """The awaitable's result; the abort instead when the signal trips meanwhile."""
        if self.signal is None:
            return await awaitable
        if self.signal.aborted:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            self.signal.throw_if_aborted()
        self._owner = asyncio.current_task()
        self._waiting = True
        try:
            result = await awaitable
        except asyncio.CancelledError:
            if self._withdraw():
                self.signal.throw_if_aborted()
            raise
        finally:
            self._waiting = False
        if self._withdraw():  # the cancellation was swallowed by the awaited code
            self.signal.throw_if_aborted()
        return result

    def _withdraw(self) -> bool:
        if not self._sent:
            return False
        self._sent = False
        if self._owner is not None:
            self._owner.uncancel()
        return True

    def close(self) -> None:
        """Stop listening to the signal."""
        if self._remove is not None:
            self._remove()
            self._remove = None
