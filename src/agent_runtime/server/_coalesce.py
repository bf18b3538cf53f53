"""`coalesce`: a streaming body whose chunks produced within one event-loop tick are sent as one.

A turn or a replay of its log yields one line per event; sent one by one, each line is a
write to the socket (and a chunk of the chunked encoding). A pump task reads the body ahead
and the response takes everything that queued up since its last send, so a replay of a long
log goes out in a few large writes while a live turn's line is sent as soon as it exists (no
timer: the response waits only when nothing is queued). The bytes are the body's, in order.
At most `max_bytes` are read ahead; the body then waits for the response (a slow client).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .._aio import wake as _wake

__all__ = ["MAX_COALESCED_BYTES", "coalesce"]

MAX_COALESCED_BYTES = 256 * 1024


class _Pump:
    """Reads `body` into `chunks` in a task of its own; `ready` wakes the response."""

    def __init__(self, body: AsyncIterator[bytes], max_bytes: int) -> None:
        self.body = body
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.ready: asyncio.Future[None] | None = None
        self.room: asyncio.Future[None] | None = None
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self.body:
                self.chunks.append(chunk)
                self.size += len(chunk)
                _wake(self.ready)
                while self.size >= self.max_bytes:
                    self.room = loop.create_future()
                    await self.room
        finally:
            _wake(self.ready)
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                await aclose()

    def take(self) -> bytes:
        chunks = self.chunks
        out = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.size = 0
        _wake(self.room)
        return out


async def coalesce(
    body: AsyncIterator[bytes], max_bytes: int = MAX_COALESCED_BYTES
) -> AsyncIterator[bytes]:
    """`body`'s bytes, the chunks it produced since the last one was taken joined in one; its
    error is raised after the chunks before it. Closing this closes `body` too."""
    pump = _Pump(body, max_bytes)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if pump.chunks:
                yield pump.take()
                continue
            if pump.task.done():
                break
            pump.ready = loop.create_future()
            await pump.ready
            pump.ready = None
        pump.task.result()  # the body's error, after what it said before it
    finally:
        if not pump.task.done():
            pump.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump.task  # the client left: the body's own error is moot
