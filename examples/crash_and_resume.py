"""Crash and resume: a durable run on a SQLite file is SIGKILLed midway and resumed.

A worker process drives an 8-step run; the parent kills it with SIGKILL after a few steps,
then resumes the same run id in a fresh worker: completed steps replay from the file
without running again, the rest run for real.

    python examples/crash_and_resume.py [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_runtime import DurableRunLeaseHeldError
from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    SQLiteDurableRunStore,
    run_durable,
)

STEPS = ["plan", "search", "read", "extract", "compare", "draft", "review", "publish"]
KILL_AFTER = 3
LEASE_MS = 1500

MANIFEST = DurableRunManifest(
    project_id="demo",
    task={"id": "report", "intent": "write a short market report", "domain": "research"},
    input={"topic": "durable agents"},
)


async def work(db: Path, run_id: str, who: str) -> None:
    store = SQLiteDurableRunStore(db)

    def do(name: str, i: int) -> dict[str, object]:
        time.sleep(0.15)  # the real work: an LLM call, a tool, a sandbox command
        print(f"  [{who}] ran     step {i} {name}", flush=True)
        return {"step": name, "by": who, "pid": os.getpid()}

    async def task(ctx: DurableContext) -> list[str]:
        done = []
        for i, name in enumerate(STEPS):
            replaying = ctx.replaying
            out = await ctx.step(name, lambda n=name, i=i: do(n, i))
            if replaying:
                print(f"  [{who}] replayed step {i} {name} (ran in pid {out['pid']})", flush=True)
            done.append(f"{name}@{out['pid']}")
        return done

    while True:
        try:
            res = await run_durable(
                run_id=run_id, manifest=MANIFEST, store=store, task_fn=task, lease_ms=LEASE_MS
            )
            break
        except DurableRunLeaseHeldError as exc:
            print(
                f"  [{who}] lease still held by the killed worker ({exc.holder}); waiting",
                flush=True,
            )
            await asyncio.sleep(0.5)
    print(
        f"  [{who}] run {run_id} {res.record.status}: replayed {res.replayed} steps, "
        f"ran {res.executed} steps",
        flush=True,
    )
    await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=".agent-runtime/demo.db")
    parser.add_argument("--run-id", default=f"demo-{int(time.time())}")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    db = Path(args.db)
    if args.worker:
        asyncio.run(work(db, args.run_id, args.worker))
        return 0

    print(f"durable run {args.run_id} on {db} ({len(STEPS)} steps)")
    print(f"1. worker A starts; it will be killed with SIGKILL after {KILL_AFTER} steps")
    cmd = [sys.executable, __file__, "--db", str(db), "--run-id", args.run_id]
    a = subprocess.Popen([*cmd, "--worker", "A"], stdout=subprocess.PIPE, text=True)
    assert a.stdout is not None
    ran = 0
    for line in a.stdout:
        print(line, end="")
        if "ran" in line:
            ran += 1
            if ran == KILL_AFTER:
                a.send_signal(signal.SIGKILL)
                break
    a.wait()
    print(f"   worker A killed (exit {a.returncode})")
    print("2. worker B resumes the same run id")
    b = subprocess.run([*cmd, "--worker", "B"], check=False)
    print(f"inspect it: agent-runtime runs show {args.run_id} --store sqlite:///{db}")
    return b.returncode


if __name__ == "__main__":
    sys.exit(main())
