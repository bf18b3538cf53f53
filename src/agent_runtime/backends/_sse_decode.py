"""Incremental Server-Sent Events decoder (WHATWG parsing rules) for streamed HTTP bodies.

Fed raw byte chunks as they arrive, it returns complete events; a chunk boundary may fall
anywhere, even inside a UTF-8 sequence or between CR and LF.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEMessage"]


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One dispatched event: `event` defaults to "message"; `id` only if the event set one."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Stateful decoder: `feed(bytes)` -> complete events; `flush()` at end of body."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr", "_retry", "_started", "_utf8")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:  # one leading byte-order mark is not part of the stream
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        if text.endswith("\r"):
            self._pending_cr = True
        buf = self._buf + text
        if "\r" in buf:
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._buf = lines.pop()
        out: list[SSEMessage] = []
        for line in lines:
            msg = self._line(line)
            if msg is not None:
                out.append(msg)
        return out

    def flush(self) -> list[SSEMessage]:
        """End of stream: an incomplete final event is discarded, per the specification."""
        tail = self._buf + self._utf8.decode(b"", final=True)
        self._buf = ""
        if tail:
            self._line(tail)
        self._data = []
        self._event = ""
        self._id = None
        self._retry = None
        return []

    @property
    def has_partial(self) -> bool:
        """True when bytes of an undispatched event are buffered (a cut inside an event)."""
        return bool(self._buf or self._data or self._event or self._id is not None)

    def _line(self, line: str) -> SSEMessage | None:
        if not line:
            if not self._data and not self._event and self._id is None:
                self._retry = None
                return None
            msg = SSEMessage(
                data="\n".join(self._data),
                event=self._event or "message",
                id=self._id,
                retry=self._retry,
            )
            self._data = []
            self._event = ""
            self._id = None
            self._retry = None
            return msg
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None
