"""run_supervised_turn: a sandbox process outlives the worker draining it; the stream log and
the persisted handle let a fresh worker resume without losing or repeating an event."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_runtime import (
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableTurnFailedError,
    DurableValueError,
)
from agent_runtime.chat import (
    SandboxReconnectAdapter,
    SubstrateEvent,
    SupervisedStart,
    run_supervised_turn,
)
from agent_runtime.durable import DurableRunManifest, DurableRunStore, RunHandle

from .sandbox_adapter import FileSandboxAdapter

MANIFEST = DurableRunManifest("sup", {"id": "sandbox", "intent": "run"}, {"n": 1})
CHILD = Path(__file__).with_name("supervised_child.py")


def expected(n: int) -> list[dict[str, Any]]:
    return [{"type": "text_delta", "text": f"s{i} "} for i in range(n)]


@pytest.fixture
def adapters() -> Iterator[list[FileSandboxAdapter]]:
    made: list[FileSandboxAdapter] = []
    yield made
    for a in made:
        for p in a.procs:
            p.kill()
            p.wait()


def adapter(made: list[FileSandboxAdapter], root: Path, n: int, **kw: Any) -> FileSandboxAdapter:
    a = FileSandboxAdapter(root, n, **kw)
    made.append(a)
    return a


async def test_fresh_run_persists_handle_and_replays_from_the_log(
    store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    a = adapter(adapters, tmp_path, 12, delay_ms=2)
    assert isinstance(a, SandboxReconnectAdapter)
    turn = run_supervised_turn(store, "sup:1", MANIFEST, "w1", a, lease_ms=2000)
    events = [e async for e in turn]
    assert events == expected(12) and turn.mode == "fresh" and a.starts == 1
    run = await store.load_run("sup:1")
    assert run is not None and run.status == "completed"
    assert run.handle is not None and run.handle.sandbox_id == turn.handle.sandbox_id  # type: ignore[union-attr]
    assert run.handle.status == "completed"  # marked when the substrate run ended
    assert run.outcome == {"events": 12, "last_event_id": "ev-11"}
    log = await store.read_stream_events("sup:1")
    assert [r.event_id for r in log] == [f"ev-{i}" for i in range(12)]

    again = run_supervised_turn(store, "sup:1", MANIFEST, "w2", a, lease_ms=2000)
    assert [e async for e in again] == expected(12) and again.mode == "replayed"
    assert a.starts == 1 and a.attaches == []


async def test_resume_dedups_a_substrate_that_resends_everything(
    store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    first = adapter(adapters, tmp_path, 10, delay_ms=1)
    start = await first.start()
    # a worker that persisted the handle, logged four events and died
    await store.start_or_resume("sup:2", MANIFEST, "dead", lease_ms=1)
    await store.set_run_handle("sup:2", start.handle)
    await store.append_stream_events("sup:2", [(f"ev-{i}", e) for i, e in enumerate(expected(4))])
    await start.events.aclose()  # type: ignore[attr-defined]
    sloppy = adapter(adapters, tmp_path, 10, honour_cursor=False)
    await asyncio.sleep(0.01)  # the dead worker's 1 ms lease has lapsed
    turn = run_supervised_turn(store, "sup:2", MANIFEST, "w2", sloppy, lease_ms=2000)
    events = [e async for e in turn]
    assert events == expected(10) and turn.mode == "resumed"
    assert sloppy.attaches == ["ev-3"] and sloppy.starts == 0
    assert [r.event_id for r in await store.read_stream_events("sup:2")] == [
        f"ev-{i}" for i in range(10)
    ]


async def test_a_live_holder_is_refused(
    store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    await store.start_or_resume("sup:3", MANIFEST, "alive", lease_ms=60_000)
    turn = run_supervised_turn(store, "sup:3", MANIFEST, "w2", adapter(adapters, tmp_path, 1))
    with pytest.raises(DurableRunLeaseHeldError):
        [e async for e in turn]
    with pytest.raises(DurableValueError):
        run_supervised_turn(store, "sup:3", MANIFEST, "w2", object())  # type: ignore[arg-type]
    with pytest.raises(DurableValueError):
        run_supervised_turn(
            store, "sup:3", MANIFEST, "w2", adapter(adapters, tmp_path, 1), 1000, 1000
        )


async def test_sigkilled_worker_is_resumed_by_another(
    store_url: str, store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    n = 40
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        store_url,
        "sup:4",
        str(tmp_path),
        str(n),
        "worker-a",
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    seen = [orjson.loads(await asyncio.wait_for(child.stdout.readline(), 20)) for _ in range(5)]
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert seen == expected(5)
    run = await store.load_run("sup:4")
    assert run is not None and run.handle is not None  # persisted before the first event

    b = adapter(adapters, tmp_path, n)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:  # the dead worker's lease (600 ms) has to lapse first
        turn = run_supervised_turn(store, "sup:4", MANIFEST, "worker-b", b, lease_ms=2000)
        try:
            events = [e async for e in turn]
            break
        except DurableRunLeaseHeldError:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
    assert turn.mode == "resumed" and b.starts == 0 and len(b.attaches) == 1
    assert events == expected(n)  # the new client: every event exactly once, in order
    log = await store.read_stream_events("sup:4")
    assert [r.event_id for r in log] == [f"ev-{i}" for i in range(n)]


async def test_a_client_leaving_does_not_stop_the_drain(
    store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    a = adapter(adapters, tmp_path, 15, delay_ms=2)
    turn = run_supervised_turn(store, "sup:5", MANIFEST, "w1", a, lease_ms=2000)
    it = aiter(turn)
    assert [await anext(it) for _ in range(2)] == expected(2)
    await it.aclose()
    await asyncio.wait_for(turn.wait(), 10)
    run = await store.load_run("sup:5")
    assert run is not None and run.status == "completed"
    assert [r.payload for r in await store.read_stream_events("sup:5")] == expected(15)


async def test_a_fenced_drain_stops(
    store: DurableRunStore, tmp_path: Path, adapters: list[FileSandboxAdapter]
) -> None:
    a = adapter(adapters, tmp_path, 200, delay_ms=5)
    turn = run_supervised_turn(store, "sup:6", MANIFEST, "w1", a, lease_ms=2000, heartbeat_ms=10)
    it = aiter(turn)
    await anext(it)
    await store.start_or_resume("sup:6", MANIFEST, "w1", lease_ms=2000)  # a later claim
    with pytest.raises(DurableRunLeaseLostError):
        async for _ in it:
            pass
    assert len(await store.read_stream_events("sup:6")) < 200


class ScriptedSubstrate:
    """A substrate whose run says `n` events and, with `fail`, ends by reporting failure
    through a newer handle on its last event."""

    def __init__(self, n: int, fail: bool = False) -> None:
        self.n = n
        self.fail = fail
        self.starts = 0
        self.attaches: list[str | None] = []
        self.handle = RunHandle("sandbox", sandbox_id="box-1", run_id="exec-1", status="running")

    async def start(self) -> SupervisedStart:
        self.starts += 1
        return SupervisedStart(self.handle, self._events())

    def attach(self, handle: RunHandle, after_event_id: str | None) -> Any:
        self.attaches.append(after_event_id)
        return self._events()

    async def _events(self) -> Any:
        for i, payload in enumerate(expected(self.n)):
            last = i == self.n - 1
            failed = RunHandle("sandbox", "box-1", None, "exec-1", "failed", f"ev-{i}")
            yield SubstrateEvent(f"ev-{i}", payload, failed if last and self.fail else None)


async def test_a_substrate_that_reports_failure_fails_the_run(store: DurableRunStore) -> None:
    substrate = ScriptedSubstrate(3, fail=True)
    turn = run_supervised_turn(store, "sup:7", MANIFEST, "w1", substrate, lease_ms=2000)
    got: list[Any] = []
    with pytest.raises(DurableTurnFailedError):
        async for e in turn:
            got.append(e)
    assert got == expected(3)  # every event is logged and delivered before the verdict
    run = await store.load_run("sup:7")
    assert run is not None and run.status == "failed"
    assert run.handle is not None and run.handle.status == "failed"
    assert run.handle.cursor == "ev-2"  # the handle the substrate sent, persisted as sent


async def test_a_run_whose_substrate_ended_finishes_from_the_log(store: DurableRunStore) -> None:
    substrate = ScriptedSubstrate(4)
    # a worker that logged every event, marked the handle completed and died before end_run
    await store.start_or_resume("sup:8", MANIFEST, "dead", lease_ms=1)
    await store.set_run_handle("sup:8", RunHandle("sandbox", "box-1", None, "exec-1", "completed"))
    await store.append_stream_events("sup:8", [(f"ev-{i}", e) for i, e in enumerate(expected(4))])
    await asyncio.sleep(0.01)
    turn = run_supervised_turn(store, "sup:8", MANIFEST, "w2", substrate, lease_ms=2000)
    assert [e async for e in turn] == expected(4)
    assert substrate.starts == 0 and substrate.attaches == []  # nothing left to attach to
    run = await store.load_run("sup:8")
    assert run is not None and run.status == "completed"
