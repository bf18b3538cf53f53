"""What the service lets out of a turn: sanitized events, with secrets scrubbed even when the
model streams them a few characters at a time.

`StreamScrubber` scrubs a text stream incrementally: it emits text only up to a point no later
delta can turn into part of a secret (the last whitespace; the start of an unterminated PEM
block or quoted `password="..."` value), scrubbing each emitted piece together with the text
before it, so a key split over many deltas is recognised whole. `TurnRedactor` applies it to a
turn's text and reasoning deltas and the telemetry projections
(`sanitize_runtime_stream_event`) to every other event; the turn's log, its live stream and its
stored final text are all built from its output (the final text unscrubbed under
`store_raw`). `scrub_line` scrubs the envelope and error lines a client receives.
"""

from __future__ import annotations

import re
from typing import Any

from ..sanitize import (
    RuntimeTelemetryOptions,
    SanitizeOptions,
    sanitize_json,
    sanitize_runtime_stream_event,
    sanitize_text,
)
from ..types import ReasoningDeltaEvent, TextDeltaEvent

__all__ = ["DELTA_TYPES", "StreamScrubber", "TurnRedactor", "scrub_line"]

DELTA_TYPES = frozenset(("text_delta", "reasoning_delta"))
_CONTEXT = 96
_HOLD_MAX = 8192
_PEM_HOLD_MAX = 16384
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_START = "-----"
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_QUOTE_HINT = re.compile(r"[:=]\s*[\"']")
_OPEN_QUOTE = re.compile(
    r"(?i)(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token|auth[_\-]?token|"
    r"refresh[_\-]?token|client[_\-]?secret|secret[_\-]?access[_\-]?key|private[_\-]?key)"
    r"[\"']?\s*[:=]\s*([\"'])"
)


def _closing(text: str, start: int, quote: str) -> int:
    """Where the quoted value opened at `start` ends (its unescaped closing quote, or a
    newline, where the scrubber's value rule stops too); -1 while it is still open."""
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or c == "\n":
            return i
        i += 1
    return -1


def _may_begin_pem(text: str, i: int) -> bool:
    """Whether `text[i:]` may still grow into a PEM BEGIN line."""
    rest = text[i : i + 80]
    if "\n" in rest or len(text) - i >= 80:
        return False
    marker = "-----BEGIN "
    return marker.startswith(rest) if len(rest) < len(marker) else rest.startswith(marker)


class StreamScrubber:
    """Incremental `sanitize_text` over a stream of text pieces; `push` returns what may be
    shown now, `flush` the rest at the end. The concatenated output equals the scrubbed text
    except where a secret is longer than the hold limit."""

    def __init__(self, options: SanitizeOptions | None = None) -> None:
        self._options = options
        self._context = ""  # the raw text emitted last (left context for the next piece)
        self._pending = ""  # raw text not emitted yet
        self._in_pem = False  # a PEM block was cut at the hold limit: drop it to its end

    def _scrub(self, text: str) -> str:
        return sanitize_text(text, self._options)

    def _cut(self) -> int:
        """How much of the pending text may be emitted (or, inside a cut PEM block, dropped)."""
        text = self._pending
        if self._in_pem:
            end = _PEM_END.search(text)
            return end.end() if end is not None else max(0, len(text) - 80)
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"), text.rfind("\r")) + 1
        i = text.find(_PEM_START)
        while 0 <= i < cut:
            head = _PEM_BEGIN.match(text, i)
            if head is None:
                if _may_begin_pem(text, i):
                    return i  # maybe a BEGIN line still arriving
                i = text.find(_PEM_START, i + len(_PEM_START))
                continue
            end = _PEM_END.search(text, head.end())
            if end is None:  # hold the block until its END line (up to the hold limit)
                return i if len(text) - i <= _PEM_HOLD_MAX else cut
            cut = max(cut, end.end())  # never cut inside a block
            i = text.find(_PEM_START, end.end())
        joined = self._context + text
        offset = len(self._context)
        quoted = _QUOTE_HINT.search(joined) is not None
        for m in _OPEN_QUOTE.finditer(joined) if quoted else ():
            value = m.end(1)
            closed = _closing(joined, value, m.group(1))
            if closed < 0:
                if value - offset < cut and len(joined) - value <= _HOLD_MAX:
                    return max(0, value - offset)  # hold the value until its quote closes
            elif value - offset < cut <= closed - offset:
                cut = closed - offset + 1  # never cut inside a quoted value
        if cut == 0 and len(text) > _HOLD_MAX:
            return len(text)  # no whitespace for too long: scrub what there is
        return cut

    def _emit(self, cut: int) -> str:
        piece, self._pending = self._pending[:cut], self._pending[cut:]
        if self._in_pem:  # the tail of a block cut at the hold limit: drop it
            end = _PEM_END.search(piece)
            if end is None:
                return ""
            self._in_pem = False
            self._context = ""
            piece = piece[end.end() :]
        if not piece:
            return ""
        joined = self._context + piece
        clean = self._scrub(joined)
        if clean == joined:  # nothing to redact (the common case)
            out = piece
        else:
            clean_context = self._scrub(self._context)
            if clean.startswith(clean_context):
                out = clean[len(clean_context) :]
            else:
                out = self._scrub(piece)
            head = _PEM_BEGIN.search(piece)
            if head is not None and _PEM_END.search(piece, head.end()) is None:
                self._in_pem = True  # cut at the hold limit: the rest of the block is dropped
        self._context = joined[-_CONTEXT:]
        return out

    def push(self, text: str) -> str:
        """Take one piece; return the scrubbed text that may be shown now (maybe empty)."""
        self._pending += text
        out = ""
        while self._pending:
            cut = self._cut()
            if cut == 0:
                break
            out += self._emit(cut)
        return out

    def flush(self) -> str:
        """The scrubbed rest of the stream."""
        return self._emit(len(self._pending))


