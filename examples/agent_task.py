"""An agent task behind the knowledge-readiness gate, streamed from a backend.

Runs the same task twice: once with its blocking requirement known (the backend answers,
the stream ends `completed`), once with it unknown (the stream ends `blocked` before the
backend or a session is touched). Without OPENAI_BASE_URL the backend is the echo backend;
with it (the URL includes `/v1`, plus OPENAI_API_KEY and OPENAI_MODEL) a real model answers
and the summary counts its tokens.

    python examples/agent_task.py
"""

from __future__ import annotations

import asyncio

from agent_runtime import (
    AgentTaskSpec,
    BackendErrorEvent,
    FinalEvent,
    KnowledgeRequirement,
    LlmCallEvent,
    ReadinessEndEvent,
    TextDeltaEvent,
    run_agent_task_stream,
)
from agent_runtime.server import backend_from_env

MESSAGE = "Summarize: v2 adds retries before the first byte and fixes the cache."


def task(confidence: float) -> AgentTaskSpec:
    return AgentTaskSpec(
        id=f"release-notes-{confidence:g}",
        intent="Summarize the release notes.",  # fixed text: telemetry shows it unredacted
        domain="docs",
        required_knowledge=(
            KnowledgeRequirement(
                id="notes",
                description="The release notes to summarize",
                importance="blocking",
                current_confidence=confidence,
            ),
        ),
    )


async def run(spec: AgentTaskSpec) -> None:
    config = backend_from_env()
    tokens = 0
    streamed = False  # whether answer text is on the current line
    try:
        async for event in run_agent_task_stream(spec, config.backend, input={"message": MESSAGE}):
            if isinstance(event, ReadinessEndEvent) and event.decision is not None:
                print(f"[{spec.id}] readiness {event.decision.status}: {event.decision.reason}")
            elif isinstance(event, TextDeltaEvent):
                print(event.text, end="", flush=True)
                streamed = True
            elif isinstance(event, LlmCallEvent):
                tokens += (event.tokens_in or 0) + (event.tokens_out or 0)
            elif isinstance(event, BackendErrorEvent):
                print(("\n" if streamed else "") + f"[{spec.id}] backend error: {event.message}")
                streamed = False
            elif isinstance(event, FinalEvent):
                used = f", {tokens} tokens" if tokens else ""
                end = "\n" if streamed else ""
                print(f"{end}[{spec.id}] {event.status}: {event.reason}{used}")
    finally:
        await config.aclose()


async def main() -> None:
    await run(task(confidence=1.0))  # the notes are known: the backend answers
    await run(task(confidence=0.0))  # a blocking gap: the backend is never called


if __name__ == "__main__":
    asyncio.run(main())
