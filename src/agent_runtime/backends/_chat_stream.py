"""Turn the payloads of a chat-completions stream into runtime events (ORIGINAL §7.5).

Per payload: `[DONE]` and empty ones are skipped; JSON gives the text of
`choices[0].delta.content`, else `choices[0].message.content`, else `text`, or the common
mapping when there is none; a payload that is not JSON is itself a text delta (the
original's quirk). Ours beyond it: reasoning deltas (`delta.reasoning_content`), tool-call
fragments assembled into `tool_call` events, usage (OpenAI `usage`, Anthropic
`message_start`/`message_delta`) accumulated for one `llm_call`, and an in-band `error`
object raised as `BackendTransportError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..errors import BackendTransportError
from ..types import (
    AgentBackendContext,
    ReasoningDeltaEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
    now_iso,
)
from ._http import ERROR_BODY_LIMIT
from ._tool_calls import ToolCallAssembler
from .mapping import NON_TEXT_RAW_TYPES, map_raw_backend_event

__all__ = ["ChatStreamReader"]


def _count(v: Any) -> int | None:
    return v if type(v) is int and v >= 0 else None


def _first_present(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


class ChatStreamReader:
    """Stateful reader of one response: `payload(text)` -> events; `end()` -> the assembled
    tool calls. `tokens_in`, `tokens_out`, `finish_reason` and `done` are what it saw."""

    __slots__ = (
        "_ctx",
        "_kind",
        "_scrub",
        "_tools",
        "done",
        "finish_reason",
        "tokens_in",
        "tokens_out",
    )

    def __init__(self, kind: str, ctx: AgentBackendContext, scrub: Callable[[str], str]) -> None:
        self._kind = kind
        self._ctx = ctx
        self._scrub = scrub
        self._tools = ToolCallAssembler()
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.finish_reason: str | None = None
        self.done = False

    @property
    def usage_reported(self) -> bool:
        return self.tokens_in is not None or self.tokens_out is not None

    def _text(self, text: str) -> TextDeltaEvent:
        ctx = self._ctx
        return TextDeltaEvent(text=text, task=ctx.task, session=ctx.session, timestamp=now_iso())

    def payload(self, payload: str) -> list[RuntimeStreamEvent]:
        if not payload:
            return []
        if payload == "[DONE]":
            self.done = True
            return []
        try:
            parsed = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [self._text(payload)]
        if not isinstance(parsed, dict):
            return []
        err = parsed.get("error")
        if err and "choices" not in parsed:
            self._raise_in_band(err)
        self._usage(parsed)
        out: list[RuntimeStreamEvent] = []
        choices = parsed.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        delta: Any = None
        message: Any = None
        if isinstance(choice, dict):
            delta = choice.get("delta")
            message = choice.get("message")
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self.finish_reason = reason
            for part in (delta, message):
                if isinstance(part, dict):
                    self._tools.add(part.get("tool_calls"))
            if isinstance(delta, dict):
                thought = _first_present(delta.get("reasoning_content"), delta.get("reasoning"))
                if isinstance(thought, str) and thought:
                    ctx = self._ctx
                    out.append(
                        ReasoningDeltaEvent(
                            text=thought, task=ctx.task, session=ctx.session, timestamp=now_iso()
                        )
                    )
        top_text = None if parsed.get("type") in NON_TEXT_RAW_TYPES else parsed.get("text")
        text = _first_present(
            delta.get("content") if isinstance(delta, dict) else None,
            message.get("content") if isinstance(message, dict) else None,
            top_text,
        )
        if isinstance(text, str) and text:
            out.append(self._text(text))
        else:
            mapped = map_raw_backend_event(parsed, self._ctx)
            if mapped is not None:
                out.append(mapped)
        return out

    def _usage(self, parsed: dict[str, Any]) -> None:
        kind = parsed.get("type")
        usages: list[Any] = [parsed.get("usage")]
        if kind == "message_start" and isinstance(parsed.get("message"), dict):
            usages.append(parsed["message"].get("usage"))
        if kind == "message_delta" and isinstance(parsed.get("delta"), dict):
            stop = parsed["delta"].get("stop_reason")
            if isinstance(stop, str) and stop:
                self.finish_reason = stop
        for usage in usages:
            if not isinstance(usage, dict):
                continue
            tokens_in = _count(
                _first_present(usage.get("prompt_tokens"), usage.get("input_tokens"))
            )
            tokens_out = _count(
                _first_present(usage.get("completion_tokens"), usage.get("output_tokens"))
            )
            if tokens_in is not None:
                self.tokens_in = tokens_in
            if tokens_out is not None:
                self.tokens_out = tokens_out

    def _raise_in_band(self, err: Any) -> None:
        message = "the upstream reported an error"
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        elif isinstance(err, str):
            message = err
        try:
            body = orjson.dumps({"error": err}).decode()
        except TypeError:
            body = ""
        raise BackendTransportError(
            self._kind,
            self._scrub(f"chat backend reported an error: {message}"),
            body=self._scrub(body)[:ERROR_BODY_LIMIT],
            retryable=False,
        )

    def end(self) -> list[RuntimeStreamEvent]:
        ctx = self._ctx
        now = now_iso()
        return [
            ToolCallEvent(
                tool_name=name,
                tool_call_id=call_id,
                args=args,
                task=ctx.task,
                session=ctx.session,
                timestamp=now,
            )
            for call_id, name, args in self._tools.finish()
        ]
