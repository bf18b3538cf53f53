"""Chat turns on Temporal with a real model server (llm-katan) and real worker processes:
the LLM call is an activity streaming into our durable stream log; a worker SIGKILLed
mid-stream is replaced by another process and the log stays whole."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from temporalio.client import Client

from agent_runtime.backends import create_echo_backend
from agent_runtime.durable import StreamEventRecord, open_store
from agent_runtime.server import TurnRunner, parse_chat_request
from agent_runtime.temporal import chat_turn, chat_turn_request, start_task, task_result
from tests.katan import start_katan, stop_katan

MODEL = "echo-model"
PROMPT = " ".join(f"word{i}" for i in range(40))
STEP_CONFIG: dict[str, Any] = {
    "retries": {"limit": 5, "delay": 50, "backoff": "constant"},
    "timeout": "1 minute",
    "heartbeat": "1 second",  # a killed worker's activity is retried ~1 s later
}


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, base = start_katan(tmp_path_factory.mktemp("katan"), "--itl-ms", "20", name=MODEL)
    yield base
    stop_katan(proc)


class WorkerProcess:
    """`agent-runtime temporal worker` in its own process."""

    def __init__(self, address: str, queue: str, store_url: str, katan: str, log: Path) -> None:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": f"{katan}/v1",
            "OPENAI_API_KEY": "test",
            "OPENAI_MODEL": MODEL,
            "PYTHONUNBUFFERED": "1",
        }
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent_runtime.cli",
                    "temporal",
                    "worker",
                    "--address",
                    address,
                    "--task-queue",
                    queue,
                    "--store",
                    store_url,
                    "--lease-ms",
                    "1000",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while b"worker polling" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def client_text(payloads: list[Any]) -> str:
    """What a chat client shows: text deltas, started over at a restart marker."""
    text = ""
    for p in payloads:
        if p.get("type") == "session.run.restarted":
            text = ""
        elif p.get("type") == "text_delta":
            text += p["text"]
    return text


def assert_whole(records: list[StreamEventRecord]) -> None:
    assert [r.seq for r in records] == list(range(len(records)))  # no gap
    ids = [r.event_id for r in records]
    assert len(set(ids)) == len(ids)  # no event logged twice


async def test_a_worker_killed_mid_stream_is_replaced(
    temporal_client: Client, temporal_server: Any, katan: str, tmp_path: Path
) -> None:
    queue = f"chat-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "runs.db"
    store_url = f"sqlite:///{db}"
    store = await open_store(store_url)
    chat = parse_chat_request(
        orjson.dumps(
            {
                "session_id": f"s{uuid.uuid4().hex[:6]}",
                "turn_index": 0,
                "text": PROMPT,
                "model": MODEL,
            }
        )
    )
    runner = TurnRunner(store, create_echo_backend())
    run_id = runner.execution_id(chat)
    first = WorkerProcess(temporal_server.address, queue, store_url, katan, tmp_path / "w1.log")
    second = None
    try:
        handle = await start_task(
            temporal_client,
            chat_turn,
            run_id=run_id,
            task_queue=queue,
            args=[chat_turn_request(chat, run_id)],
            step_config=STEP_CONFIG,
        )
        deadline = time.monotonic() + 30
        while len(await store.read_stream_events(run_id)) < 6:
            assert time.monotonic() < deadline, (tmp_path / "w1.log").read_text()[-2000:]
            await asyncio.sleep(0.02)
        before = await store.read_stream_events(run_id)
        first.kill()  # SIGKILL mid-activity
        second = WorkerProcess(
            temporal_server.address, queue, store_url, katan, tmp_path / "w2.log"
        )
        result = await asyncio.wait_for(task_result(handle), 60)
        records = await store.read_stream_events(run_id)
        assert_whole(records)
        assert [r.event_id for r in records[: len(before)]] == [r.event_id for r in before]
        run = await store.load_run(run_id)
        assert run is not None and run.status == "completed"
        stored = run.outcome["text"]
        assert result["text"] == stored
        assert client_text([r.payload for r in records]) == stored
        # a client that saw the first events reconnects with its cursor and catches up
        cursor = before[2].seq
        tail = [r.payload async for r in runner.tail(run_id, cursor)]
        assert client_text([r.payload for r in before[: cursor + 1]] + tail) == stored
        history = await handle.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert max(attempts) >= 2  # the step really ran again, on the second worker
    finally:
        first.kill()
        if second is not None:
            second.stop()
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    return str(request.getfixturevalue("pg_dsn"))


async def test_an_agent_task_streams_its_events_into_the_log(
    temporal_client: Client, any_store_url: str
) -> None:
    from agent_runtime.temporal import agent_task, create_worker
    from agent_runtime.types import AgentTaskSpec

    store = await open_store(any_store_url)
    queue = f"task-{uuid.uuid4().hex[:8]}"
    run_id = f"task-{uuid.uuid4().hex[:8]}"
    spec = AgentTaskSpec(id="t1", intent="answer", domain="demo", inputs={"prompt": "ping"})
    request = {"runId": run_id, "task": spec.to_dict(), "input": {"message": "ping"}}
    try:
        worker = create_worker(
            temporal_client, task_queue=queue, store=store, backend=create_echo_backend()
        )
        async with worker:
            result = await run_task_on(temporal_client, agent_task, run_id, queue, request)
        records = await store.read_stream_events(run_id)
        assert_whole(records)
        kinds = [r.payload["type"] for r in records]
        assert kinds[0] == "task_start" and kinds[-1] == "final", kinds
        assert result["text"] == client_text([r.payload for r in records]) != ""
        run = await store.load_run(run_id)
        assert run is not None and run.status == "completed"
    finally:
        await store.close()


async def run_task_on(client: Client, task: Any, run_id: str, queue: str, arg: Any) -> Any:
    handle = await start_task(client, task, run_id=run_id, task_queue=queue, args=[arg])
    return await asyncio.wait_for(task_result(handle), 60)
