"""Task-runner overhead.

1. Events/s through `run_agent_task_stream` with the iterable backend vs draining the same
   backend's stream directly (target ≤ 1.15x).
2. Time to first event against llm-katan: through `run_agent_task_stream` with the
   OpenAI-compatible backend vs a bare httpx2 streaming POST reading its first content chunk,
   both on a warm connection (target: ≤ 2 ms overhead on the median).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import orjson

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    AgentTaskContext,
    AgentTaskSpec,
    TextDeltaEvent,
    create_iterable_backend,
    create_openai_compatible_backend,
    run_agent_task_stream,
)

EVENTS_TARGET = 1.15
TTFE_TARGET_MS = 2.0
N_EVENTS = 200_000
TTFE_SAMPLES = 60
KATAN = Path(sys.executable).with_name("llm-katan")
SPEC = AgentTaskSpec(id="bench", intent="hello there, benchmark")


async def events_per_second() -> tuple[float, float, float, float]:
    """(direct events/s, pass-through ratio, runner ratio, cancellable-runner ratio)."""
    events = [TextDeltaEvent(text="tok ") for _ in range(N_EVENTS)]
    backend = create_iterable_backend(events)
    inp = AgentBackendInput(task=SPEC, messages=(AgentMessage("user", "x"),), run_id="b")
    ctx = AgentBackendContext(cancelled=asyncio.Event(), run_id="b")

    async def direct() -> float:
        t0 = time.perf_counter()
        n = 0
        async for _ in backend.stream(inp, ctx):
            n += 1
        return time.perf_counter() - t0

    async def passthrough() -> float:
        # the floor of any async-generator wrapper: re-yield every event, nothing else
        async def layer():  # type: ignore[no-untyped-def]
            async for e in backend.stream(inp, ctx):
                yield e

        t0 = time.perf_counter()
        async for _ in layer():
            pass
        return time.perf_counter() - t0

    async def runner(with_context: bool) -> float:
        t0 = time.perf_counter()
        n = 0
        context = AgentTaskContext() if with_context else None
        async for _ in run_agent_task_stream(SPEC, backend, context=context):
            n += 1
        return time.perf_counter() - t0

    d, p, r, rc = [], [], [], []
    for _ in range(5):
        d.append(await direct())
        p.append(await passthrough())
        r.append(await runner(False))
        rc.append(await runner(True))
    best_d, best_p, best_r, best_rc = min(d), min(p), min(r), min(rc)
    return N_EVENTS / best_d, best_p / best_d, best_r / best_d, best_rc / best_d


async def realistic_ratio() -> float:
    """Runner vs direct drain when each event costs what a real backend pays to produce it:
    parse one OpenAI-style JSON chunk and build the event."""
    chunk = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok "}}]}'

    async def produce(_input, _ctx):  # type: ignore[no-untyped-def]
        loads = orjson.loads
        for _ in range(N_EVENTS):
            data = loads(chunk)
            yield TextDeltaEvent(text=data["choices"][0]["delta"]["content"])

    backend = create_iterable_backend(produce)
    inp = AgentBackendInput(task=SPEC, messages=(AgentMessage("user", "x"),), run_id="b")
    ctx = AgentBackendContext(cancelled=asyncio.Event(), run_id="b")
    d, r = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        async for _ in backend.stream(inp, ctx):
            pass
        d.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        async for _ in run_agent_task_stream(SPEC, backend):
            pass
        r.append(time.perf_counter() - t0)
    return min(r) / min(d)


def start_katan(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(KATAN),
            "--backend",
            "echo",
            "--model",
            "echo",
            "--name",
            "bench-model",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stats-file",
            str(tmp / "stats.json"),
            "--disable-dashboard",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx2.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("llm-katan did not start")


async def time_to_first_event(base: str) -> tuple[float, float]:
    client = httpx2.AsyncClient(timeout=30)
    backend = create_openai_compatible_backend(base, "k", "bench-model", client=client)
    url = f"{base}/v1/chat/completions"
    body = orjson.dumps(
        {
            "model": "bench-model",
            "messages": [{"role": "user", "content": SPEC.intent}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    headers = {"authorization": "Bearer k", "content-type": "application/json"}

    async def bare() -> float:
        t0 = time.perf_counter()
        async with client.stream("POST", url, content=body, headers=headers) as resp:
            first = None
            async for chunk in resp.aiter_bytes():
                if b'"content"' in chunk and first is None:
                    first = time.perf_counter() - t0
            assert first is not None
            return first

    async def ours() -> float:
        t0 = time.perf_counter()
        first = None
        async for e in run_agent_task_stream(SPEC, backend):
            if e.type == "text.delta" and first is None:
                first = time.perf_counter() - t0
        assert first is not None
        return first

    for _ in range(5):  # warm the connection pool and both code paths
        await bare()
        await ours()
    b, o = [], []
    for i in range(TTFE_SAMPLES):  # alternate the order so neither side always goes first
        if i % 2:
            o.append(await ours())
            b.append(await bare())
        else:
            b.append(await bare())
            o.append(await ours())
    await client.aclose()
    return statistics.median(b) * 1000, statistics.median(o) * 1000


def main() -> int:
    direct_eps, ratio_floor, ratio, ratio_ctx = asyncio.run(events_per_second())
    ratio_real = asyncio.run(realistic_ratio())
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_katan(Path(tmp))
        try:
            bare_ms, ours_ms = asyncio.run(time_to_first_event(base))
        finally:
            proc.kill()
            proc.wait(timeout=10)
    overhead = ours_ms - bare_ms
    print(f"agent task runner ({N_EVENTS} events, best of 5; TTFE median of {TTFE_SAMPLES})")
    print(f"{'measure':<44} {'baseline':>12} {'ours':>12} {'ratio':>7} {'target':>8}")
    print(
        f"{'events/s, bare async-gen pass-through (floor)':<44} {direct_eps:>12,.0f} "
        f"{direct_eps / ratio_floor:>12,.0f} {ratio_floor:>6.2f}x {'-':>8}"
    )
    print(
        f"{'events/s, iterable backend (no context)':<44} {direct_eps:>12,.0f} "
        f"{direct_eps / ratio:>12,.0f} {ratio:>6.2f}x {'≤' + str(EVENTS_TARGET) + 'x':>8}"
    )
    print(
        f"{'events/s, iterable backend (cancellable)':<44} {direct_eps:>12,.0f} "
        f"{direct_eps / ratio_ctx:>12,.0f} {ratio_ctx:>6.2f}x {'≤' + str(EVENTS_TARGET) + 'x':>8}"
    )
    print(
        f"{'events/s, events parsed from JSON chunks':<44} {'':>12} {'':>12} "
        f"{ratio_real:>6.2f}x {'(info)':>8}"
    )
    print(
        f"{'time to first event, llm-katan (ms)':<44} {bare_ms:>12.2f} {ours_ms:>12.2f} "
        f"{ours_ms / bare_ms:>6.2f}x {'+' + str(TTFE_TARGET_MS) + 'ms':>8}"
    )
    print(f"time-to-first-event overhead: {overhead:+.2f} ms")
    ok = ratio <= EVENTS_TARGET and ratio_ctx <= EVENTS_TARGET and overhead <= TTFE_TARGET_MS
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
