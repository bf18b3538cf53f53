"""run_durable_turn: fresh, replayed, attached, resumed and restarted turns on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import DurableRunInputMismatchError, DurableValueError
from agent_runtime.chat import (
    TurnLogCursor,
    restarted_event,
    result_event,
    run_durable_turn,
    turn_event_id,
    turn_restart_id,
)
from agent_runtime.durable import DurableRunManifest, DurableRunStore

MANIFEST = DurableRunManifest("chat-test", {"id": "turn", "intent": "say hi"}, {"q": "hi"})


def deltas(n: int, tag: str = "t") -> list[dict[str, Any]]:
    return [{"type": "text_delta", "text": f"{tag}{i} "} for i in range(n)]


class Producer:
    """Deterministic: the same turn re-run yields the same events. `gate`, when set, holds
    the stream after `hold_after` events until it is released."""

    def __init__(
        self, n: int, gate: asyncio.Event | None = None, hold_after: int = 0, tag: str = "t"
    ) -> None:
        self.events = deltas(n, tag)
        self.gate = gate
        self.hold_after = hold_after
        self.calls = 0
        self.closed = False

    def __call__(self) -> Producer:
        self.calls += 1
        return self

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for i, e in enumerate(self.events):
                if self.gate is not None and i == self.hold_after:
                    await self.gate.wait()
                yield e
                await asyncio.sleep(0)
        finally:
            self.closed = True

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return "".join(e["text"] for e in self.events)


async def collect(turn: Any) -> list[dict[str, Any]]:
    return [e async for e in turn]


async def wait_for(cond: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await cond():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_fresh_turn_streams_logs_and_checkpoints(store: DurableRunStore) -> None:
    producer = Producer(150)
    turn = run_durable_turn(store, "p:s:0", MANIFEST, producer, batch_size=16)
    events = await collect(turn)
    assert events == producer.events and turn.mode == "fresh"
    assert turn.text == producer.final_text() and turn.events == 150
    log = await store.read_stream_events("p:s:0")
    assert [r.payload for r in log] == producer.events
    assert [r.event_id for r in log] == [turn_event_id(i) for i in range(150)]
    assert [r.seq for r in log] == list(range(150))
    steps = await store.load_steps("p:s:0")
    assert [(s.intent, s.kind, s.result["text"]) for s in steps] == [
        ("chat.turn.produce", "llm", producer.final_text())
    ]


async def test_completed_turn_replays_without_the_producer(store: DurableRunStore) -> None:
    await collect(run_durable_turn(store, "p:s:1", MANIFEST, Producer(5)))
    counting = Producer(5)
    turn = run_durable_turn(store, "p:s:1", MANIFEST, counting)
    events = await collect(turn)
    assert events == [{"type": "result", "data": {"finalText": counting.final_text()}}]
    assert events == [result_event(counting.final_text())]
    assert counting.calls == 0 and turn.mode == "replayed" and turn.text == counting.final_text()
    custom = run_durable_turn(
        store, "p:s:1", MANIFEST, counting, replay_event=lambda t: {"type": "done", "t": t}
    )
    assert await collect(custom) == [{"type": "done", "t": counting.final_text()}]
    other = DurableRunManifest("chat-test", {"id": "turn", "intent": "say hi"}, {"q": "bye"})
    with pytest.raises(DurableRunInputMismatchError):
        await collect(run_durable_turn(store, "p:s:1", other, counting))


async def test_second_request_attaches_to_the_live_worker(store: DurableRunStore) -> None:
    gate = asyncio.Event()
    first = Producer(40, gate=gate, hold_after=10)
    a = run_durable_turn(store, "p:s:2", MANIFEST, first, worker_id="worker-a")
    a_iter = aiter(a)
    seen_a = [await anext(a_iter) for _ in range(10)]
    # the first ten are logged once the writer catches up
    await wait_for(lambda: _logged(store, "p:s:2", 10))

    second = Producer(40)
    b = run_durable_turn(store, "p:s:2", MANIFEST, second, worker_id="worker-b")
    b_task = asyncio.create_task(collect(b))
    await wait_for(lambda: _true(b.mode == "attached"))
    gate.set()
    seen_a += [e async for e in a_iter]
    seen_b = await asyncio.wait_for(b_task, 10)
    assert seen_a == first.events and seen_b == first.events
    assert second.calls == 0 and b.mode == "attached" and b.text == first.final_text()


async def test_dead_worker_is_resumed_and_each_event_seen_once(store: DurableRunStore) -> None:
    # a worker that claimed the run, logged three events and died (its lease lapses)
    await store.start_or_resume("p:s:3", MANIFEST, "dead-worker", lease_ms=300)
    await store.append_stream_events(
        "p:s:3", [(turn_event_id(i), e) for i, e in enumerate(deltas(3))]
    )
    producer = Producer(12)
    turn = run_durable_turn(store, "p:s:3", MANIFEST, producer, worker_id="worker-b")
    events = await asyncio.wait_for(collect(turn), 10)
    assert events == producer.events  # the logged prefix, then positions 3..11
    assert turn.mode == "resumed" and producer.calls == 1
    log = await store.read_stream_events("p:s:3")
    assert [r.event_id for r in log] == [turn_event_id(i) for i in range(12)]
    # a client that had seen up to seq 7 reconnects to the completed turn: it replays
    again = run_durable_turn(store, "p:s:3", MANIFEST, producer, after_seq=7)
    assert await collect(again) == [result_event(producer.final_text())]


async def test_reconnecting_client_skips_what_it_saw(store: DurableRunStore) -> None:
    await store.start_or_resume("p:s:4", MANIFEST, "dead-worker", lease_ms=1)
    await store.append_stream_events(
        "p:s:4", [(turn_event_id(i), e) for i, e in enumerate(deltas(5))]
    )
    producer = Producer(9)
    turn = run_durable_turn(store, "p:s:4", MANIFEST, producer, after_seq=6)
    assert await asyncio.wait_for(collect(turn), 10) == producer.events[7:]


async def test_client_disconnect_does_not_lose_the_turn(store: DurableRunStore) -> None:
    producer = Producer(60)
    turn = run_durable_turn(store, "p:s:5", MANIFEST, producer)
    it = aiter(turn)
    assert [await anext(it) for _ in range(3)] == producer.events[:3]
    await it.aclose()  # the client went away; the turn goes on headless
    await asyncio.wait_for(turn.wait(), 10)
    run = await store.load_run("p:s:5")
    assert run is not None and run.status == "completed"
    assert [r.payload for r in await store.read_stream_events("p:s:5")] == producer.events
    replay = await collect(run_durable_turn(store, "p:s:5", MANIFEST, producer))
    assert replay == [result_event(producer.final_text())] and producer.calls == 1


async def test_failing_producer_fails_the_run_and_a_retry_runs_again(
    store: DurableRunStore,
) -> None:
    class Boom(Producer):
        async def _gen(self) -> AsyncIterator[dict[str, Any]]:
            yield self.events[0]
            raise RuntimeError("model went away")

    with pytest.raises(RuntimeError, match="model went away"):
        await collect(run_durable_turn(store, "p:s:6", MANIFEST, Boom(3)))
    run = await store.load_run("p:s:6")
    assert run is not None and run.status == "failed"
    retry = Producer(3)
    assert await collect(run_durable_turn(store, "p:s:6", MANIFEST, retry)) == retry.events
    assert retry.calls == 1


async def test_bad_arguments_are_refused_up_front(store: DurableRunStore) -> None:
    for kwargs in (
        {"run_id": ""},
        {"manifest": {"not": "a manifest"}},
        {"produce": 3},
        {"after_seq": "7"},
        {"batch_size": 0},
        {"batch_bytes": 0},
        {"batch_delay_ms": -1},
        {"batch_delay_ms": "2"},
        {"lease_ms": -1},
    ):
        args: dict[str, Any] = {"run_id": "p:s:7", "manifest": MANIFEST, "produce": Producer(1)}
        args.update(kwargs)
        with pytest.raises(DurableValueError):
            run_durable_turn(store, **args)
    with pytest.raises(DurableValueError):
        run_durable_turn("not a store", "p:s:7", MANIFEST, Producer(1))  # type: ignore[arg-type]
    assert await store.load_run("p:s:7") is None


async def _logged(store: DurableRunStore, run_id: str, n: int) -> bool:
    return len(await store.read_stream_events(run_id)) >= n


async def _true(value: bool) -> bool:
    return value


async def test_a_non_json_event_fails_the_turn(store: DurableRunStore) -> None:
    class Bad(Producer):
        async def _gen(self) -> AsyncIterator[dict[str, Any]]:
            yield self.events[0]
            yield {"type": "x", "v": float("nan")}
            yield self.events[1]

    with pytest.raises(DurableValueError):
        await collect(run_durable_turn(store, "p:s:8", MANIFEST, Bad(3)))
    run = await store.load_run("p:s:8")
    assert run is not None and run.status == "failed"
    log = [r.payload for r in await store.read_stream_events("p:s:8")]
    assert log == deltas(len(log)) and len(log) <= 1  # nothing from the bad event on


async def test_second_request_to_the_same_host_attaches_instead_of_fencing(
    store: DurableRunStore,
) -> None:
    gate = asyncio.Event()
    producer = Producer(20, gate=gate, hold_after=5)
    a = run_durable_turn(store, "p:s:9", MANIFEST, producer, worker_id="host-1")
    a_iter = aiter(a)
    seen_a = [await anext(a_iter) for _ in range(5)]
    b = run_durable_turn(store, "p:s:9", MANIFEST, producer, worker_id="host-1")
    b_task = asyncio.create_task(collect(b))
    await wait_for(lambda: _true(b.mode == "attached"))
    gate.set()
    seen_a += [e async for e in a_iter]
    assert await asyncio.wait_for(b_task, 10) == producer.events == seen_a
    assert producer.calls == 1 and a.mode == "fresh"


async def test_a_fenced_driver_keeps_its_client_served(store: DurableRunStore) -> None:
    gate = asyncio.Event()
    producer = Producer(20, gate=gate, hold_after=5)
    turn = run_durable_turn(
        store, "p:s:10", MANIFEST, producer, worker_id="host-a", lease_ms=600, heartbeat_ms=20
    )
    it = aiter(turn)
    seen = [await anext(it) for _ in range(5)]
    await wait_for(lambda: _logged(store, "p:s:10", 5))
    # a restarted instance under the same worker id claims the run (and then dies): the epoch
    # moves on, so the driver above is fenced at its next renewal
    await store.start_or_resume("p:s:10", MANIFEST, "host-a", lease_ms=200)
    rest = asyncio.create_task(_rest(it))
    await wait_for(lambda: _true(turn.mode == "attached"))
    gate.set()
    seen += await asyncio.wait_for(rest, 10)
    assert seen == producer.events  # each event once, across the takeover
    assert turn.mode == "resumed" and producer.calls == 2
    run = await store.load_run("p:s:10")
    assert run is not None and run.status == "completed"


async def _rest(it: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e async for e in it]


async def dead_attempt(store: DurableRunStore, run_id: str, events: list[Any]) -> None:
    """A worker that claimed the turn, logged `events` and died (its 1 ms lease lapses)."""
    await store.start_or_resume(run_id, MANIFEST, "dead-worker", lease_ms=1)
    await store.append_stream_events(run_id, [(turn_event_id(i), e) for i, e in enumerate(events)])
    await asyncio.sleep(0.01)


def marker(attempt: int) -> dict[str, Any]:
    return restarted_event(attempt, "sess")


def announce(attempt: int) -> dict[str, Any]:
    return marker(attempt)


async def test_a_rerun_that_answers_differently_restarts(store: DurableRunStore) -> None:
    await dead_attempt(store, "p:r:1", deltas(3, "a"))
    producer = Producer(5, tag="b")
    turn = run_durable_turn(store, "p:r:1", MANIFEST, producer, restart_event=announce)
    events = await asyncio.wait_for(collect(turn), 10)
    # the dead attempt's logged prefix, the marker, then the new attempt from its start
    assert events == [*deltas(3, "a"), marker(2), *producer.events]
    assert turn.mode == "resumed" and turn.attempt == 2 and turn.text == producer.final_text()
    log = await store.read_stream_events("p:r:1")
    assert [r.event_id for r in log] == [
        *[turn_event_id(i) for i in range(3)],
        turn_restart_id(2),
        *[turn_event_id(i, 2) for i in range(5)],
    ]
    assert [r.payload for r in log] == events
    assert client_text(events) == turn.text  # after dropping the partial text at the marker


async def test_without_restart_event_only_the_new_attempts_events_follow(
    store: DurableRunStore,
) -> None:
    await dead_attempt(store, "p:r:2", deltas(3, "a"))
    producer = Producer(4, tag="b")
    turn = run_durable_turn(store, "p:r:2", MANIFEST, producer, after_seq=2)
    events = await asyncio.wait_for(collect(turn), 10)
    assert events == producer.events and turn.attempt == 2
    log = await store.read_stream_events("p:r:2")
    assert log[3].payload == restarted_event(2)  # the log still marks the restart


async def test_a_rerun_that_departs_midway_restarts_from_its_first_event(
    store: DurableRunStore,
) -> None:
    await dead_attempt(store, "p:r:3", deltas(4, "a"))

    class Departing(Producer):
        def __init__(self) -> None:
            super().__init__(0)
            self.events = [*deltas(2, "a"), *deltas(3, "c")]  # same start, then another answer

    producer = Departing()
    turn = run_durable_turn(store, "p:r:3", MANIFEST, producer, restart_event=announce)
    events = await asyncio.wait_for(collect(turn), 10)
    assert events == [*deltas(4, "a"), marker(2), *producer.events]
    assert client_text(events) == turn.text == producer.final_text()


async def test_a_rerun_that_says_less_restarts(store: DurableRunStore) -> None:
    await dead_attempt(store, "p:r:4", deltas(4, "a"))
    producer = Producer(2, tag="a")  # a prefix of the dead attempt, then the end
    turn = run_durable_turn(store, "p:r:4", MANIFEST, producer, restart_event=announce)
    events = await asyncio.wait_for(collect(turn), 10)
    assert events == [*deltas(4, "a"), marker(2), *deltas(2, "a")]
    assert client_text(events) == turn.text == "a0 a1 "


async def test_a_rerun_that_repeats_the_log_continues_without_a_restart(
    store: DurableRunStore,
) -> None:
    await dead_attempt(store, "p:r:5", deltas(3, "a"))
    producer = Producer(6, tag="a")
    turn = run_durable_turn(store, "p:r:5", MANIFEST, producer, restart_event=announce)
    assert await asyncio.wait_for(collect(turn), 10) == producer.events
    assert turn.attempt == 1
    assert [r.event_id for r in await store.read_stream_events("p:r:5")] == [
        turn_event_id(i) for i in range(6)
    ]


async def test_a_second_restart_and_reconnecting_clients(store: DurableRunStore) -> None:
    await dead_attempt(store, "p:r:6", deltas(3, "a"))
    # the second attempt dies too, after its marker and two events
    await store.append_stream_events(
        "p:r:6",
        [(turn_restart_id(2), marker(2)), *[(turn_event_id(i, 2), e) for i, e in
                                            enumerate(deltas(2, "b"))]],
    )  # fmt: skip
    await store.start_or_resume("p:r:6", MANIFEST, "dead-2", lease_ms=1)
    await asyncio.sleep(0.01)
    producer = Producer(3, tag="c")
    # a client that had seen the first attempt up to seq 1: the rest of it, both markers,
    # the second attempt and the third
    turn = run_durable_turn(store, "p:r:6", MANIFEST, producer, restart_event=announce, after_seq=1)
    events = await asyncio.wait_for(collect(turn), 10)
    assert events == [
        deltas(3, "a")[2],
        marker(2),
        *deltas(2, "b"),
        marker(3),
        *producer.events,
    ]
    assert turn.attempt == 3 and client_text(events) == turn.text == producer.final_text()
    run = await store.load_run("p:r:6")
    assert run is not None and run.outcome["attempt"] == 3


async def test_cursor_follows_attempts_and_skips_late_writes_of_a_fenced_worker(
    store: DurableRunStore,
) -> None:
    a, b = deltas(3, "a"), deltas(2, "b")
    await store.start_or_resume("p:r:7", MANIFEST, "w", lease_ms=60_000)
    await store.append_stream_events(
        "p:r:7",
        [
            *[(turn_event_id(i), e) for i, e in enumerate(a)],  # seq 0..2
            (turn_restart_id(2), marker(2)),  # seq 3
            *[(turn_event_id(i, 2), e) for i, e in enumerate(b)],  # seq 4, 5
            (turn_event_id(3), {"type": "text_delta", "text": "late "}),  # seq 6, attempt 1
        ],
    )
    log = await store.read_stream_events("p:r:7")

    async def admitted(after: int | None) -> list[int]:
        cursor = await TurnLogCursor.resume(store, "p:r:7", after)
        return [r.seq for r in log if cursor.admit(r)]

    assert await admitted(None) == [0, 1, 2, 3, 4, 5]  # the late write is never delivered
    assert await admitted(1) == [2, 3, 4, 5]
    assert await admitted(4) == [5]
    assert await admitted(5) == []
    # the fenced worker's own client got the late write live: it still learns of the restart
    assert await admitted(6) == [3, 4, 5]


def client_text(events: list[dict[str, Any]]) -> str:
    """What a client shows: the deltas since the last restart marker."""
    text = ""
    for e in events:
        if e["type"] == "session.run.restarted":
            text = ""
        elif e["type"] == "text_delta":
            text += e["text"]
    return text


class CountingStore:
    """The store's append calls, counted; each event the client gets must be logged by then."""

    def __init__(self, store: DurableRunStore) -> None:
        self.store = store
        self.appends: list[int] = []
        original = store.append_stream_events

        async def append(run_id: str, events: Any) -> Any:
            self.appends.append(len(events))
            return await original(run_id, events)

        store.append_stream_events = append  # type: ignore[method-assign]


