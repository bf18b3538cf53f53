"""Cost of a durable chat turn per streamed event, against two baselines.

- `plain`: the same producer iterated with no store at all (the floor: what streaming costs).
- `per-event`: the obvious durable loop, one `append_stream_event` (one transaction) per event
  before it is forwarded.
- `durable`: `run_durable_turn` (events forwarded live, logged by a writer task in batches,
  final text checkpointed as a step).

Also the replay of a completed turn (one read, one synthetic event). Printed as ratios; exits 1
when `durable` is not at least TARGET_SPEEDUP[store] times faster per event than `per-event`.

Then a chat turn as a client gets it, per event: `DurableChatTurnEngine.run_turn`'s NDJSON body
on each store against the store-free `handle_chat_turn` body over the same hooks, with a
producer that waits for its source once per event (as a backend reading a network does).
Target on PostgreSQL: durable <= ENGINE_TARGET x store-free. Beside it, the floor of a durable
turn on PostgreSQL: the same producer, its events logged by plain psycopg in batches gathered
while the previous batch commits (one multi-row INSERT and a commit per batch, each event
forwarded once its batch committed) -- what logging every event before the client sees it
costs with no runtime at all -- and that floor's events framed by the store-free body
(`handle_chat_turn` over a producer that yields each event once the plain-psycopg batch
holding it committed): the least a durable NDJSON turn can cost, store-free body plus
plain-driver log, to set the ratio against.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent_runtime.chat import (
    ChatTurnIdentity,
    DurableChatTurnEngine,
    handle_chat_turn,
    run_durable_turn,
)
from agent_runtime.durable import DurableRunManifest, DurableRunStore, open_store

EVENTS = 2000
TURNS = 5
# per-event/durable; on SQLite a row insert (~6 us) is most of a commit, so batching saves less
TARGET_SPEEDUP = {"sqlite": 2.5, "postgres": 5.0}
REPLAY_TARGET_MS = 5.0
ENGINE_TARGET = 2.0
ENGINE_TURNS = 10
PG = os.environ.get("AGENT_RUNTIME_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MANIFEST = DurableRunManifest("bench", {"id": "turn", "intent": "bench"}, {"n": EVENTS})


class Producer:
    def __init__(self, n: int) -> None:
        self.n = n

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for i in range(self.n):
            yield {"type": "text.delta", "text": f"token-{i} "}

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    def final_text(self) -> str:
        return "".join(f"token-{i} " for i in range(self.n))


class Paced(Producer):
    """A producer that waits for its source (one event-loop turn) before each event."""

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        for i in range(self.n):
            await asyncio.sleep(0)
            yield {"type": "text_delta", "text": f"token-{i} "}


class Hooks:
    def produce(self) -> Paced:
        return Paced(EVENTS)

    def persist_assistant_message(self, _identity: object, _text: str) -> None:
        return None


async def engine_turns(store: DurableRunStore | None, tag: str) -> float:
    """Per event of a whole chat turn's NDJSON body, durable on `store` or store-free."""
    engine = None if store is None else DurableChatTurnEngine(store, f"bench-{tag}")
    t0 = time.perf_counter()
    for t in range(ENGINE_TURNS):
        identity = ChatTurnIdentity("t", f"s{t}", "u", 0)
        if engine is None:
            body = handle_chat_turn(identity, Hooks()).body  # type: ignore[arg-type]
        else:
            body = engine.run_turn(identity, Hooks()).body  # type: ignore[arg-type]
        async for _line in body:
            pass
    return (time.perf_counter() - t0) / (ENGINE_TURNS * EVENTS)


_FLOOR_INSERT = (
    "INSERT INTO floor_log SELECT %s, s, i, p FROM "
    "unnest(%b::bigint[], %b::text[], %b::text[]) AS u(s, i, p)"
)


