"""Dialect cost: what the Vercel UI message stream and AG-UI encoders cost per logged event, and
how fast a client resumes deep into a long turn.

1. Per event, over the same 10,000 stream-log records (text deltas as the service logs them,
   with a tool call and result every 100 and a model call every 500): the native NDJSON line of
   `GET /api/runs/{id}/events` (the baseline), `VercelStream.encode` and `AguiStream.encode`.
   Target: each dialect ≤ 1.3x the native line.
2. Resume latency on SQLite: a finished turn of 5,000 logged events, a client resuming at
   cursor 4,000 — request to first byte of the dialect body (the fold state at the cursor, the
   part open there re-opened, the first record after the cursor encoded). Target ≤ 10 ms
   (median of 30) for a client reconnecting to the process that streamed its turn (which kept
   fold states every 256 records); a fresh process folds the whole prefix (printed, no target).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_runtime.backends import create_echo_backend
from agent_runtime.durable import DurableRunManifest, StreamEventRecord, open_store
from agent_runtime.server import TurnRunner
from agent_runtime.server.dialects import (
    AguiStream,
    FoldCache,
    VercelStream,
    agui_body,
    resume_state,
    vercel_body,
)
from agent_runtime.sse import encode_ndjson

EVENTS = 10_000
RATIO_TARGET = 1.3
LOGGED = 5_000
CURSOR = 4_000
RESUME_TARGET_MS = 10.0
STAMP = "2026-01-01T00:00:00.000Z"


def payloads(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i % 500 == 499:
            out.append({"type": "llm_call", "model": "gpt-4o-mini", "tokensIn": 120,
                        "tokensOut": 80, "latencyMs": 900.5, "timestamp": STAMP})  # fmt: skip
        elif i % 100 == 98:
            out.append({"type": "tool_call", "toolName": "search", "toolCallId": f"c{i}",
                        "args": {"q": "tide tables"}, "timestamp": STAMP})  # fmt: skip
        elif i % 100 == 99:
            out.append({"type": "tool_result", "toolName": "search", "toolCallId": f"c{i - 1}",
                        "result": {"hits": 3}, "timestamp": STAMP})  # fmt: skip
        else:
            out.append({"type": "text_delta", "text": f"token {i} ", "timestamp": STAMP})
    return out


def best_per_event_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def encoder_rows(records: list[StreamEventRecord]) -> list[tuple[str, float]]:
    def native() -> None:
        for r in records:
            encode_ndjson({"seq": r.seq, "event_id": r.event_id, "payload": r.payload})

    def vercel() -> None:
        enc = VercelStream("m")
        enc.start()
        for r in records:
            enc.encode(r)

    def agui() -> None:
        enc = AguiStream("thread", "run", prefix="chat:s:0:")
        enc.start()
        for r in records:
            enc.encode(r)

    n = len(records)
    return [
        ("native NDJSON line (baseline)", best_per_event_us(native, n)),
        ("Vercel UI message stream", best_per_event_us(vercel, n)),
        ("AG-UI", best_per_event_us(agui, n)),
    ]


async def resume_ms(tmp: Path) -> dict[str, tuple[float, float]]:
    store = await open_store(f"sqlite:///{tmp}/runs.db")
    try:
        run_id = "chat:bench:0"
        manifest = DurableRunManifest("chat", {"id": "bench", "intent": "i", "domain": "chat"}, {})
        await store.start_or_resume(run_id, manifest, "w1")
        logged = payloads(LOGGED)
        for start in range(0, LOGGED, 500):
            batch = [(f"turn:{i}", logged[i]) for i in range(start, start + 500)]
            await store.append_stream_events(run_id, batch)
        await store.end_run(run_id, "w1", "completed", {"text": "…"}, lease_epoch=1)
        turns = TurnRunner(store, create_echo_backend())

        async def first_byte(dialect: str, cache: FoldCache) -> float:
            t0 = time.perf_counter()
            state = await resume_state(turns, run_id, CURSOR, cache)
            if dialect == "vercel":
                body = vercel_body(turns, run_id, "m", CURSOR, state, cache)
            else:
                body = agui_body(turns, run_id, "thread", "run", CURSOR, state, cache)
            await anext(body)
            elapsed = (time.perf_counter() - t0) * 1000
            await body.aclose()
            return elapsed

        out = {}
        for dialect in ("vercel", "agui"):
            await first_byte(dialect, FoldCache())  # warm the store's pages
            cold = [await first_byte(dialect, FoldCache()) for _ in range(30)]
            warm = []
            for _ in range(30):
                served = FoldCache()  # this process streamed the turn: its fold states are kept
                async for _ in vercel_body(turns, run_id, "m", None, None, served):
                    pass
                warm.append(await first_byte(dialect, served))
            out[dialect] = (statistics.median(warm), statistics.median(cold))
        return out
    finally:
        await store.close()


def main() -> int:
    now = datetime.now(UTC)
    records = [
        StreamEventRecord(run_id="r", seq=i, event_id=f"turn:{i}", payload=p, created_at=now)
        for i, p in enumerate(payloads(EVENTS))
    ]
    ok = True
    rows = encoder_rows(records)
    base = rows[0][1]
    print(f"dialect encoders, {EVENTS} logged events (best of 5)")
    print(f"{'encoder':<34} {'µs/event':>9} {'ratio':>7} {'target':>8}")
    for name, us in rows:
        ratio = us / base
        baseline = "baseline" in name
        target = "-" if baseline else f"≤{RATIO_TARGET:g}x"
        print(f"{name:<34} {us:>9.2f} {ratio:>6.2f}x {target:>8}")
        ok &= baseline or ratio <= RATIO_TARGET
    with tempfile.TemporaryDirectory() as tmp:
        latency = asyncio.run(resume_ms(Path(tmp)))
    print(f"resume at cursor {CURSOR} of {LOGGED} logged events on SQLite, to the first byte")
    for dialect, (warm, cold) in latency.items():
        print(
            f"{dialect + ', served by this process':<34} {warm:>8.2f} ms "
            f"(median of 30; target ≤{RESUME_TARGET_MS:g} ms)"
        )
        print(f"{dialect + ', a fresh process':<34} {cold:>8.2f} ms (median of 30; info)")
        ok &= warm <= RESUME_TARGET_MS
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
