"""The AG-UI event stream of one turn (a run on its session's thread), encoded from its log.

`RUN_STARTED`, then text as `TEXT_MESSAGE_START/CONTENT/END`, reasoning as `REASONING_START`,
`REASONING_MESSAGE_START/CONTENT/END`, `REASONING_END`, each tool call as
`TOOL_CALL_START/ARGS/END` (its parent the text message before it) and its result as
`TOOL_CALL_RESULT`, usage as `CUSTOM` (`agent_runtime.usage`), then `RUN_FINISHED` (outcome
`success`, `cancelled` when its user stopped it, `interrupt` with one interrupt per readiness
question when the readiness gate blocked it) or `RUN_ERROR`. Each SSE frame a log record
produced ends with `id: <seq>`; a client re-posting the run with the last id it saw gets
`RUN_STARTED` and the text message open at the cursor re-opened (`TEXT_MESSAGE_START` with its
id again, which the client continues), then the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ...durable import StreamEventRecord
from ._frames import FrameEncoder
from ._frames import sse_frame as _frame
from ._timeline import PartKind, TimelineState

__all__ = ["AGUI_HEADERS", "AguiStream", "interrupts_for"]

AGUI_HEADERS: Mapping[str, str] = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
}

_dumps = orjson.dumps
_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


def interrupts_for(reason: str, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AG-UI interrupts (`input_required`) for the readiness gate's questions; one for the
    block itself when the gate asked none."""
    if not questions:
        return [{"id": "readiness", "reason": "input_required", "message": reason}]
    out = []
    for q in questions:
        schema: dict[str, Any] = _ANSWER_SCHEMA
        options = q.get("options")
        if isinstance(options, list) and options:
            schema = {
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": options}},
                "required": ["answer"],
            }
        out.append(
            {
                "id": str(q.get("id")),
                "reason": "input_required",
                "message": str(q.get("question") or reason),
                "responseSchema": schema,
                "metadata": {"question": q},
            }
        )
    return out