class TurnRedactor:
    """The client-safe lines of one turn's backend events, and its final text."""

    def __init__(self, telemetry: RuntimeTelemetryOptions, *, store_raw: bool = False) -> None:
        self.telemetry = telemetry
        self.store_raw = store_raw
        scrub = telemetry.scrub
        self._text = StreamScrubber(scrub)
        self._reasoning = StreamScrubber(scrub)
        self._raw: list[str] = []
        self._shown: list[str] = []
        self._stamps: dict[str, str | None] = {"text_delta": None, "reasoning_delta": None}

    def lines(self, event: Any) -> list[dict[str, Any]]:
        """The lines to log and send for one backend event (none while a delta is held)."""
        if isinstance(event, TextDeltaEvent):
            self._raw.append(event.text)
            self._stamps["text_delta"] = event.timestamp
            text = self._text.push(event.text)
            self._shown.append(text)
            return [self._delta("text_delta", text, event.timestamp)] if text else []
        if isinstance(event, ReasoningDeltaEvent):
            self._stamps["reasoning_delta"] = event.timestamp
            text = self._reasoning.push(event.text)
            return [self._delta("reasoning_delta", text, event.timestamp)] if text else []
        line = sanitize_runtime_stream_event(event, self.telemetry)
        line.pop("task", None)
        line.pop("session", None)
        return [*self.flush(), line]  # text before a tool call or usage stays before it

    def flush(self) -> list[dict[str, Any]]:
        """The held-back text: at the end of the backend's stream, or before another kind of
        event (a text segment ends there)."""
        out = []
        text = self._text.flush()
        if text:
            self._shown.append(text)
            out.append(self._delta("text_delta", text, self._stamps["text_delta"]))
        reasoning = self._reasoning.flush()
        if reasoning:
            out.append(self._delta("reasoning_delta", reasoning, self._stamps["reasoning_delta"]))
        return out

    def final_text(self) -> str:
        """What the turn stores as its answer: the text shown, or the raw text (`store_raw`)."""
        return "".join(self._raw if self.store_raw else self._shown)

    @staticmethod
    def _delta(kind: str, text: str, timestamp: str | None) -> dict[str, Any]:
        line: dict[str, Any] = {"type": kind, "text": text}
        if timestamp is not None:
            line["timestamp"] = timestamp
        return line


def scrub_line(line: Any, *, deltas_scrubbed: bool = True) -> Any:
    """A line for a client through `sanitize_json` (error messages, a replayed or stored
    final text); deltas pass as they are when they were scrubbed as produced
    (`deltas_scrubbed`: this process's `TurnRedactor` made them)."""
    if deltas_scrubbed and isinstance(line, dict) and line.get("type") in DELTA_TYPES:
        return line
    return sanitize_json(line)
