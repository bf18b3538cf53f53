"""Chat service safety costs and leaks, on a real uvicorn server with two tenants.

1. Timing oracle: tenant B asks 100 times for tenant A's finished turn and 100 times for a
   turn that exists nowhere (interleaved). Both must answer alike; target: the medians within
   15% of each other (the durable id names the tenant, so A's run is never read).
2. Stream scrubbing: the cost per text delta of `StreamScrubber.push` on prose that holds the
   scrubber's trigger words, 4 characters a delta. Target ≤ 25 µs (a model streams a delta
   every few milliseconds).
3. What the safety layers add to a request: median `GET /api/models` with a key against the
   same app's `GET /healthz` (no key, no store) — printed, no target.
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import uvicorn

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import ApiKeys, StreamScrubber, create_app, uvicorn_config

ORACLE_TARGET = 0.15
SCRUB_TARGET_US = 25.0
KEY_A, KEY_B = "bench-tenant-a-0123456789", "bench-tenant-b-0123456789"


@contextmanager
def serving(app: object) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _ms(client: httpx2.Client, url: str, key: str | None) -> tuple[float, int, bytes]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    started = time.perf_counter()
    r = client.get(url, headers=headers)
    return (time.perf_counter() - started) * 1000, r.status_code, r.content


def oracle(tmp: Path) -> bool:
    keys = ApiKeys.parse(f"{KEY_A}=a:u, {KEY_B}=b:u", source="bench", separator=",")
    app = create_app(
        store_url=f"sqlite:///{tmp}/runs.db",
        backend=create_echo_backend(chunk_chars=2),
        api_keys=keys,
        sweep_interval_ms=None,
    )
    with serving(app) as url, httpx2.Client(timeout=10) as client:
        turn = {"session_id": "victim", "turn_index": 0, "text": "a long private answer " * 20}
        client.post(f"{url}/api/chat", json=turn, headers={"authorization": f"Bearer {KEY_A}"})
        known, unknown, answers = [], [], set()
        for _ in range(10):  # warm up
            _ms(client, f"{url}/api/runs/chat:victim:0/events", KEY_B)
        for _ in range(100):
            ms, status, body = _ms(client, f"{url}/api/runs/chat:victim:0/events", KEY_B)
            known.append(ms)
            answers.add((status, body))
            ms, status, body = _ms(client, f"{url}/api/runs/chat:nobody:0/events", KEY_B)
            unknown.append(ms)
            answers.add((status, body))
    a, b = statistics.median(known), statistics.median(unknown)
    ratio = a / b
    ok = abs(ratio - 1) <= ORACLE_TARGET and len(answers) == 1
    print(
        f"oracle: another tenant's run {a:.3f} ms, unknown run {b:.3f} ms (medians of 100), "
        f"ratio {ratio:.3f} (target within ±{ORACLE_TARGET:.0%}), distinct answers "
        f"{len(answers)} (target 1) {'ok' if ok else 'MISSED'}"
    )
    return ok


def scrubbing() -> bool:
    prose = "The key idea passes by: a token of trust, no secret at all, just words. " * 60
    best = float("inf")
    for _ in range(5):
        scrubber = StreamScrubber()
        started = time.perf_counter()
        pushes = 0
        for i in range(0, len(prose), 4):
            scrubber.push(prose[i : i + 4])
            pushes += 1
        scrubber.flush()
        best = min(best, (time.perf_counter() - started) / pushes * 1e6)
    ok = best <= SCRUB_TARGET_US
    print(
        f"stream scrubbing: {best:.1f} µs per 4-character delta (best of 5; target "
        f"≤ {SCRUB_TARGET_US:g}) {'ok' if ok else 'MISSED'}"
    )
    return ok


def layers(tmp: Path) -> None:
    keys = ApiKeys.parse(f"{KEY_A}=a:u", source="bench", separator=",")
    app = create_app(
        store_url=f"sqlite:///{tmp}/layers.db", backend=create_echo_backend(), api_keys=keys
    )
    with serving(app) as url, httpx2.Client(timeout=10) as client:
        for _ in range(20):
            _ms(client, f"{url}/healthz", None)
        health = statistics.median(_ms(client, f"{url}/healthz", None)[0] for _ in range(200))
        models = statistics.median(_ms(client, f"{url}/api/models", KEY_A)[0] for _ in range(200))
    print(f"layers: GET /healthz {health:.3f} ms, GET /api/models with a key {models:.3f} ms")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results = [oracle(tmp), scrubbing()]
        layers(tmp)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
