"""Durable turns across real processes: SIGKILL a worker mid-stream or mid-persist, then a
fresh process re-attaches, resumes (restarting the turn when the new process answers
differently) or replays; every event reaches the client exactly once."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_runtime.chat import ChatTurnIdentity, DurableChatTurnEngine, result_event
from agent_runtime.durable import DurableRunStore

CHILD = Path(__file__).with_name("turn_child.py")
N = 30
ALL = [{"type": "text_delta", "text": f"t{i} "} for i in range(N)]
TEXT = "".join(e["text"] for e in ALL)

pytestmark = pytest.mark.slow


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args, stdout=asyncio.subprocess.PIPE
    )


async def read_line(proc: asyncio.subprocess.Process) -> dict[str, Any] | None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    return orjson.loads(line) if line else None


async def read_all(proc: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    out = []
    while (event := await read_line(proc)) is not None:
        out.append(event)
    await asyncio.wait_for(proc.wait(), 20)
    return out


async def test_sigkill_mid_stream_then_a_fresh_process_resumes(
    store_url: str, store: DurableRunStore
) -> None:
    run_id = "proc:sess:kill"
    first = await spawn(store_url, run_id, "stream", str(N))
    seen = [await read_line(first) for _ in range(10)]
    first.send_signal(signal.SIGKILL)
    seen += await read_all(first)  # whatever the client received before the connection died
    assert first.returncode == -signal.SIGKILL
    assert seen == ALL[: len(seen)] and len(seen) < N
    logged = await store.read_stream_events(run_id)
    assert len(logged) >= len(seen)  # an event reaches a client once it is logged

    # the client reconnects to another process with the last position it saw
    second = await spawn(store_url, run_id, "stream", str(N), str(len(seen) - 1))
    rest = await read_all(second)
    assert second.returncode == 0
    assert rest[-1] == {"type": "__end__", "mode": "resumed", "text": TEXT}
    assert seen + rest[:-1] == ALL  # every event exactly once, in order
    log = await store.read_stream_events(run_id)
    assert [r.payload for r in log] == ALL and [r.seq for r in log] == list(range(N))

    # a new client with no cursor gets the completed turn as one event
    third = await spawn(store_url, run_id, "stream", str(N))
    assert await read_all(third) == [
        result_event(TEXT),
        {"type": "__end__", "mode": "replayed", "text": TEXT},
    ]


async def test_second_process_attaches_to_the_live_worker(
    store_url: str, store: DurableRunStore, tmp_path: Path
) -> None:
    run_id = "proc:sess:attach"
    gate = tmp_path / "gate"
    first = await spawn(store_url, run_id, "stream", str(N), "-", str(gate))
    seen_first = [await read_line(first) for _ in range(5)]  # then it holds until the gate
    second = await spawn(store_url, run_id, "stream", str(N), "-", str(gate))
    seen_second = [await read_line(second)]  # served from the log of the live worker
    gate.touch()
    seen_first += await read_all(first)
    seen_second += await read_all(second)
    assert seen_first == [*ALL, {"type": "__end__", "mode": "fresh", "text": TEXT}]
    assert seen_second == [*ALL, {"type": "__end__", "mode": "attached", "text": TEXT}]
    assert len(await store.read_stream_events(run_id)) == N


async def test_crash_between_llm_and_persist_loses_nothing(
    store_url: str, store: DurableRunStore
) -> None:
    crashed = await spawn(store_url, "proc:sess:0", "engine-crash", str(N))
    lines = await read_all(crashed)
    assert crashed.returncode == -signal.SIGKILL
    assert lines[0]["data"] == {"sessionId": "sess", "tenantId": "tenant", "turnIndex": 0}
    assert lines[1:] == ALL
    steps = await store.load_steps("proc:sess:0")
    assert [(s.intent, s.status) for s in steps] == [("chat.turn.produce", "completed")]
    crashed_run = await store.load_run("proc:sess:0")
    assert crashed_run is not None and crashed_run.status == "running"  # not ended: finish again

    class Hooks:
        def __init__(self) -> None:
            self.produced = 0
            self.persisted: list[str] = []

        def produce(self) -> Any:
            self.produced += 1
            raise AssertionError("the checkpointed text must be reused")

        def persist_assistant_message(self, identity: ChatTurnIdentity, text: str) -> None:
            self.persisted.append(text)

    hooks = Hooks()
    engine = DurableChatTurnEngine(store, "proc", lease_ms=600)
    identity = ChatTurnIdentity("tenant", "sess", "user", 0)
    body = [orjson.loads(b) async for b in engine.run_turn(identity, hooks).body]
    assert [e["type"] for e in body] == [
        "session.run.started",
        *["text_delta"] * N,
        "session.run.completed",
    ]
    assert body[1:-1] == ALL and hooks.produced == 0 and hooks.persisted == [TEXT]
    again = [orjson.loads(b) async for b in engine.run_turn(identity, hooks).body]
    assert again[1:] == [
        result_event(TEXT),
        {"type": "session.run.completed", "data": {"sessionId": "sess", "replayed": True}},
    ]
    assert hooks.persisted == [TEXT]  # a replay does not persist twice


def apply(text: str, event: dict[str, Any]) -> str:
    """What a chat client shows after one line: a restart drops the partial text."""
    if event["type"] == "session.run.restarted":
        return ""
    if event["type"] == "text_delta":
        return text + event["text"]
    if event["type"] == "result":
        return str(event["data"]["finalText"])
    return text


async def test_sigkill_mid_turn_then_a_process_that_answers_differently(
    store_url: str, store: DurableRunStore
) -> None:
    run_id = "proc:sess:0"
    first = await spawn(store_url, run_id, "engine-vary", str(N))
    seen = [await read_line(first) for _ in range(8)]  # started + 7 deltas of attempt 1
    first.send_signal(signal.SIGKILL)
    seen += await read_all(first)
    assert first.returncode == -signal.SIGKILL
    assert seen[0] is not None and seen[0]["type"] == "session.run.started"
    got = [e for e in seen[1:] if e is not None]
    assert got and all(e["type"] == "text_delta" for e in got) and len(got) < N

    # the client reconnects to another process with the last log position it received
    second = await spawn(store_url, run_id, "engine-vary", str(N), str(len(got) - 1))
    lines = await read_all(second)
    assert second.returncode == 0
    persisted = [e["text"] for e in lines if e["type"] == "__persisted__"]
    rest = [e for e in lines if e["type"] != "__persisted__"]
    assert rest[0]["type"] == "session.run.started"
    assert rest[-1] == {
        "type": "session.run.completed",
        "data": {"sessionId": "sess", "replayed": False},
    }
    restarts = [e for e in rest if e["type"] == "session.run.restarted"]
    assert restarts == [
        {"type": "session.run.restarted", "data": {"sessionId": "sess", "attempt": 2}}
    ]
    # no event lost or duplicated: what the client got, in order, is the turn's log
    log = await store.read_stream_events(run_id)
    assert got + rest[1:-1] == [r.payload for r in log]
    # and after applying the restart its text is the stored (and persisted) text
    text = ""
    for event in got + rest[1:-1]:
        text = apply(text, event)
    run = await store.load_run(run_id)
    assert run is not None and run.status == "completed"
    assert text == run.outcome["text"] == persisted[0]
    tag = rest[rest.index(restarts[0]) + 1]["text"].removesuffix("0 ")
    assert tag != got[0]["text"].removesuffix("0 ")  # the second process answered otherwise
    assert text == "".join(f"{tag}{i} " for i in range(N))
