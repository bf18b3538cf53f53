"""The Vercel AI SDK UI message stream (v1) of one turn, encoded from its stream log.

One assistant message per turn: `start`, then text and reasoning parts (`*-start`, `*-delta`,
`*-end`), tool calls as `tool-input-available` / `tool-output-available` (dynamic, executed on
the server), usage as `message-metadata`, then `finish` (`error` + `finish` on failure, `abort`
when its user stopped it, a `data-readiness` part + `finish` when the readiness gate blocked it)
and `data: [DONE]`. Each SSE frame a log record produced ends with `id: <seq>`, the cursor a
client resumes after (`VercelStream(message_id, after=records)`): the resumed stream opens with
`start` and re-opens the part that was open at the cursor (and any tool call still waiting for
its output), so no delta arrives for a part the client has not seen start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ...durable import StreamEventRecord
from ._frames import FrameEncoder
from ._frames import sse_frame as _frame
from ._timeline import PartKind, TimelineState

__all__ = ["UI_MESSAGE_STREAM_HEADERS", "VERCEL_DONE", "VercelStream"]

UI_MESSAGE_STREAM_HEADERS: Mapping[str, str] = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-vercel-ai-ui-message-stream": "v1",
    "x-accel-buffering": "no",
}
"""The response headers the AI SDK expects of a UI message stream (the `v1` one is required)."""

VERCEL_DONE = b"data: [DONE]\n\n"

_dumps = orjson.dumps
_START = {"text": b"text-start", "reasoning": b"reasoning-start"}
_END = {"text": "text-end", "reasoning": "reasoning-end"}


class VercelStream(FrameEncoder):
    """Encoder of one turn's log as UI message stream frames; see the module docstring.

    `after` (the records up to the cursor a client already has) is folded silently, so
    `start()` re-opens what is open there. Then `encode(record)` for each later record and
    `finish(closing)` with the run's closing line (`b""` while the turn is not over)."""

    __slots__ = ("message_id",)

    def __init__(
        self,
        message_id: str,
        *,
        after: Iterable[StreamEventRecord] = (),
        state: TimelineState | None = None,
    ) -> None:
        self.message_id = message_id
        super().__init__(after=after, state=state)

    # -- the stream --------------------------------------------------------------------------

    def start(self) -> bytes:
        """`start`, then the re-opened state at the cursor (nothing more on a fresh stream)."""
        frames = [_frame({"type": "start", "messageId": self.message_id})]
        timeline = self.timeline
        if timeline.totals:
            frames.append(
                _frame({"type": "message-metadata", "messageMetadata": dict(timeline.totals)})
            )
        for call_id, tool in timeline.pending_tools.items():
            frames.append(_frame(self._tool_input_chunk(call_id, tool.name, tool.args)))
        if timeline.open_kind is not None and not timeline.ended:
            frames.append(
                b'data: {"type":"'
                + _START[timeline.open_kind]
                + b'","id":'
                + _dumps(timeline.open_id)
                + b"}\n\n"
            )
        return b"".join(frames)

    def finish(self, closing: Mapping[str, Any]) -> bytes:
        """The terminal frames and `[DONE]` for the run's closing line; `b""` when the turn is
        not over (its worker died: the client reconnects from its cursor)."""
        self.timeline.close(closing)
        if not self.timeline.ended:
            self._frames.clear()
            return b""
        self._frames.append(VERCEL_DONE)
        out = b"".join(self._frames)
        self._frames.clear()
        return out

    # -- PartSink ----------------------------------------------------------------------------

    def part_start(self, kind: PartKind, part_id: str) -> None:
        self._frames.append(
            b'data: {"type":"' + _START[kind] + b'","id":' + _dumps(part_id) + b"}\n\n"
        )

    def part_delta(self, kind: PartKind, part_id: str, delta: str) -> None:
        head = self._delta_head
        if head is None or head[0] != part_id:
            kind_name = b"text-delta" if kind == "text" else b"reasoning-delta"
            head = self._delta_head = (
                part_id,
                b'data: {"type":"' + kind_name + b'","id":' + _dumps(part_id) + b',"delta":',
            )
        self._frames.append(head[1] + _dumps(delta) + b"}\n\n")

    def part_end(self, kind: PartKind, part_id: str) -> None:
        self._frames.append(_frame({"type": _END[kind], "id": part_id}))

    @staticmethod
    def _tool_input_chunk(call_id: str, name: str, args: Any) -> dict[str, Any]:
        return {
            "type": "tool-input-available",
            "toolCallId": call_id,
            "toolName": name,
            "input": args,
            "providerExecuted": True,
            "dynamic": True,
        }

    def tool_input(self, call_id: str, name: str, args: Any) -> None:
        self._frames.append(_frame(self._tool_input_chunk(call_id, name, args)))

    def tool_output(self, call_id: str, name: str, result: Any) -> None:
        self._frames.append(
            _frame(
                {
                    "type": "tool-output-available",
                    "toolCallId": call_id,
                    "output": result,
                    "providerExecuted": True,
                    "dynamic": True,
                }
            )
        )

    def usage(self, totals: Mapping[str, Any]) -> None:
        self._frames.append(_frame({"type": "message-metadata", "messageMetadata": totals}))

    def restarted(self, attempt: int) -> None:
        self._frames.append(
            _frame({"type": "data-restarted", "data": {"attempt": attempt}, "transient": True})
        )

    def completed(self) -> None:
        self._frames.append(b'data: {"type":"finish","finishReason":"stop"}\n\n')

    def failed(self, message: str, code: str | None) -> None:
        self._frames.append(_frame({"type": "error", "errorText": message}))
        self._frames.append(b'data: {"type":"finish","finishReason":"error"}\n\n')

    def stopped(self, reason: str) -> None:
        self._frames.append(_frame({"type": "abort", "reason": reason}))

    def blocked(self, reason: str, questions: list[dict[str, Any]]) -> None:
        data = {"status": "blocked", "reason": reason, "questions": questions}
        self._frames.append(_frame({"type": "data-readiness", "id": "readiness", "data": data}))
        self._frames.append(b'data: {"type":"finish","finishReason":"other"}\n\n')
