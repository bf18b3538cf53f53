"""Serving cost of the chat service against bare Starlette streaming the same lines.

Two server processes on 127.0.0.1, both uvicorn with the same settings:
- `ours`: `create_app` on a SQLite file with the echo backend (each turn claimed, logged,
  checkpointed and completed in the store);
- `floor`: a bare Starlette route that reads the request body, parses it, and streams the
  NDJSON lines `ours` answered one turn with, one line per chunk, with no store;
- `commits`: the same route doing, with plain `sqlite3` on a file set up as ours (WAL,
  synchronous NORMAL), the write transactions `ours` commits for one echo turn: the session
  admitted, the run created and claimed, its step begun, the stream batch logged, the step
  completed, the history appended and the run ended (reported beside the floor: how much of
  the gap the commits alone explain; no target).
One client sends chat turns one after another (a new session each, keep-alive connection), in
interleaved rounds, and reads each response to its last byte: first an `httpx2` client (what
an application's client costs; the target, ours/floor >= 0.85, is on this row), then a bare
socket client (so light that the server's own cost shows: reported, no target). Each process's
RSS is read once it has served TURNS turns (target: ours <= 45 MB). Exits 1 when a target is
missed.

    .venv/bin/python bench/serving.py            # ROUNDS=5, TURNS=1245
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = int(os.environ.get("ROUNDS", "5"))
TURNS = int(os.environ.get("TURNS", "1245"))
RATIO_TARGET = 0.85
RSS_TARGET_MB = 45.0
BODY_TEXT = "bench"


def _serve(kind: str, port: int, arg: str) -> None:
    """Run one server in this process (the child side of `_spawn`)."""
    import uvicorn

    if kind == "ours":
        from agent_runtime.backends import create_echo_backend
        from agent_runtime.server import create_app

        app = create_app(
            store_url=f"sqlite:///{arg}", backend=create_echo_backend(), sweep_interval_ms=None
        )
    elif kind == "floor":
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response, StreamingResponse
        from starlette.routing import Route

        lines = Path(arg).read_bytes().splitlines(keepends=True)

        async def chat(request: Request) -> Response:
            json.loads(await request.body())

            async def body() -> object:
                for line in lines:
                    yield line

            return StreamingResponse(body(), media_type="application/x-ndjson")

        app = Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])
    else:
        app = _commits_app(arg)
    profile = os.environ.get("BENCH_PROFILE")  # a cProfile dump of the server, on SIGINT
    if profile is None:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


_COMMITS_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, manifest TEXT, status TEXT,
    holder TEXT, epoch INTEGER, step_count INTEGER, outcome TEXT, at INTEGER);
CREATE TABLE IF NOT EXISTS steps (run_id TEXT, idx INTEGER, status TEXT, result TEXT,
    at INTEGER, PRIMARY KEY (run_id, idx));
CREATE TABLE IF NOT EXISTS stream (run_id TEXT, seq INTEGER, event_id TEXT, payload TEXT,
    at INTEGER, PRIMARY KEY (run_id, seq), UNIQUE (run_id, event_id));
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, meta TEXT, n INTEGER, at INTEGER);
CREATE TABLE IF NOT EXISTS messages (id TEXT, seq INTEGER, message TEXT, at INTEGER,
    PRIMARY KEY (id, seq));
"""


def _commits_app(lines_path: str) -> object:
    """The floor's route plus, with plain `sqlite3`, the write transactions of one echo turn
    of `ours` (see the module docstring): what the commits alone cost a served turn."""
    import sqlite3

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    lines = Path(lines_path).read_bytes().splitlines(keepends=True)
    db = sqlite3.connect(Path(lines_path).with_name("commits.db"), isolation_level=None)
    db.executescript(_COMMITS_SCHEMA)
    db.execute("PRAGMA synchronous = NORMAL")

    def txn(*statements: tuple[str, tuple[object, ...]]) -> None:
        db.execute("BEGIN IMMEDIATE")
        for sql, args in statements:
            db.execute(sql, args)
        db.execute("COMMIT")

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        session = f"chat:local:local:{body['session_id']}"
        run = f"{session}:{body['turn_index']}"
        text, now = body["text"], time.time_ns() // 1_000_000
        db.execute("SELECT * FROM runs WHERE run_id = ?", (run,)).fetchone()
        txn(("INSERT INTO sessions VALUES (?, ?, 0, ?)", (session, '{"turns":1}', now)))
        db.execute(
            "INSERT INTO runs VALUES (?, ?, 'running', 'w', 1, 0, NULL, ?)",
            (run, json.dumps(body), now),
        )
        txn(
            ("UPDATE runs SET step_count = 1 WHERE run_id = ? AND holder = 'w'", (run,)),
            ("INSERT INTO steps VALUES (?, 0, 'running', NULL, ?)", (run, now)),
        )

        async def stream() -> object:
            yield lines[0]
            events = [
                {"type": "text_delta", "text": "echo: "},
                {"type": "text_delta", "text": text},
            ]
            txn(
                *(
                    (
                        "INSERT INTO stream VALUES (?, ?, ?, ?, ?)",
                        (run, i, f"turn:{i}", json.dumps(e), now),
                    )
                    for i, e in enumerate(events)
                )
            )
            for line in lines[1:-1]:
                yield line
            answer = json.dumps({"text": "echo: " + text, "events": 2})
            txn(
                ("UPDATE runs SET step_count = 1 WHERE run_id = ? AND holder = 'w'", (run,)),
                (
                    "UPDATE steps SET status = 'completed', result = ? WHERE run_id = ? AND idx = 0",
                    (answer, run),
                ),
            )
            txn(
                (
                    "INSERT INTO messages VALUES (?, 0, ?, ?)",
                    (session, json.dumps({"role": "user", "content": text}), now),
                ),
                ("INSERT INTO messages VALUES (?, 1, ?, ?)", (session, answer, now)),
                ("UPDATE sessions SET n = 2 WHERE id = ?", (session,)),
            )
            db.execute(
                "UPDATE runs SET status = 'completed', outcome = ?, holder = NULL WHERE run_id = ?",
                (answer, run),
            )
            yield lines[-1]

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    return Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(kind: str, arg: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), arg])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class HttpxClient:
    """An `httpx2` async client streaming each response (keep-alive)."""

    def __init__(self, port: int) -> None:
        import httpx2

        self.url = f"http://127.0.0.1:{port}/api/chat"
        self.client = httpx2.AsyncClient(timeout=30)

    async def turn(self, session: str) -> bytes:
        body = {"session_id": session, "turn_index": 0, "text": BODY_TEXT}
        async with self.client.stream("POST", self.url, json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"turn refused: {response.status_code}")
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    async def close(self) -> None:
        await self.client.aclose()


