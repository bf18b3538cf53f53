"""Python models of how the two real clients read a stream, for property tests over many logs
and cursors (the real clients run on a few in test_clients.py): the AI SDK's message state
(`processUIMessageStream`: a delta or end needs its part started, a tool output needs its
call) and AG-UI's event verifier plus message folding (`verifyEvents`, `defaultApplyEvents`)."""

from __future__ import annotations

from typing import Any

import orjson


class GrammarError(AssertionError):
    """The client would have rejected the stream here."""


def frames(body: bytes) -> list[tuple[str | None, Any]]:
    """The SSE events of a body as (id, parsed data)."""
    out: list[tuple[str | None, Any]] = []
    for block in body.split(b"\n\n"):
        if not block:
            continue
        event_id = None
        data = b""
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = line[4:].decode()
            elif line.startswith(b"data: "):
                data += line[6:]
        out.append((event_id, "[DONE]" if data == b"[DONE]" else orjson.loads(data)))
    return out


class VercelClient:
    """One assistant message as the AI SDK assembles it from UI message chunks."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.active: dict[tuple[str, str], dict[str, Any]] = {}
        self.terminal: list[str] = []
        self.metadata: dict[str, Any] = {}

    def read(self, body: bytes) -> None:
        for _, chunk in frames(body):
            self.chunk(chunk)

    def chunk(self, chunk: Any) -> None:
        if chunk == "[DONE]":
            self.terminal.append("[DONE]")
            return
        kind = chunk["type"]
        if kind in ("text-start", "reasoning-start"):
            part = {"type": kind[:-6], "text": "", "state": "streaming"}
            self.parts.append(part)
            self.active[(kind[:-6], chunk["id"])] = part
        elif kind in ("text-delta", "reasoning-delta"):
            part = self.active.get((kind[:-6], chunk["id"]))
            if part is None:
                raise GrammarError(f"{kind} for missing part {chunk['id']}")
            part["text"] += chunk["delta"]
        elif kind in ("text-end", "reasoning-end"):
            part = self.active.pop((kind[:-4], chunk["id"]), None)
            if part is None:
                raise GrammarError(f"{kind} for missing part {chunk['id']}")
            part["state"] = "done"
        elif kind == "tool-input-available":
            part = self._tool(chunk["toolCallId"])
            if part is None:
                self.parts.append(
                    {"type": "tool", "toolCallId": chunk["toolCallId"], "input": chunk["input"]}
                )
            else:
                part["input"] = chunk["input"]
        elif kind == "tool-output-available":
            part = self._tool(chunk["toolCallId"])
            if part is None:
                raise GrammarError(f"no tool invocation {chunk['toolCallId']}")
            part["output"] = chunk["output"]
        elif kind == "message-metadata":
            self.metadata.update(chunk["messageMetadata"])
        elif kind in ("finish", "abort", "error"):
            self.terminal.append(kind)
        elif kind == "start" or kind.startswith("data-"):
            pass
        else:
            raise GrammarError(f"unknown chunk {kind}")

    def _tool(self, call_id: str) -> dict[str, Any] | None:
        return next(
            (p for p in self.parts if p["type"] == "tool" and p["toolCallId"] == call_id), None
        )

    def text(self, kind: str = "text") -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == kind)


class AguiClient:
    """A thread's messages as HttpAgent folds them, each run checked by the event verifier."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.outcomes: list[Any] = []

    def run(self, body: bytes) -> None:
        """One run's stream (it may end early, as a dropped connection does)."""
        active: set[str] = set()
        reasoning: set[str] = set()
        tools: set[str] = set()
        started = ended = False
        for _, event in frames(body):
            kind = event["type"]
            if ended:
                raise GrammarError(f"{kind} after the run ended")
            if not started:
                if kind != "RUN_STARTED":
                    raise GrammarError(f"first event must be RUN_STARTED, got {kind}")
                started = True
                continue
            if kind == "TEXT_MESSAGE_START":
                if event["messageId"] in active:
                    raise GrammarError("text message already in progress")
                active.add(event["messageId"])
                if self._message(event["messageId"]) is None:
                    self.messages.append(
                        {"id": event["messageId"], "role": event["role"], "content": ""}
                    )
            elif kind in ("TEXT_MESSAGE_CONTENT", "REASONING_MESSAGE_CONTENT"):
                pool = active if kind.startswith("TEXT") else reasoning
                if event["messageId"] not in pool or not event["delta"]:
                    raise GrammarError(f"{kind} without an active message or empty")
                message = self._message(event["messageId"])
                assert message is not None
                message["content"] += event["delta"]
            elif kind == "TEXT_MESSAGE_END":
                if event["messageId"] not in active:
                    raise GrammarError("no active text message")
                active.discard(event["messageId"])
            elif kind == "REASONING_START":
                pass
            elif kind == "REASONING_MESSAGE_START":
                if event["messageId"] in reasoning:
                    raise GrammarError("reasoning message already in progress")
                reasoning.add(event["messageId"])
                if self._message(event["messageId"]) is None:
                    self.messages.append(
                        {"id": event["messageId"], "role": "reasoning", "content": ""}
                    )
            elif kind == "REASONING_MESSAGE_END":
                if event["messageId"] not in reasoning:
                    raise GrammarError("no active reasoning message")
                reasoning.discard(event["messageId"])
            elif kind == "REASONING_END":
                pass
            elif kind == "TOOL_CALL_START":
                if event["toolCallId"] in tools:
                    raise GrammarError("tool call already in progress")
                tools.add(event["toolCallId"])
                self.messages.append(
                    {
                        "id": event["toolCallId"],
                        "role": "tool-call",
                        "args": "",
                        "name": event["toolCallName"],
                    }
                )
            elif kind == "TOOL_CALL_ARGS":
                if event["toolCallId"] not in tools:
                    raise GrammarError("no active tool call")
                call = self._message(event["toolCallId"])
                assert call is not None
                call["args"] += event["delta"]
            elif kind == "TOOL_CALL_END":
                if event["toolCallId"] not in tools:
                    raise GrammarError("no active tool call")
                tools.discard(event["toolCallId"])
            elif kind == "TOOL_CALL_RESULT":
                self.messages.append(
                    {"id": event["messageId"], "role": "tool", "toolCallId": event["toolCallId"],
                     "content": event["content"]}
                )  # fmt: skip
            elif kind == "RUN_FINISHED":
                if active or tools or reasoning:
                    raise GrammarError("RUN_FINISHED while messages or tool calls are active")
                self.outcomes.append(event.get("outcome"))
                ended = True
            elif kind == "RUN_ERROR":
                self.outcomes.append({"type": "error", "message": event["message"]})
                ended = True
            elif kind == "CUSTOM":
                pass
            else:
                raise GrammarError(f"unknown event {kind}")

    def _message(self, message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["id"] == message_id), None)

    def text(self, role: str = "assistant") -> str:
        return "".join(m["content"] for m in self.messages if m["role"] == role)
