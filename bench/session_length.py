"""What a chat turn costs as its session grows: one session of TURNS text-only turns through
`create_app` (SQLite file, echo backend, the conversation history on the store's database)
in process over httpx2's ASGI transport, the median turn near the start, the middle and the
end. A turn sends the session's earlier turns as context, so some growth is the work itself
(reading and hashing the context); the history's own bookkeeping (admission, the recorded
answer) reads no messages. Printed, no target.

    .venv/bin/python bench/session_length.py            # TURNS=200
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

import httpx2

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import create_app

TURNS = int(os.environ.get("TURNS", "200"))
WINDOW = 10


async def turn_times(folder: str) -> list[float]:
    app = create_app(
        store_url=f"sqlite:///{folder}/runs.db",
        backend=create_echo_backend(),
        sweep_interval_ms=None,
    )
    times: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(TURNS):
                body = {"session_id": "long", "turn_index": i, "text": f"question {i} " * 5}
                started = time.perf_counter()
                answer = await client.post("/api/chat", json=body)
                times.append(time.perf_counter() - started)
                if b"session.run.completed" not in answer.content:
                    raise RuntimeError(f"turn {i} did not complete: {answer.content[-200:]!r}")
    return times


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        times = asyncio.run(turn_times(folder))
    marks = (WINDOW // 2, TURNS // 2, TURNS - WINDOW // 2)
    medians = [statistics.median(times[m - WINDOW // 2 : m + WINDOW // 2]) for m in marks]
    load = os.getloadavg()
    print(f"one session of {TURNS} turns, median of {WINDOW} turns around each mark")
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'turn':>8} {'ms':>8} {'x first':>8}")
    for mark, median in zip(marks, medians, strict=True):
        print(f"{mark:>8} {median * 1e3:>8.2f} {median / medians[0]:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