class AguiStream(FrameEncoder):
    """Encoder of one turn's log as AG-UI SSE frames; see the module docstring.

    `thread_id`/`run_id` are echoed on the lifecycle events; `prefix` (the turn's execution id
    and a colon) starts every message and tool call id, so they are unique on the thread. `after` (what the client already has) is folded
    silently; `start()`, `encode(record)` and `finish(closing)` as `VercelStream`."""

    __slots__ = ("prefix", "run_id", "thread_id")

    def __init__(
        self,
        thread_id: str,
        run_id: str,
        *,
        prefix: str = "",
        after: Iterable[StreamEventRecord] = (),
        state: TimelineState | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.prefix = prefix
        super().__init__(after=after, state=state)

    def start(self) -> bytes:
        """`RUN_STARTED`, then the text or reasoning message open at the cursor re-opened."""
        frames = [_frame({"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id})]
        timeline = self.timeline
        if timeline.open_kind is not None and not timeline.ended:
            self._frames = frames
            self.part_start(timeline.open_kind, timeline.open_id)  # type: ignore[arg-type]
            self._frames = []
        return b"".join(frames)

    def finish(self, closing: Mapping[str, Any]) -> bytes:
        """`RUN_FINISHED`/`RUN_ERROR` for the run's closing line; `b""` when it is not over."""
        self.timeline.close(closing)
        out = b"".join(self._frames) if self.timeline.ended else b""
        self._frames.clear()
        return out

    # -- PartSink ----------------------------------------------------------------------------

    def part_start(self, kind: PartKind, part_id: str) -> None:
        part_id = self.prefix + part_id
        if kind == "text":
            self._frames.append(
                b'data: {"type":"TEXT_MESSAGE_START","messageId":'
                + _dumps(part_id)
                + b',"role":"assistant"}\n\n'
            )
        else:
            pid = _dumps(part_id)
            self._frames.append(b'data: {"type":"REASONING_START","messageId":' + pid + b"}\n\n")
            self._frames.append(
                b'data: {"type":"REASONING_MESSAGE_START","messageId":'
                + pid
                + b',"role":"reasoning"}\n\n'
            )

    def part_delta(self, kind: PartKind, part_id: str, delta: str) -> None:
        head = self._delta_head
        if head is None or head[0] != part_id:
            kind_name = b"TEXT_MESSAGE_CONTENT" if kind == "text" else b"REASONING_MESSAGE_CONTENT"
            head = self._delta_head = (
                part_id,
                b'data: {"type":"' + kind_name + b'","messageId":'
                + _dumps(self.prefix + part_id) + b',"delta":',
            )  # fmt: skip
        self._frames.append(head[1] + _dumps(delta) + b"}\n\n")

    def part_end(self, kind: PartKind, part_id: str) -> None:
        pid = _dumps(self.prefix + part_id)
        if kind == "text":
            self._frames.append(b'data: {"type":"TEXT_MESSAGE_END","messageId":' + pid + b"}\n\n")
        else:
            self._frames.append(
                b'data: {"type":"REASONING_MESSAGE_END","messageId":' + pid + b"}\n\n"
            )
            self._frames.append(b'data: {"type":"REASONING_END","messageId":' + pid + b"}\n\n")

    def tool_input(self, call_id: str, name: str, args: Any) -> None:
        call_id = self.prefix + call_id
        start: dict[str, Any] = {
            "type": "TOOL_CALL_START",
            "toolCallId": call_id,
            "toolCallName": name,
        }
        if self.timeline.last_text_id is not None:
            start["parentMessageId"] = self.prefix + self.timeline.last_text_id
        frames = self._frames
        frames.append(_frame(start))
        if args is not None:
            delta = args if isinstance(args, str) else _dumps(args).decode()
            if delta:
                frames.append(
                    _frame({"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": delta})
                )
        frames.append(_frame({"type": "TOOL_CALL_END", "toolCallId": call_id}))

    def tool_output(self, call_id: str, name: str, result: Any) -> None:
        call_id = self.prefix + call_id
        content = result if isinstance(result, str) else _dumps(result).decode()
        self._frames.append(
            _frame(
                {
                    "type": "TOOL_CALL_RESULT",
                    "messageId": f"{call_id}:result",
                    "toolCallId": call_id,
                    "content": content,
                    "role": "tool",
                }
            )
        )

    def usage(self, totals: Mapping[str, Any]) -> None:
        self._frames.append(
            _frame({"type": "CUSTOM", "name": "agent_runtime.usage", "value": totals})
        )

    def restarted(self, attempt: int) -> None:
        self._frames.append(
            _frame(
                {"type": "CUSTOM", "name": "session.run.restarted", "value": {"attempt": attempt}}
            )
        )

    def _finished(self, outcome: dict[str, Any]) -> None:
        event: dict[str, Any] = {
            "type": "RUN_FINISHED",
            "threadId": self.thread_id,
            "runId": self.run_id,
            "outcome": outcome,
        }
        totals = self.timeline.totals
        usage = {
            k: v
            for k, v in (
                ("model", totals.get("model")),
                ("inputTokens", totals.get("tokensIn")),
                ("outputTokens", totals.get("tokensOut")),
            )
            if v is not None
        }
        if "inputTokens" in usage or "outputTokens" in usage:
            if "inputTokens" in usage and "outputTokens" in usage:
                usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
            event["usage"] = [usage]
        self._frames.append(_frame(event))

    def completed(self) -> None:
        self._finished({"type": "success"})

    def failed(self, message: str, code: str | None) -> None:
        event: dict[str, Any] = {"type": "RUN_ERROR", "message": message}
        if code is not None:
            event["code"] = code
        self._frames.append(_frame(event))

    def stopped(self, reason: str) -> None:
        self._finished({"type": "cancelled"})

    def blocked(self, reason: str, questions: list[dict[str, Any]]) -> None:
        self._finished({"type": "interrupt", "interrupts": interrupts_for(reason, questions)})
