"""What both dialect encoders share: a `Timeline` over the log whose sink is the encoder, the
SSE frames its callbacks queue, and `encode(record)` handing them out with the record's seq."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ...durable import StreamEventRecord
from ._timeline import MUTED, Timeline, TimelineState

__all__ = ["FrameEncoder", "sse_frame"]

_dumps = orjson.dumps


def sse_frame(event: dict[str, Any]) -> bytes:
    """One SSE `data:` frame of a JSON event."""
    return b"data: " + _dumps(event) + b"\n\n"


class FrameEncoder:
    """The log up to the cursor (`after`, or the fold `state` there) folded silently, then the
    encoder as the timeline's sink; its callbacks append frames to `_frames`."""

    __slots__ = ("_delta_head", "_frames", "timeline")

    def __init__(
        self, *, after: Iterable[StreamEventRecord] = (), state: TimelineState | None = None
    ) -> None:
        self._frames: list[bytes] = []
        self._delta_head: tuple[str, bytes] | None = None  # a part's delta frame, to its text
        self.timeline = Timeline(MUTED)
        if state is not None:
            self.timeline.restore(state)
        for record in after:
            self.timeline.feed(record)
        self.timeline.sink = self  # type: ignore[assignment]

    def encode(self, record: StreamEventRecord) -> bytes:
        """The frames of one log record; the last carries `id: <seq>`."""
        frames = self._frames
        self.timeline.feed(record)
        if not frames:
            return b""
        frames[-1] = b"id: %d\n" % record.seq + frames[-1]
        out = b"".join(frames)
        frames.clear()
        return out