class _FloorTurn:
    """One turn of the plain-psycopg floor: a writer task commits what is pending, then hands
    the committed events on; the producer's loop forwards what was handed on."""

    def __init__(self, conn: Any, run_id: str) -> None:
        self.conn = conn
        self.run_id = run_id
        self.pending: list[tuple[str, bytes, dict[str, Any]]] = []
        self.committed: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()
        self.wake = asyncio.Event()
        self.done = False

    async def writer(self) -> None:
        seq = 0
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if batch:
                async with self.conn.transaction():
                    await self.conn.execute(
                        _FLOOR_INSERT,
                        (
                            self.run_id,
                            list(range(seq, seq + len(batch))),
                            [b[0] for b in batch],
                            [b[1].decode() for b in batch],
                        ),
                    )
                seq += len(batch)
                self.committed.put_nowait([b[2] for b in batch])
            if self.done and not self.pending:
                self.committed.put_nowait(None)
                return

    async def run(self) -> None:
        async for _event in self.events():
            pass

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The producer's events, each once the batch holding it committed."""
        import orjson

        task = asyncio.get_running_loop().create_task(self.writer())
        i = 0
        async for event in Paced(EVENTS).stream:
            self.pending.append((f"turn:{i}", orjson.dumps(event), event))
            i += 1
            self.wake.set()
            while not self.committed.empty():
                for committed in self.committed.get_nowait() or ():  # forwarded: committed
                    yield committed
        self.done = True
        self.wake.set()
        while (batch := await self.committed.get()) is not None:
            for committed in batch:
                yield committed
        await task


class _FloorProducer:
    """A producer whose stream is the plain-psycopg floor's committed events."""

    def __init__(self, turn: _FloorTurn) -> None:
        self.turn = turn

    @property
    def stream(self) -> AsyncIterator[dict[str, Any]]:
        return self.turn.events()

    def final_text(self) -> str:
        return Producer(EVENTS).final_text()


class _FloorHooks(Hooks):
    def __init__(self, turn: _FloorTurn) -> None:
        self.turn = turn

    def produce(self) -> _FloorProducer:  # type: ignore[override]
        return _FloorProducer(self.turn)


