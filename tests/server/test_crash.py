"""A worker SIGKILLed mid-turn: its partial log stays readable, the events tail ends once the
lease lapses (saying the turn was interrupted), and asking for the turn again resumes it: the
logged prefix is delivered as it was and, since the new backend answers differently, a
`session.run.restarted` line and the new answer follow; the client's text after applying it
is the stored text. On SQLite and on PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

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


def client_text(events: list[dict[str, Any]]) -> str:
    """What the chat page shows: deltas, a restart dropping what came before it."""
    text = ""
    for event in events:
        if event["type"] == "session.run.restarted":
            text = ""
        elif event["type"] == "text_delta":
            text += event["text"]
    return text


@pytest.fixture(params=["sqlite", "postgres"])
def crash_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


def test_turn_of_a_killed_worker_is_resumed_by_the_next_request(crash_store: str) -> None:
    _kill_worker_mid_turn(crash_store, "crash")
    app = create_app(store_url=crash_store, backend=create_echo_backend(), sweep_interval_ms=None)
    with serving(app) as url:
        started = time.monotonic()
        partial = httpx2.get(f"{url}/api/runs/chat:crash:0/events", timeout=10)
        assert time.monotonic() - started < 5  # ends when the 1 s lease lapses
        records = [orjson.loads(x) for x in partial.text.splitlines()]
        assert len(records) >= 5
        assert all(r["payload"]["type"] == "text_delta" for r in records[:-1])
        closing = records[-1]["payload"]
        assert closing["type"] == "session.run.interrupted"
        assert closing["data"]["sessionId"] == "crash"
        assert closing["data"]["executionId"] == "chat:crash:0"
        prefix = [r["payload"] for r in records[:-1]]
        again = httpx2.post(
            f"{url}/api/chat", json={"session_id": "crash", "turn_index": 0, "text": "go"}
        )
        events = [orjson.loads(x) for x in again.text.splitlines()]
        assert events[0]["type"] == "session.run.started"
        assert events[1 : 1 + len(prefix)] == prefix
        assert events[1 + len(prefix)] == {
            "type": "session.run.restarted",
            "data": {"sessionId": "crash", "attempt": 2},
        }
        assert events[-1] == {
            "type": "session.run.completed",
            "data": {"sessionId": "crash", "replayed": False},
        }
        log = [
            orjson.loads(x)
            for x in httpx2.get(f"{url}/api/runs/chat:crash:0/events").text.splitlines()
        ]
    stored = log[-1]["payload"]
    assert stored["type"] == "session.run.completed"
    assert client_text(events[1:-1]) == stored["data"]["finalText"] == "echo: go"
    # the log holds exactly what the client got, in order: nothing lost, nothing twice
    assert [r["payload"] for r in log[:-1]] == events[1:-1]
    assert client_text([r["payload"] for r in log[:-1]]) == "echo: go"  # a page re-reading it


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
        "result",
        "session.run.completed",
    ]
