"""A worker process for the multi-process store tests: `python proc_worker.py '<json>'`.

Modes:
- `run`: drive a durable run of `steps` steps; every step function records its execution as
  a file `<fx>/step-<i>` created with O_EXCL (a second execution leaves `dup-<i>-<pid>`), and
  returns its pid. With `retry_held`, wait for the lease instead of giving up.
- `append`: append `count` stream events with ids `ev-<start + k>`: the first
  `unbatched_first` one call each, the rest in batches of `batch`.

Prints one JSON line with the outcome and exits 0; the test reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent_runtime.durable import DurableContext, DurableRunManifest, open_store, run_durable
from agent_runtime.errors import DurableRunLeaseHeldError, DurableRunLeaseLostError


def wait_for_go(args: dict[str, Any]) -> None:
    """Signal readiness, then start together with the other workers."""
    if not args.get("sync_dir"):
        return
    sync = Path(args["sync_dir"])
    (sync / f"ready-{os.getpid()}").touch()
    while not (sync / "go").exists():
        time.sleep(0.002)


def side_effect(fx: Path, index: int) -> None:
    try:
        fd = os.open(fx / f"step-{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        (fx / f"dup-{index}-{os.getpid()}").touch()
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)


async def run_mode(args: dict[str, Any]) -> dict[str, Any]:
    store = await open_store(args["url"])
    fx = Path(args["fx"])
    manifest = DurableRunManifest("proj", {"id": "mp", "intent": "multi-process"}, {"n": 1})
    step_s = args.get("step_ms", 50) / 1000

    async def task(ctx: DurableContext) -> int:
        for i in range(args["steps"]):

            def fn(i: int = i) -> dict[str, Any]:
                # atomic: a reader (or a SIGSTOP) never sees a truncated, empty file
                tmp = fx / f".progress-{os.getpid()}"
                tmp.write_text(str(i))
                os.replace(tmp, fx / f"progress-{os.getpid()}")
                time.sleep(step_s)  # blocking on purpose: SIGSTOP lands inside a step
                side_effect(fx, i)
                return {"pid": os.getpid(), "i": i}

            await ctx.step(f"step-{i}", fn)
        return args["steps"]

    wait_for_go(args)
    deadline = time.monotonic() + args.get("wait_s", 0)
    try:
        while True:
            try:
                res = await run_durable(
                    run_id=args["run_id"],
                    manifest=manifest,
                    store=store,
                    task_fn=task,
                    worker_id=f"{args.get('name', 'w')}-{os.getpid()}",
                    lease_ms=args.get("lease_ms", 15_000),
                )
                return {
                    "outcome": "drove" if res.executed else "replayed",
                    "executed": res.executed,
                    "replayed": res.replayed,
                    "retries": getattr(store, "retries", 0),
                }
            except DurableRunLeaseHeldError as exc:
                if time.monotonic() >= deadline:
                    return {"outcome": "held", "holder": exc.holder}
                await asyncio.sleep(0.02)
    except DurableRunLeaseLostError:
        return {"outcome": "lease_lost"}
    finally:
        await store.close()


async def append_mode(args: dict[str, Any]) -> dict[str, Any]:
    store = await open_store(args["url"])
    ids = [f"ev-{args['start'] + k}" for k in range(args["count"])]
    batch = args.get("batch", 100)
    wait_for_go(args)
    accepted = 0
    single = args.get("unbatched_first", 0)
    try:
        for e in ids[:single]:
            accepted += (await store.append_stream_event(args["run_id"], e, {"id": e})).accepted
        for i in range(single, len(ids), batch):
            chunk = [(e, {"by": os.getpid(), "id": e}) for e in ids[i : i + batch]]
            results = await store.append_stream_events(args["run_id"], chunk)
            accepted += sum(r.accepted for r in results)
    finally:
        await store.close()
    return {"outcome": "appended", "accepted": accepted}


def main() -> None:
    args = json.loads(sys.argv[1])
    mode = {"run": run_mode, "append": append_mode}[args["mode"]]
    out = asyncio.run(mode(args))
    out["pid"] = os.getpid()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
