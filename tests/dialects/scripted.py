"""A scripted backend for the real-server dialect tests: what it answers is chosen by the
prompt (the last user message), so one server covers every case.

- `tool ...`: text, a `search` tool call and its result, then more text.
- `trip ...`: the real readiness gate (`run_agent_task_stream` with a knowledge provider)
  over the echo backend; it needs the city and the dates (two blocking requirements, so two
  questions) and blocks until the conversation carries an answer (a later user message).
- `flaky ...`: a word, then the upstream fails on the first ask of that prompt; later asks
  answer in full.
- `fail ...`: a word, then the upstream fails, every time.
- `slow N ...`: N words, `delay` seconds apart (deterministic, so a re-run after a crash
  repeats the logged prefix exactly and continues).
- anything else: six words.
It counts the streams it opened per prompt (`calls`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from agent_runtime import AgentTaskSpec, run_agent_task_stream
from agent_runtime.backends import (
    AgentExecutionBackend,
    create_echo_backend,
    create_iterable_backend,
)
from agent_runtime.errors import BackendTransportError
from agent_runtime.eval import KnowledgeRequirement, score_knowledge_readiness
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

TRIP_NEEDS = (("city", "the city you are travelling to"), ("dates", "the dates of your trip"))


def words(count: int, first: int = 0) -> str:
    return "".join(f"w{i} " for i in range(first, count))


class _TripKnowledge:
    """The knowledge provider of a `trip` turn: each need is known once answered."""

    def __init__(self, answered: bool) -> None:
        self.answered = answered

    def build_readiness(self, task: AgentTaskSpec) -> Any:
        confidence = 1.0 if self.answered else 0.0
        return score_knowledge_readiness(
            task.id,
            [
                KnowledgeRequirement(
                    id=need,
                    description=text,
                    importance="blocking",
                    current_confidence=confidence,
                )
                for need, text in TRIP_NEEDS
            ],
        )


class Scripted:
    """The backend's behaviour, with its per-prompt call counts."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.inner = create_echo_backend()

    def backend(self) -> AgentExecutionBackend:
        return create_iterable_backend(kind="scripted", stream=self.stream)

    def stream(
        self, inp: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        users = [m.content for m in inp.messages if m.role == "user"]
        prompt = users[-1] if users else ""
        first_prompt = users[0] if users else ""
        self.calls[prompt] += 1
        calls = self.calls[prompt]

        async def gen() -> AsyncIterator[RuntimeStreamEvent]:
            if first_prompt.startswith("trip"):
                task = AgentTaskSpec(id=inp.task.id, intent="plan a trip", domain="travel")
                knowledge = _TripKnowledge(answered=len(users) > 1)
                async for event in run_agent_task_stream(task, self.inner, knowledge=knowledge):
                    yield event
                return
            if prompt.startswith("tool"):
                yield TextDeltaEvent(text="Let me look that up.")
                yield ToolCallEvent(tool_name="search", tool_call_id="call_1", args={"q": "tides"})
                yield ToolResultEvent(tool_name="search", tool_call_id="call_1", result={"hits": 2})
                yield TextDeltaEvent(text=" Found two.")
                return
            if prompt.startswith(("flaky", "fail")):
                yield TextDeltaEvent(text="w0 ")
                if prompt.startswith("fail") or calls == 1:
                    raise BackendTransportError("upstream", "the model is down", status=502)
                for i in range(1, 6):
                    yield TextDeltaEvent(text=f"w{i} ")
                return
            count = 6
            if prompt.startswith("slow "):
                count = int(prompt.split()[1])
            for i in range(count):
                yield TextDeltaEvent(text=f"w{i} ")
                await asyncio.sleep(self.delay if prompt.startswith("slow") else 0)

        return gen()