class Burst(Producer):
    """Yields its events with no await in between, then waits: a fast model's burst."""

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for e in self.events:
            yield e


async def test_a_burst_is_logged_in_few_appends_and_seen_only_once_logged(
    store: DurableRunStore,
) -> None:
    counting = CountingStore(store)
    producer = Burst(300)
    turn = run_durable_turn(
        store, "p:s:batch", MANIFEST, producer, batch_size=100, batch_delay_ms=1000
    )
    seen = 0
    async for event in turn:
        assert event == producer.events[seen]
        seen += 1
        assert len(await store.read_stream_events("p:s:batch")) >= seen  # logged before seen
    assert seen == 300 and turn.text == producer.final_text()
    assert counting.appends == [100, 100, 100]  # by size; the end flushes without the window
    log = await store.read_stream_events("p:s:batch")
    assert [r.payload for r in log] == producer.events


async def test_the_byte_limit_splits_batches_and_a_failure_flushes_what_is_pending(
    store: DurableRunStore,
) -> None:
    class Fails(Producer):
        async def _gen(self) -> AsyncIterator[dict[str, Any]]:
            for e in self.events:
                yield e
            raise RuntimeError("the model went away")

    counting = CountingStore(store)
    producer = Fails(10)
    size = len(b'{"type":"text_delta","text":"t0 "}')
    turn = run_durable_turn(
        store, "p:s:bytes", MANIFEST, producer, batch_bytes=3 * size, batch_delay_ms=1000
    )
    got: list[dict[str, Any]] = []
    with pytest.raises(RuntimeError):
        async for event in turn:
            got.append(event)
    assert got == producer.events  # the failure flushed the last, partial batch first
    assert counting.appends == [3, 3, 3, 1]
    run = await store.load_run("p:s:bytes")
    assert run is not None and run.status == "failed"
