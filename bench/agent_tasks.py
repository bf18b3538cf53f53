"""Task-runner overhead.

1. Events/s through `run_agent_task_stream` against the same events each decoded from a JSON
   chunk (what a real backend pays), without and with an abort signal (target ≤ 1.15x).
2. Control loop: overhead per step of `run_agent_task` with a no-op adapter (target ≤ 50 µs).
3. Time to first event against llm-katan: through `run_agent_task_stream` with the
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
from typing import Any

import httpx2
import orjson

from agent_runtime import (
    AbortController,
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskSpec,
    ControlBudget,
    ControlDecision,
    RuntimeSession,
    TextDeltaEvent,
    create_iterable_backend,
    create_openai_compatible_backend,
    run_agent_task,
    run_agent_task_stream,
)
from agent_runtime.types import now_iso

EVENTS_TARGET = 1.15
STEP_TARGET_US = 50.0
TTFE_TARGET_MS = 2.0
N_EVENTS = 200_000
N_STEPS = 20_000
TTFE_SAMPLES = 60
KATAN = Path(sys.executable).with_name("llm-katan")
SPEC = AgentTaskSpec(id="bench", intent="Answer the benchmark prompt.")
CHUNK = b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok "}}]}'


async def events_ratio(*, stamped: bool) -> tuple[float, float, float]:
    """(direct events/s, runner ratio, runner-with-abort-signal ratio), best of 5.

    `stamped`: the backend builds each event as our backends do (ORIGINAL §7.3: the context's
    task and session and the time), so the loop passes it through; otherwise it yields bare
    events, which the loop completes (a hand-written backend)."""

    async def produce(_input: Any, ctx: Any) -> Any:
        loads = orjson.loads
        task, session = ctx.task, ctx.session
        for _ in range(N_EVENTS):
            data = loads(CHUNK)
            text = data["choices"][0]["delta"]["content"]
            if stamped:
                yield TextDeltaEvent(text=text, task=task, session=session, timestamp=now_iso())
            else:
                yield TextDeltaEvent(text=text)

    backend = create_iterable_backend(kind="bench", stream=produce)
    inp = AgentBackendInput(task=SPEC, message="x")
    ctx = AgentBackendContext(task=SPEC, session=RuntimeSession.new("bench"))

    async def direct() -> float:
        t0 = time.perf_counter()
        async for _ in backend.stream(inp, ctx):
            pass
        return time.perf_counter() - t0

    async def runner(with_signal: bool) -> float:
        signal = AbortController().signal if with_signal else None
        t0 = time.perf_counter()
        async for _ in run_agent_task_stream(SPEC, backend, signal=signal):
            pass
        return time.perf_counter() - t0

    d, r, rs = [], [], []
    for _ in range(5):
        d.append(await direct())
        r.append(await runner(False))
        rs.append(await runner(True))
    best = min(d)
    return N_EVENTS / best, min(r) / best, min(rs) / best


class _NoOpAdapter:
    """Observes nothing, validates nothing, always continues with the same action."""

    def observe(self, **_: Any) -> None:
        return None

    def validate(self, **_: Any) -> list[Any]:
        return []

    def decide(self, _ctx: Any) -> ControlDecision:
        return ControlDecision.continue_(None)

    def act(self, _action: Any, _ctx: Any) -> None:
        return None

    def should_stop(self, _ctx: Any) -> dict[str, Any]:
        return {"stop": False, "pass": False, "reason": "keep going"}


async def step_overhead_us() -> float:
    """Microseconds per control step of `run_agent_task` with a no-op adapter, best of 5."""
    adapter = _NoOpAdapter()
    budget = ControlBudget(max_steps=N_STEPS, max_wall_ms=600_000)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        result = await run_agent_task(SPEC, adapter, budget=budget)
        elapsed = time.perf_counter() - t0
        assert len(result.control.steps) == N_STEPS, result.control.reason
        best = min(best, elapsed)
    return best / N_STEPS * 1e6


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
    backend = create_openai_compatible_backend(
        api_key="k", base_url=f"{base}/v1", model="bench-model", http_client=client
    )
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
            if e.type == "text_delta" and first is None:
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
    direct_eps, ratio, ratio_signal = asyncio.run(events_ratio(stamped=True))
    bare_eps, bare_ratio, bare_signal = asyncio.run(events_ratio(stamped=False))
    step_us = asyncio.run(step_overhead_us())
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_katan(Path(tmp))
        try:
            bare_ms, ours_ms = asyncio.run(time_to_first_event(base))
        finally:
            proc.kill()
            proc.wait(timeout=10)
    overhead = ours_ms - bare_ms
    print(
        f"agent task runner ({N_EVENTS} events and {N_STEPS} control steps, best of 5; "
        f"TTFE median of {TTFE_SAMPLES})"
    )
    print(f"{'measure':<48} {'baseline':>12} {'ours':>12} {'ratio':>7} {'target':>8}")
    target = "≤" + str(EVENTS_TARGET) + "x"
    print(
        f"{'events/s, decoded from JSON chunks, stamped':<48} {direct_eps:>12,.0f} "
        f"{direct_eps / ratio:>12,.0f} {ratio:>6.2f}x {target:>8}"
    )
    print(
        f"{'events/s, decoded from JSON chunks, abortable':<48} {direct_eps:>12,.0f} "
        f"{direct_eps / ratio_signal:>12,.0f} {ratio_signal:>6.2f}x {target:>8}"
    )
    print(
        f"{'events/s, bare events the loop completes':<48} {bare_eps:>12,.0f} "
        f"{bare_eps / bare_ratio:>12,.0f} {bare_ratio:>6.2f}x {'(info)':>8}"
    )
    print(
        f"{'events/s, bare events, abortable':<48} {bare_eps:>12,.0f} "
        f"{bare_eps / bare_signal:>12,.0f} {bare_signal:>6.2f}x {'(info)':>8}"
    )
    print(
        f"{'control loop overhead per step (µs)':<48} {'':>12} {step_us:>12.1f} {'':>7} "
        f"{'≤' + str(STEP_TARGET_US):>8}"
    )
    print(
        f"{'time to first event, llm-katan (ms)':<48} {bare_ms:>12.2f} {ours_ms:>12.2f} "
        f"{ours_ms / bare_ms:>6.2f}x {'+' + str(TTFE_TARGET_MS) + 'ms':>8}"
    )
    print(f"time-to-first-event overhead: {overhead:+.2f} ms")
    ok = (
        ratio <= EVENTS_TARGET
        and ratio_signal <= EVENTS_TARGET
        and step_us <= STEP_TARGET_US
        and overhead <= TTFE_TARGET_MS
    )
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