async def floor_turns(dsn: str, tag: str, *, body: bool = False) -> float:
    """Per event of the plain-psycopg durable turn (see the module docstring); with `body`,
    its events framed by the store-free NDJSON body."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_log (run_id text, seq bigint, event_id text, "
            "payload text, PRIMARY KEY (run_id, seq), UNIQUE (run_id, event_id))"
        )
        t0 = time.perf_counter()
        for t in range(ENGINE_TURNS):
            turn = _FloorTurn(conn, f"floor-{tag}-{'b' if body else 'p'}-{t}")
            if not body:
                await turn.run()
                continue
            identity = ChatTurnIdentity("t", f"f{t}", "u", 0)
            async for _line in handle_chat_turn(identity, _FloorHooks(turn)).body:  # type: ignore[arg-type]
                pass
    return (time.perf_counter() - t0) / (ENGINE_TURNS * EVENTS)


async def plain() -> float:
    t0 = time.perf_counter()
    for _ in range(TURNS):
        async for _event in Producer(EVENTS).stream:
            pass
    return (time.perf_counter() - t0) / (TURNS * EVENTS)


async def per_event(store: DurableRunStore, tag: str) -> float:
    t0 = time.perf_counter()
    for t in range(TURNS):
        run_id = f"per-event-{tag}-{t}"
        i = 0
        async for event in Producer(EVENTS).stream:
            await store.append_stream_event(run_id, f"turn:{i}", event)
            i += 1
    return (time.perf_counter() - t0) / (TURNS * EVENTS)


async def durable(store: DurableRunStore, tag: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    for t in range(TURNS):
        turn = run_durable_turn(store, f"durable-{tag}-{t}", MANIFEST, lambda: Producer(EVENTS))
        async for _event in turn:
            pass
    per = (time.perf_counter() - t0) / (TURNS * EVENTS)
    t1 = time.perf_counter()
    reps = 50
    for _ in range(reps):
        turn = run_durable_turn(store, f"durable-{tag}-0", MANIFEST, lambda: Producer(EVENTS))
        async for _event in turn:
            pass
    return per, (time.perf_counter() - t1) / reps


async def one_store(
    name: str, url: str
) -> tuple[float, float, float, float, float, tuple[float, float] | None]:
    store = await open_store(url)
    try:
        tag = f"{os.getpid()}-{time.time_ns()}"
        pe = await per_event(store, tag)
        du, replay = await durable(store, tag)
        free, eng, floor, framed = [], [], [], []
        for r in range(3):  # interleaved: the store-free floor beside ours, round by round
            free.append(await engine_turns(None, tag))
            eng.append(await engine_turns(store, f"{tag}-{r}"))
            if name == "postgres":
                floor.append(await floor_turns(url, f"{tag}-{r}"))
                framed.append(await floor_turns(url, f"{tag}-{r}", body=True))
    finally:
        await store.close()
    floors = (min(floor), min(framed)) if floor else None
    return pe, du, replay, min(free), min(eng), floors


async def main() -> int:
    floor = await plain()
    stores = []
    with tempfile.TemporaryDirectory() as tmp:
        stores.append(("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        schema = f"bench_{secrets.token_hex(6)}"
        try:
            import psycopg

            with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            sep = "&" if "?" in PG else "?"
            stores.append(("postgres", f"{PG}{sep}options={quote(f'-csearch_path={schema}')}"))
        except Exception as exc:
            print(f"postgres skipped: {exc}")
            schema = ""
        print(f"durable chat turn: {TURNS} turns x {EVENTS} events, producer as fast as it goes")
        print(
            f"{'store':<9} {'plain us/ev':>12} {'per-event us/ev':>16} {'durable us/ev':>14} "
            f"{'per-event/durable':>18} {'replay ms':>10}"
        )
        status = 0
        engine_rows = []
        for name, url in stores:
            pe, du, replay, free, eng, floors = await one_store(name, url)
            engine_rows.append((name, free, eng, floors))
            speedup = pe / du
            print(
                f"{name:<9} {floor * 1e6:>12.2f} {pe * 1e6:>16.1f} {du * 1e6:>14.1f} "
                f"{speedup:>17.1f}x {replay * 1e3:>10.2f}"
            )
            if speedup < TARGET_SPEEDUP[name] or replay * 1e3 > REPLAY_TARGET_MS:
                print(
                    f"  MISSED on {name}: target per-event/durable >= {TARGET_SPEEDUP[name]}x and "
                    f"replay <= {REPLAY_TARGET_MS} ms"
                )
                status = 1
        print(
            f"chat turn body per event, {ENGINE_TURNS} turns x {EVENTS} events, producer paced "
            "by one loop turn per event (best of 3 interleaved rounds)"
        )
        print(
            f"{'store':<9} {'store-free us/ev':>17} {'durable us/ev':>14} {'durable/free':>13} "
            f"{'plain-driver floor us/ev':>25} {'durable/floor':>14} "
            f"{'floor + body us/ev':>19} {'(floor+body)/free':>18}"
        )
        for name, free, eng, floors in engine_rows:
            ratio = eng / free
            tail = ""
            if floors is not None:
                logged_floor, framed = floors
                tail = (
                    f" {logged_floor * 1e6:>25.2f} {eng / logged_floor:>13.2f}x"
                    f" {framed * 1e6:>19.2f} {framed / free:>17.2f}x"
                )
            print(f"{name:<9} {free * 1e6:>17.2f} {eng * 1e6:>14.2f} {ratio:>12.2f}x{tail}")
            if name == "postgres" and ratio > ENGINE_TARGET:
                print(f"  MISSED on {name}: target durable/store-free <= {ENGINE_TARGET}x")
                status = 1
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if schema:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
