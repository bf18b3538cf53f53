"""Child worker for the supervised-turn crash test: drains a sandbox run into the store and
prints each event it delivers, one JSON object per line.

usage: supervised_child.py STORE_URL RUN_ID ROOT N WORKER_ID
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_adapter import FileSandboxAdapter

from agent_runtime.chat import run_supervised_turn
from agent_runtime.durable import DurableRunManifest, open_store

MANIFEST = DurableRunManifest("sup", {"id": "sandbox", "intent": "run"}, {"n": 1})


async def main(url: str, run_id: str, root: str, n: int, worker: str) -> None:
    store = await open_store(url)
    adapter = FileSandboxAdapter(Path(root), n, delay_ms=20)
    try:
        turn = run_supervised_turn(store, run_id, MANIFEST, worker, adapter, lease_ms=600)
        async for event in turn:
            sys.stdout.write(orjson.dumps(event).decode() + "\n")
            sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], int(a[3]), a[4]))
