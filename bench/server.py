"""Chat service cost: what HTTP, the durable engine and the SQLite log add to a turn.

Baseline: `handle_chat_turn` in process over the same 50-delta scripted backend (no store, no
HTTP). Measured over a real uvicorn server on 127.0.0.1 with the embedded SQLite store:
1. a fresh `POST /api/chat` turn (claim, log every event, checkpoint), to the last byte,
2. its time to the first text delta,
3. the same turn asked again (replayed from the store, no backend call),
4. `GET /api/runs/{id}/events` replay of the finished turn's log.
Target: a fresh turn's median stays under 20 ms, so the service adds little next to any real
model call (hundreds of ms to seconds).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import uvicorn

from agent_runtime.backends import create_iterable_backend
from agent_runtime.chat import ChatTurnIdentity, handle_chat_turn
from agent_runtime.server import create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeStreamEvent,
    TextDeltaEvent,
)

DELTAS = 50
TURNS = 60
FRESH_TARGET_MS = 20.0


def backend() -> object:
    async def stream(
        _inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        for i in range(DELTAS):
            yield TextDeltaEvent(text=f"token{i} ")

    return create_iterable_backend(kind="scripted", stream=stream)


class _Producer:
    def __init__(self, events: list[TextDeltaEvent]) -> None:
        self._events = events

    @property
    def stream(self) -> object:
        async def gen() -> object:
            for e in self._events:
                yield e.to_dict()

        return gen()

    def final_text(self) -> str:
        return "".join(e.text for e in self._events)


class _Hooks:
    def produce(self) -> _Producer:
        return _Producer([TextDeltaEvent(text=f"token{i} ") for i in range(DELTAS)])

    def persist_assistant_message(self, _identity: object, _text: str) -> None:
        return None


async def baseline_ms() -> list[float]:
    out = []
    for i in range(TURNS):
        start = time.perf_counter()
        identity = ChatTurnIdentity("t", f"b{i}", "u", 0)
        async for _ in handle_chat_turn(identity, _Hooks()).body:  # type: ignore[arg-type]
            pass
        out.append((time.perf_counter() - start) * 1000)
    return out


def serve(app: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> int:
    base = asyncio.run(baseline_ms())
    tmp = Path(tempfile.mkdtemp())
    app = create_app(store_url=f"sqlite:///{tmp}/runs.db", backend=backend())  # type: ignore[arg-type]
    server, thread, url = serve(app)
    fresh, first, replay, events = [], [], [], []
    with httpx2.Client(timeout=30) as client:
        for i in range(TURNS):
            body = {"session_id": f"s{i}", "turn_index": 0, "text": "bench"}
            start = time.perf_counter()
            got_first = None
            with client.stream("POST", f"{url}/api/chat", json=body) as response:
                for line in response.iter_lines():
                    if got_first is None and '"text_delta"' in line:
                        got_first = time.perf_counter()
            end = time.perf_counter()
            fresh.append((end - start) * 1000)
            first.append(((got_first or end) - start) * 1000)
            start = time.perf_counter()
            client.post(f"{url}/api/chat", json=body).raise_for_status()
            replay.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            client.get(f"{url}/api/runs/chat:s{i}:0/events").raise_for_status()
            events.append((time.perf_counter() - start) * 1000)
    server.should_exit = True
    thread.join(timeout=10)
    b = statistics.median(base)
    rows = [
        ("handle_chat_turn in process (baseline)", base),
        ("POST /api/chat fresh turn, SQLite", fresh),
        ("  time to first delta", first),
        ("POST /api/chat same turn again (replay)", replay),
        ("GET events replay of the turn's log", events),
    ]
    print(f"{DELTAS} deltas per turn, {TURNS} turns; median and p90 in ms")
    print(f"{'':44} {'median':>8} {'p90':>8} {'x baseline':>11}")
    for name, values in rows:
        med = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{name:44} {med:8.2f} {p90:8.2f} {med / b:10.1f}x")
    fresh_med = statistics.median(fresh)
    ok = fresh_med < FRESH_TARGET_MS
    print(
        f"target: fresh turn median < {FRESH_TARGET_MS:.0f} ms: {fresh_med:.1f} ms "
        + ("met" if ok else "TARGET MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
