"""The server SIGKILLed mid-turn (a real uvicorn in its own process), a fresh server started on
the same store and port: the AI SDK's chat (resuming through `GET /api/ui/chat/{id}/stream`
with its last event id) and AG-UI's `HttpAgent` (re-posting the run with it) each end with the
stored text, no part repeated or missing. The scripted backend answers deterministically, so
the fresh server's re-run repeats the logged prefix and continues. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.durable import open_store

from .node import JS_DIR
from .scripted import words
from .servers import AUTH

WORDS = 60


@pytest.fixture(params=["sqlite", "postgres"])
def crash_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server(store_url: str, port: int, delay: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.dialects.serve_worker", store_url, str(port), str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != b"serving\n":
        proc.kill()
        raise AssertionError(line + proc.stdout.read(4000))
    return proc


async def _until(store_url: str, run_id: str, ready: Any) -> Any:
    """Poll the store until `ready(run, log)` holds (60 s at most); returns the run."""
    store = await open_store(store_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            run = await store.load_run(run_id)
            log = await store.read_stream_events(run_id)
            if ready(run, log):
                return run
            assert time.monotonic() < deadline, "the store never got there"
            await asyncio.sleep(0.02)
    finally:
        await store.close()


def _logged(count: int) -> Any:
    return lambda run, log: run is not None and len(log) >= count


def _lapsed(run: Any, _log: Any) -> bool:
    expires = run.lease_expires_at
    return expires is None or expires.timestamp() < time.time()


def _ended(run: Any, _log: Any) -> bool:
    return bool(run.status == "completed")


@pytest.fixture
def killed_mid_turn(crash_store: str) -> Iterator[Any]:
    """Run a Node client job against a server that is SIGKILLed once the turn `run_id` has
    logged 10 events; a fresh server then takes over. Yields `drive(script, job, run_id)`
    returning the client's output and the stored run."""
    procs: list[subprocess.Popen[bytes]] = []

    def drive(node: str, script: str, job: dict[str, Any], run_id: str) -> tuple[Any, Any]:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        procs.append(first := _server(crash_store, port, 0.05))
        full = {**{k: v.replace("URL", url) for k, v in job.items() if isinstance(v, str)}}
        full |= {k: v for k, v in job.items() if not isinstance(v, str)}
        full |= {"headers": AUTH, "waitFor": f"{url}/healthz"}
        client = subprocess.Popen(
            [node, script, json.dumps(full)],
            cwd=JS_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            asyncio.run(_until(crash_store, run_id, _logged(10)))
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            asyncio.run(_until(crash_store, run_id, _lapsed))  # its worker is gone for good
            procs.append(_server(crash_store, port, 0.0))
            out, err = client.communicate(timeout=120)
        finally:
            if client.poll() is None:
                client.kill()
        assert client.returncode == 0, err[-4000:]
        run = asyncio.run(_until(crash_store, run_id, _ended))
        return json.loads(out.strip().splitlines()[-1]), run

    yield drive
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


def test_ai_sdk_resumes_a_turn_across_a_server_crash(node: str, killed_mid_turn: Any) -> None:
    out, run = killed_mid_turn(
        node,
        "vercel_client.mjs",
        {
            "api": "URL/api/ui/chat",
            "chatId": "crash-v",
            "text": f"slow {WORDS}",
            "resume": True,
            "replay": False,
        },
        "chat:acme:ann:crash-v:0",
    )
    assert out["status"] == "ready", out
    assert out["errors"] == ["network error"]  # the crash, then the resume
    assert out["statuses"][0] == 200 and out["statuses"][-1] == 200
    (assistant,) = [m for m in out["messages"] if m["role"] == "assistant"]
    texts = [p["text"] for p in assistant["parts"] if p["type"] == "text"]
    # the SDK keeps a part re-opened at the cursor as a second part: the answer split there,
    # every word once, none missing
    assert "".join(texts) == run.outcome["text"] == words(WORDS)
    assert len(texts) <= 2
    said = "".join(texts).split()
    assert len(said) == len(set(said)) == WORDS
    assert run.status == "completed"


def test_agui_resumes_a_turn_across_a_server_crash(node: str, killed_mid_turn: Any) -> None:
    out, run = killed_mid_turn(
        node,
        "agui_client.mjs",
        {
            "url": "URL/api/agui",
            "threadId": "crash-a",
            "text": f"slow {WORDS}",
            "resumeAfterDrop": True,
        },
        "chat:acme:ann:crash-a:0",
    )
    assert out["runs"][-1]["error"] is None, out["runs"]
    assert len(out["runs"]) == 2 and out["runs"][0]["error"] is not None  # the crash
    assistant = [m["content"] for m in out["messages"] if m["role"] == "assistant"]
    assert assistant == [run.outcome["text"]] == [words(WORDS)]
    types = [e["data"]["type"] for e in out["events"] if isinstance(e["data"], dict)]
    assert types.count("TEXT_MESSAGE_END") == 1 and types[-1] == "RUN_FINISHED"
