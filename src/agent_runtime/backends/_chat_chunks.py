"""Split a streamed chat-completions body into payloads, SSE or NDJSON (ORIGINAL §7.5).

Chunks end at blank lines; the `data:` lines of a chunk are joined with newlines. A line that
is not SSE syntax (`data:`, `event:`, `id:`, `retry:`, a `:` comment) is a chunk of its own,
so an NDJSON body works too. Byte boundaries may fall anywhere, even inside a UTF-8 sequence
or between CR and LF.
"""

from __future__ import annotations

import codecs

__all__ = ["ChatChunkSplitter"]

_SSE_FIELDS = ("event:", "id:", "retry:")


class ChatChunkSplitter:
    """`feed(bytes)` -> complete payloads; `finish()` -> the remainder at the end of the body
    and whether it was an SSE chunk left unterminated (no blank line after it)."""

    __slots__ = ("_buf", "_data", "_pending_cr", "_started", "_utf8", "saw_data")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._pending_cr = False
        self._started = False
        self._data: list[str] = []
        self.saw_data = False
        """Whether any `data:` line arrived (the body is SSE)."""

    def feed(self, chunk: bytes) -> list[str]:
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
        out: list[str] = []
        for line in lines:
            self._line(line, out)
        return out

    def finish(self) -> tuple[list[str], bool]:
        out: list[str] = []
        tail = self._buf + self._utf8.decode(b"", final=True)
        self._buf = ""
        if tail:
            self._line(tail, out)
        unterminated = bool(self._data)
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        return out, unterminated

    def _line(self, line: str, out: list[str]) -> None:
        if not line.strip():
            if self._data:
                out.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
            self.saw_data = True
            return
        if line.startswith(":") or line.startswith(_SSE_FIELDS):
            return
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        out.append(line.strip())