class Client:
    """A keep-alive HTTP/1.1 client reading chunked responses (lighter than any library, so
    the server's cost dominates)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def turn(self, session: str) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        body = json.dumps({"session_id": session, "turn_index": 0, "text": BODY_TEXT}).encode()
        head = (
            f"POST /api/chat HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = await self.reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"turn refused: {status!r}")
        chunked = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                chunked = True
        if not chunked:
            raise RuntimeError("expected a chunked streaming response")
        out = bytearray()
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return bytes(out)
            out += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _round(client: Client | HttpxClient, tag: str, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        body = await client.turn(f"{tag}-{i}")
        if b"session.run.completed" not in body:
            raise RuntimeError(f"turn did not complete: {body[-200:]!r}")
    return n / (time.perf_counter() - t0)


async def _bench(
    ours_port: int, floor_port: int, commits_port: int, kind: str, turns: int
) -> tuple[list[float], list[float], list[float]]:
    """Turns/s of ours, the floor and the commits floor, in interleaved rounds."""
    make = HttpxClient if kind == "httpx" else Client
    clients = [make(ours_port), make(floor_port), make(commits_port)]
    per_round = (turns - 20) // ROUNDS
    rates: list[list[float]] = [[], [], []]
    for c in clients:
        await _round(c, f"{kind}-warm", 20)  # warmed up; the warm-up counts toward `turns`
    for r in range(ROUNDS):
        n = per_round if r < ROUNDS - 1 else turns - 20 - per_round * (ROUNDS - 1)
        for i in (1, 0, 2):
            rates[i].append(await _round(clients[i], f"{kind}-r{r}", n))
    for c in clients:
        await c.close()
    return rates[0], rates[1], rates[2]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        ours_proc, ours_port = _spawn("ours", str(db))
        floor_proc: subprocess.Popen[bytes] | None = None
        commits_proc: subprocess.Popen[bytes] | None = None
        try:
            sample = asyncio.run(Client(ours_port).turn("sample"))
            lines = Path(tmp) / "lines.ndjson"
            lines.write_bytes(sample)
            floor_proc, floor_port = _spawn("floor", str(lines))
            commits_proc, commits_port = _spawn("commits", str(lines))
            ports = (ours_port, floor_port, commits_port)
            ours_rates, floor_rates, commits_rates = asyncio.run(_bench(*ports, "httpx", TURNS))
            rss_ours, rss_floor = _rss_mb(ours_proc.pid), _rss_mb(floor_proc.pid)
            raw = asyncio.run(_bench(*ports, "raw", TURNS))
        finally:
            for proc in (ours_proc, floor_proc, commits_proc):
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
    o, f = statistics.median(ours_rates), statistics.median(floor_rates)
    ratio = o / f
    load = os.getloadavg()
    print(f"chat turns, 1 client, echo backend, {TURNS} turns each in {ROUNDS} interleaved rounds")
    print(f"  {len(sample.splitlines())} lines, {len(sample)} bytes per turn")
    print(f"  RSS after {TURNS} turns (the httpx2 rounds, warm-up included)")
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'':34} {'ours':>9} {'floor':>9} {'ours/floor':>11} {'target':>10}")
    print(f"{'turns/s, httpx2 client':34} {o:9.0f} {f:9.0f} {ratio:11.2f} {'>= 0.85':>10}")
    c = statistics.median(commits_rates)
    print(f"{'  floor + the same commits':34} {'':9} {c:9.0f} {c / f:11.2f} {'-':>10}")
    ro, rf = statistics.median(raw[0]), statistics.median(raw[1])
    print(f"{'turns/s, bare socket client':34} {ro:9.0f} {rf:9.0f} {ro / rf:11.2f} {'-':>10}")
    rc = statistics.median(raw[2])
    print(f"{'  floor + the same commits':34} {'':9} {rc:9.0f} {rc / rf:11.2f} {'-':>10}")
    print(
        f"{'RSS after the turns, MB':34} {rss_ours:9.1f} {rss_floor:9.1f} "
        f"{rss_ours / rss_floor:11.2f} {'<= 45 MB':>10}"
    )
    print("  httpx2 rounds ours:  " + " ".join(f"{r:.0f}" for r in ours_rates))
    print("  httpx2 rounds floor: " + " ".join(f"{r:.0f}" for r in floor_rates))
    print("  httpx2 rounds commits: " + " ".join(f"{r:.0f}" for r in commits_rates))
    ok = True
    if ratio < RATIO_TARGET:
        print(f"TARGET MISSED: turns/s ours/floor {ratio:.2f} < {RATIO_TARGET}")
        ok = False
    if rss_ours > RSS_TARGET_MB:
        print(f"TARGET MISSED: RSS {rss_ours:.1f} MB > {RSS_TARGET_MB} MB")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
