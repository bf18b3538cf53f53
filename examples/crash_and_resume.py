"""Crash and resume: a durable run on a SQLite file is SIGKILLed midway and resumed.

A worker process drives an 8-step run; the parent kills it with SIGKILL while its third step
is in flight (started, not yet committed), then resumes the same run id in a fresh worker:
the two committed steps replay from the file without running again, the in-flight step runs
again (its first attempt never committed anything), and the rest run for the first time.

    python examples/crash_and_resume.py [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
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
KILL_AT = 2  # worker A is killed while this step is in flight
LEASE_MS = 1500

MANIFEST = DurableRunManifest(
    project_id="demo",
    task={"id": "report", "intent": "write a short market report", "domain": "research"},
    input={"topic": "durable agents"},
)


async def work(db: Path, run_id: str, who: str) -> None:
    store = SQLiteDurableRunStore(db)

    def do(name: str, i: int) -> dict[str, object]:
        print(f"  [{who}] step {i} {name}: started", flush=True)
        # the real work: an LLM call, a tool, a sandbox command; in worker A the step at
        # KILL_AT is a slow one, so the parent kills A while it is in flight
        time.sleep(60 if who == "A" and i == KILL_AT else 0.15)
        return {"step": name, "by": who, "pid": os.getpid()}

    async def task(ctx: DurableContext) -> list[str]:
        done = []
        for i, name in enumerate(STEPS):
            replaying = ctx.replaying
            out = await ctx.step(name, lambda n=name, i=i: do(n, i), kind="tool")
            if replaying:
                print(
                    f"  [{who}] step {i} {name}: replayed from the store "
                    f"(committed by pid {out['pid']}, not run again)",
                    flush=True,
                )
            else:
                print(f"  [{who}] step {i} {name}: committed", flush=True)
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
                f"  [{who}] the killed worker's lease ({exc.holder}) has not expired yet; "
                "waiting for it",
                flush=True,
            )
            await asyncio.sleep(0.5)
    print(
        f"  [{who}] run {run_id} {res.record.status}: {res.replayed} steps replayed, "
        f"{res.executed} executed",
        flush=True,
    )
    steps = await store.load_steps(run_id)
    again = [s.intent for s in steps if s.attempts > 1]
    print(
        f"  [{who}] every committed step ran once; started twice: {', '.join(again) or 'none'} "
        "(in flight when worker A was killed: its first attempt committed nothing)",
        flush=True,
    )
    await store.close()


def _cli() -> str:
    """How to call the CLI from here: `agent-runtime` if it is on PATH, else its path."""
    if shutil.which("agent-runtime"):
        return "agent-runtime"
    beside = Path(sys.executable).with_name("agent-runtime")
    with contextlib.suppress(ValueError):
        return str(beside.relative_to(Path.cwd()))
    return str(beside)


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
    print(f"1. worker A starts; it is killed with SIGKILL while step {KILL_AT} is in flight")
    cmd = [sys.executable, __file__, "--db", str(db), "--run-id", args.run_id]
    a = subprocess.Popen([*cmd, "--worker", "A"], stdout=subprocess.PIPE, text=True)
    assert a.stdout is not None
    for line in a.stdout:
        print(line, end="")
        if f"step {KILL_AT} " in line and line.rstrip().endswith("started"):
            a.send_signal(signal.SIGKILL)
            break
    a.wait()
    print(
        f"   worker A killed (exit {a.returncode}) during step {KILL_AT} {STEPS[KILL_AT]}, "
        "before it committed"
    )
    print(
        f"2. worker B resumes the same run id: steps 0-{KILL_AT - 1} replay, "
        f"step {KILL_AT} starts again, the rest run for the first time"
    )
    b = subprocess.run([*cmd, "--worker", "B"], check=False)
    print(f"inspect it: {_cli()} runs show {args.run_id} --store sqlite:///{db}")
    return b.returncode


if __name__ == "__main__":
    sys.exit(main())
