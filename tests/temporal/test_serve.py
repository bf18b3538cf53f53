"""`serve --engine temporal`: the chat service starts each turn on Temporal and streams it
from the store's log; a real HTTP client reads the turn and re-attaches through the events
endpoint while a Temporal worker (not the server) calls the backend."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx2
import orjson
from temporalio.client import Client

from agent_runtime.backends import create_echo_backend
from agent_runtime.durable import open_store
from agent_runtime.server import BackendConfig, backend_from_env, create_app
from agent_runtime.temporal import create_worker
from agent_runtime.temporal.server import TemporalTurnRunner, temporal_runner_from_env
from tests.server.conftest import serving


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines() if line.strip()]


def _text(payloads: list[dict[str, Any]]) -> str:
    text = ""
    for p in payloads:
        if p.get("type") == "session.run.restarted":
            text = ""
        elif p.get("type") == "text_delta":
            text += p["text"]
    return text


def test_the_engine_is_chosen_by_the_environment() -> None:
    assert backend_from_env({}).runner is None
    config = backend_from_env(
        {"AGENT_RUNTIME_ENGINE": "temporal", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )
    assert config.runner is not None


async def test_a_chat_turn_on_temporal_over_http(
    temporal_client: Client, temporal_server: Any, tmp_path: Path
) -> None:
    queue = f"serve-{uuid.uuid4().hex[:8]}"
    store_url = f"sqlite:///{tmp_path}/runs.db"
    worker_store = await open_store(store_url)
    worker = create_worker(
        temporal_client,
        task_queue=queue,
        store=worker_store,
        backend=create_echo_backend(chunk_chars=3),
    )
    runner = temporal_runner_from_env(
        {"TEMPORAL_ADDRESS": temporal_server.address, "AGENT_RUNTIME_TASK_QUEUE": queue}
    )
    config = BackendConfig(backend=create_echo_backend(), model="echo", runner=runner)
    app = create_app(store_url=store_url, backend=config, sweep_interval_ms=None)
    body = {"session_id": f"s{uuid.uuid4().hex[:6]}", "turn_index": 0, "text": "hello there"}
    try:
        async with worker:
            with serving(app) as url:
                async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
                    turn = await http.post("/api/chat", json=body)
                    assert turn.status_code == 200, turn.text
                    execution_id = turn.headers["x-execution-id"]
                    lines = _lines(turn.content)
                    kinds = [line["type"] for line in lines]
                    assert kinds[0] == "session.run.started"
                    assert kinds[-1] == "session.run.completed", lines[-3:]
                    assert _text(lines) == "echo: hello there"
                    (run,) = await worker_store.list_runs()  # the durable run the worker drove
                    assert run.status == "completed"
                    assert run.outcome["text"] == "echo: hello there"
                    # a reloaded page re-attaches from a cursor through the events endpoint
                    events = await http.get(f"/api/runs/{execution_id}/events", params={"after": 1})
                    records = _lines(events.content)
                    first = await worker_store.read_stream_events(run.run_id, limit=2)
                    replay = [r.payload for r in first] + [
                        r["payload"] for r in records if r["seq"] is not None
                    ]
                    assert _text(replay) == "echo: hello there"
                    assert records[-1]["payload"]["type"] == "session.run.completed"
                    # asking for the same turn again attaches to the run: same text, no
                    # second execution on Temporal
                    again = await http.post("/api/chat", json=body)
                    assert _text(_lines(again.content)) == "echo: hello there"
                    other = await http.post("/api/chat", json={**body, "text": "other"})
                    assert other.status_code == 409
        handle = temporal_client.get_workflow_handle(run.run_id)
        history = await handle.fetch_history()
        started = [
            e for e in history.events if e.HasField("workflow_execution_started_event_attributes")
        ]
        assert len(started) == 1
    finally:
        await worker_store.close()


def test_the_temporal_runner_leaves_turns_to_temporal(tmp_path: Path) -> None:
    async def check() -> None:
        store = await open_store(f"sqlite:///{tmp_path}/r.db")
        runner = TemporalTurnRunner(store, create_echo_backend(), address="127.0.0.1:1")
        assert await runner.drain() == []
        await store.close()

    asyncio.run(check())


def test_serve_refuses_an_unknown_engine(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_runtime.cli",
            "serve",
            "--engine",
            "carrier-pigeon",
            "--store",
            f"sqlite:///{tmp_path}/r.db",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "AGENT_RUNTIME_ENGINE must be local or temporal" in done.stderr
