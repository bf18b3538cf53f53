"""A process that drives one chat turn with a short lease and never finishes it; the crash
test SIGKILLs it mid-turn. Usage: python -m tests.server.crash_worker STORE_URL SESSION."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from agent_runtime.backends import create_iterable_backend
from agent_runtime.durable import open_store
from agent_runtime.server import TurnRunner, parse_chat_request
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeStreamEvent,
    TextDeltaEvent,
)


def _endless(
    _inp: AgentBackendInput, _ctx: AgentBackendContext
) -> AsyncIterator[RuntimeStreamEvent]:
    async def gen() -> AsyncIterator[RuntimeStreamEvent]:
        i = 0
        while True:
            yield TextDeltaEvent(text=f"{i} ")
            i += 1
            await asyncio.sleep(0.05)

    return gen()


async def main(store_url: str, session: str) -> None:
    store = await open_store(store_url)
    backend = create_iterable_backend(kind="endless", stream=_endless)
    runner = TurnRunner(store, backend, lease_ms=1000)
    request = parse_chat_request(
        f'{{"session_id": "{session}", "turn_index": 0, "text": "go"}}'.encode()
    )
    run_id, turn = await runner.run_turn(request)
    async for _line in turn.body:
        if len(await store.read_stream_events(run_id, limit=4)) >= 4:
            print("streaming", flush=True)
            await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
