"""Assemble streamed OpenAI tool-call fragments into one `tool_call` event per call.

Fragments are joined by their `index`; servers that omit (or null) it are handled: a fragment
without one continues the open call unless it is another entry of the same list or carries
another call's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["ToolCallAssembler"]


@dataclass(slots=True)
class _Parts:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """`add(fragments)` per chunk; `finish()` -> `(call id, tool name, args)` per call, in
    index order. `args` is the parsed JSON, the raw string when it is not JSON, or None when
    no arguments arrived."""

    __slots__ = ("_open_unindexed", "_parts")

    def __init__(self) -> None:
        self._parts: dict[int, _Parts] = {}
        self._open_unindexed: int | None = None

    def add(self, calls: Any) -> None:
        """Take one chunk's `delta.tool_calls`; malformed fragments are skipped."""
        if not isinstance(calls, list):
            return
        for pos, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            idx = call.get("index")
            if idx is None:
                idx = self._unindexed_slot(call.get("id"), new=pos > 0)
            elif type(idx) is not int or idx < 0:
                continue
            parts = self._parts.setdefault(idx, _Parts())
            call_id = call.get("id")
            if isinstance(call_id, str) and call_id:
                parts.call_id = call_id
            fn = call.get("function")
            if not isinstance(fn, dict):
                continue
            name = fn.get("name")
            if isinstance(name, str) and name and not parts.name:
                parts.name = name
            args = fn.get("arguments")
            if isinstance(args, str):
                parts.arguments.append(args)
            elif args is not None:
                parts.arguments.append(orjson.dumps(args).decode())

    def _unindexed_slot(self, call_id: Any, *, new: bool) -> int:
        slot = self._open_unindexed
        if slot is not None and not new:
            known = self._parts[slot].call_id
            if not (isinstance(call_id, str) and call_id and known and call_id != known):
                return slot
        slot = 1 + max(self._parts, default=-1)
        self._open_unindexed = slot
        return slot

    def finish(self) -> list[tuple[str, str, Any]]:
        out: list[tuple[str, str, Any]] = []
        for idx, parts in sorted(self._parts.items()):
            text = "".join(parts.arguments)
            args: Any = None
            if text.strip():
                try:
                    args = orjson.loads(text)
                except orjson.JSONDecodeError:
                    args = text
            out.append((parts.call_id or f"call_{idx}", parts.name or "tool", args))
        self._parts.clear()
        self._open_unindexed = None
        return out
