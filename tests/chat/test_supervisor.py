"""TurnSupervisor: serves a turn by run id (an unknown one is DurableRunNotFoundError, the DO's
404); an orphaned turn (its worker died, nobody came back) is re-driven headless to
completion, and a later request replays it without calling the producer."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_runtime import DurableValueError
from agent_runtime.chat import (
    SweepTarget,
    TurnSupervisor,
    result_event,
    run_durable_turn,
    turn_event_id,
)
from agent_runtime.durable import DurableRunManifest, DurableRunStore, RunRecord
from agent_runtime.errors import DurableRunNotFoundError

MANIFEST = DurableRunManifest("chat-test", {"id": "turn", "intent": "say hi"}, {"q": "hi"})
OTHER = DurableRunManifest("someone-else", {"id": "job", "intent": "batch"}, {"n": 1})
CHILD = Path(__file__).with_name("turn_child.py")


def deltas(n: int) -> list[dict[str, Any]]:
    return [{"type": "text_delta", "text": f"t{i} "} for i in range(n)]


class Producer:
    def __init__(self, n: int) -> None:
        self.events = deltas(n)
        self.calls = 0

    def __call__(self) -> Producer:
        self.calls += 1
        return self

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for e in self.events:
            yield e

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return "".join(e["text"] for e in self.events)


async def orphan(store: DurableRunStore, run_id: str, manifest: DurableRunManifest) -> None:
    """A worker that claimed the turn, logged three events and died (1 ms lease)."""
    await store.start_or_resume(run_id, manifest, "dead-worker", lease_ms=1)
    await store.append_stream_events(
        run_id, [(turn_event_id(i), e) for i, e in enumerate(deltas(3))]
    )
    await asyncio.sleep(0.01)


async def test_sweep_redrives_orphans_it_resolves(store: DurableRunStore) -> None:
    await orphan(store, "o:1", MANIFEST)
    await orphan(store, "o:2", OTHER)
    producer = Producer(8)
    finished: list[str] = []

    def resolve(run: RunRecord, manifest: DurableRunManifest) -> SweepTarget | None:
        if manifest.project_id != "chat-test":
            return None
        return SweepTarget(producer, finished.append)

    supervisor = TurnSupervisor(store, resolve, worker_id="host-1", lease_ms=2000)
    assert [r.run_id for r in await supervisor.orphans()] == ["o:2", "o:1"]
    assert await supervisor.sweep_once() == ["o:1"]
    run = await store.load_run("o:1")
    assert run is not None and run.status == "completed"
    assert finished == [producer.final_text()]  # the finish step ran once, headless
    log = await store.read_stream_events("o:1")
    assert [r.payload for r in log] == producer.events
    untouched = await store.load_run("o:2")
    assert untouched is not None and untouched.status == "running"

    later = run_durable_turn(store, "o:1", MANIFEST, producer)
    assert [e async for e in later] == [result_event(producer.final_text())]
    assert producer.calls == 1 and await supervisor.sweep_once() == []


async def test_background_sweeper(store: DurableRunStore) -> None:
    producer = Producer(4)
    supervisor = TurnSupervisor(
        store, lambda run, m: SweepTarget(producer), lease_ms=2000, sweep_interval_ms=10
    )
    async with supervisor.running():
        await orphan(store, "o:3", MANIFEST)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (run := await store.load_run("o:3")) is None or run.status != "completed":
            assert loop.time() < deadline, "the sweeper did not re-drive the orphan"
            await asyncio.sleep(0.01)
    assert producer.calls == 1 and run.outcome["text"] == producer.final_text()


async def test_serve_by_run_id(store: DurableRunStore) -> None:
    producer = Producer(5)
    declined: list[str] = []

    def resolve(run: RunRecord, manifest: DurableRunManifest) -> SweepTarget | None:
        if manifest.project_id != "chat-test":
            declined.append(run.run_id)
            return None
        return SweepTarget(producer)

    supervisor = TurnSupervisor(store, resolve, worker_id="host-1", lease_ms=2000)
    with pytest.raises(DurableRunNotFoundError):
        await supervisor.serve("o:nobody")  # the DO answers 404: nothing is written
    assert await store.load_run("o:nobody") is None
    await orphan(store, "o:other", OTHER)
    with pytest.raises(DurableRunNotFoundError):
        await supervisor.serve("o:other")  # not this host's turn
    assert declined == ["o:other"]

    await orphan(store, "o:5", MANIFEST)  # three events logged, then the worker died
    turn = await supervisor.serve("o:5", after_seq=1)
    assert [e async for e in turn] == producer.events[2:]  # from the client's cursor on
    assert turn.mode == "resumed" and producer.calls == 1
    replay = await supervisor.serve("o:5")
    assert [e async for e in replay] == [result_event(producer.final_text())]
    assert producer.calls == 1
    fresh = supervisor.drive("o:6", MANIFEST, producer)  # a turn the store does not have yet
    assert [e async for e in fresh] == producer.events and fresh.mode == "fresh"


async def test_supervisor_refuses_bad_arguments(store: DurableRunStore) -> None:
    with pytest.raises(DurableValueError):
        TurnSupervisor("nope", lambda r, m: None)  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        TurnSupervisor(store, "nope")  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        TurnSupervisor(store, lambda r, m: None, sweep_interval_ms=0)


@pytest.mark.slow
async def test_turn_of_a_sigkilled_worker_completes_headless(
    store_url: str, store: DurableRunStore
) -> None:
    n = 30
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), store_url, "o:4", "stream", str(n),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    for _ in range(5):
        await asyncio.wait_for(child.stdout.readline(), 20)
    child.send_signal(signal.SIGKILL)
    await child.wait()

    from .turn_child import MANIFEST as CHILD_MANIFEST
    from .turn_child import Producer as ChildProducer

    def resolve(run: RunRecord, manifest: DurableRunManifest) -> SweepTarget:
        assert manifest.digest == CHILD_MANIFEST.digest  # rebuilt from the stored copy
        return SweepTarget(lambda: ChildProducer(n, None))

    supervisor = TurnSupervisor(store, resolve, lease_ms=2000)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not await supervisor.sweep_once():  # until the dead worker's 600 ms lease lapses
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    log = await store.read_stream_events("o:4")
    assert [r.payload for r in log] == [{"type": "text_delta", "text": f"t{i} "} for i in range(n)]
    later = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), store_url, "o:4", "stream", str(n),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(later.communicate(), 20)
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in lines] == ["result", "__end__"]
    assert lines[1]["mode"] == "replayed"
