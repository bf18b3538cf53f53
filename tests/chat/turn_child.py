"""Child process for the durable-turn process tests: serves one turn and prints what a client
would see, one JSON object per line, so the parent can SIGKILL it at a chosen event.

usage: turn_child.py STORE_URL RUN_ID MODE N [AFTER_SEQ] [GATE_FILE]
  MODE stream         run_durable_turn; prints each event, then {"type": "__end__", ...}
  MODE engine         DurableChatTurnEngine.run_turn; prints each body line
  MODE engine-crash   as engine, but the process SIGKILLs itself inside the persist hook
  MODE engine-vary    as engine, with a producer that answers differently in every process
The producer yields N deltas, 10 ms apart; with GATE_FILE it stops after 5 until it exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from agent_runtime.chat import ChatTurnIdentity, DurableChatTurnEngine, run_durable_turn
from agent_runtime.durable import DurableRunManifest, open_store

MANIFEST = DurableRunManifest("chat-proc", {"id": "turn", "intent": "count"}, {"q": "count"})
IDENTITY = ChatTurnIdentity("tenant", "sess", "user", 0)


class Producer:
    def __init__(self, n: int, gate: Path | None, tag: str = "t") -> None:
        self.n = n
        self.gate = gate
        self.tag = tag

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for i in range(self.n):
            if self.gate is not None and i == 5:
                while not self.gate.exists():
                    await asyncio.sleep(0.005)
            await asyncio.sleep(0.01)
            yield {"type": "text_delta", "text": f"{self.tag}{i} "}

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return "".join(f"{self.tag}{i} " for i in range(self.n))


def emit(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


class Hooks:
    def __init__(self, producer: Producer, crash: bool) -> None:
        self.producer = producer
        self.crash = crash

    def produce(self) -> Producer:
        return self.producer

    def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
        if self.crash:
            os.kill(os.getpid(), signal.SIGKILL)
        emit({"type": "__persisted__", "text": text})


async def main(argv: list[str]) -> None:
    url, run_id, mode, n = argv[0], argv[1], argv[2], int(argv[3])
    after = int(argv[4]) if len(argv) > 4 and argv[4] != "-" else None
    gate = Path(argv[5]) if len(argv) > 5 else None
    store = await open_store(url)
    producer = Producer(n, gate, f"p{os.getpid()}-" if mode == "engine-vary" else "t")
    try:
        if mode == "stream":
            turn = run_durable_turn(
                store, run_id, MANIFEST, lambda: producer, lease_ms=600, after_seq=after
            )
            async for event in turn:
                emit(event)
            emit({"type": "__end__", "mode": turn.mode, "text": turn.text})
        else:
            engine = DurableChatTurnEngine(store, "proc", lease_ms=600)
            hooks = Hooks(producer, mode == "engine-crash")
            body = engine.run_turn(IDENTITY, hooks, after_seq=after).body
            async for line in body:
                sys.stdout.write(line.decode())
                sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
