"""A worker SIGKILLed mid-turn: its partial log stays readable, the events tail ends once the
lease lapses (saying the turn was interrupted), and asking for the turn again resumes it: the
logged prefix is delivered as it was, then the turn completes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import orjson

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import create_app
from tests.server.conftest import serving


def _kill_worker_mid_turn(store_url: str, session: str) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.server.crash_worker", store_url, session],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line == b"streaming\n", line + worker.stdout.read(2000)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)


def test_turn_of_a_killed_worker_is_resumed_by_the_next_request(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/runs.db"
    _kill_worker_mid_turn(store_url, "crash")
    app = create_app(store_url=store_url, backend=create_echo_backend(), sweep_interval_ms=None)
    with serving(app) as url:
        started = time.monotonic()
        partial = httpx2.get(f"{url}/api/runs/chat:crash:0/events", timeout=10)
        assert time.monotonic() - started < 5  # ends when the 1 s lease lapses
        records = [orjson.loads(x) for x in partial.text.splitlines()]
        assert len(records) >= 5
        assert all(r["payload"]["type"] == "text_delta" for r in records[:-1])
        assert records[-1]["payload"]["type"] == "session.run.interrupted"
        prefix = [r["payload"] for r in records[:-1]]
        again = httpx2.post(
            f"{url}/api/chat", json={"session_id": "crash", "turn_index": 0, "text": "go"}
        )
        events = [orjson.loads(x) for x in again.text.splitlines()]
        assert events[0]["type"] == "session.run.started"
        assert events[1 : 1 + len(prefix)] == prefix
        assert events[-1]["type"] == "session.run.completed"
        closing = orjson.loads(
            httpx2.get(f"{url}/api/runs/chat:crash:0/events").text.splitlines()[-1]
        )
        assert closing["payload"]["type"] == "session.run.completed"


def test_orphaned_turn_is_swept_to_completion_without_a_request(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/runs.db"
    _kill_worker_mid_turn(store_url, "orphan")
    app = create_app(store_url=store_url, backend=create_echo_backend(), sweep_interval_ms=100)
    with serving(app) as url:
        deadline = time.monotonic() + 15
        while True:
            body = httpx2.get(f"{url}/api/runs/chat:orphan:0/events", timeout=10).text
            closing = orjson.loads(body.splitlines()[-1])["payload"]
            if closing["type"] == "session.run.completed":
                break
            assert closing["type"] == "session.run.interrupted"
            assert time.monotonic() < deadline, "the sweeper did not finish the orphaned turn"
            time.sleep(0.1)
        replay = httpx2.post(
            f"{url}/api/chat", json={"session_id": "orphan", "turn_index": 0, "text": "go"}
        )
    assert [orjson.loads(x)["type"] for x in replay.text.splitlines()] == [
        "session.run.started",
        "turn.replayed",
        "session.run.completed",
    ]
