"""Small asyncio pieces the hot paths share."""

from __future__ import annotations

import asyncio

__all__ = ["wake"]


def wake(future: asyncio.Future[None] | None) -> None:
    """Resolve a waiter's future if there is one still waiting (a no-op otherwise)."""
    if future is not None and not future.done():
        future.set_result(None)
