"""Child process for the crash test: drives a 200-step run on a SQLite file.

Every step appends its index to an O_APPEND side-effect file (one atomic write per
execution) and prints it, so the parent can SIGKILL it at a chosen point.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from agent_runtime import DurableRunLeaseHeldError
from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    SQLiteDurableRunStore,
    run_durable,
)

STEPS = 200


async def main(db: str, run_id: str, effects: str, lease_ms: int) -> None:
    store = SQLiteDurableRunStore(db)
    fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    manifest = DurableRunManifest("crash-test", {"id": "count", "intent": "count"}, {"n": STEPS})

    def effect(i: int) -> int:
        os.write(fd, f"{i}\n".encode())
        print(i, flush=True)
        time.sleep(0.0005)
        return i * i

    async def task(ctx: DurableContext) -> int:
        total = 0
        for i in range(STEPS):
            total += await ctx.step(f"step-{i}", lambda i=i: effect(i))
        return total

    deadline = time.monotonic() + lease_ms / 1000 * 3 + 5
    while True:
        try:
            res = await run_durable(
                run_id=run_id, manifest=manifest, store=store, task_fn=task, lease_ms=lease_ms
            )
            break
        except DurableRunLeaseHeldError:  # the killed worker's lease has not expired yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    print(f"done {res.result} replayed={res.replayed} executed={res.executed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
