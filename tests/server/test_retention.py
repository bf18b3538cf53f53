"""Run retention and storage accounting on every store kind: idle runs are pruned with their
steps, events and stream log; a run leased by a live worker, a recent run and runs outside
the prefix stay; usage counts only the prefix's bytes and drops after a prune."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_runtime.durable import DurableRunManifest, DurableRunStore, open_store
from agent_runtime.errors import InvalidArgumentError
from agent_runtime.retention import parse_byte_size, parse_duration, prune_runs, storage_usage

MANIFEST = DurableRunManifest("chat", {"id": "t"}, {"x": 1})


@pytest.fixture(params=["memory", "sqlite", "file", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DurableRunStore]:
    kind = request.param
    if kind == "memory":
        url = "memory:"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path}/runs.db"
    elif kind == "file":
        url = f"file://{tmp_path}/runs"
    else:
        url = request.getfixturevalue("pg_dsn")
    opened = await open_store(url)
    try:
        yield opened
    finally:
        await opened.close()


async def _finished(store: DurableRunStore, run_id: str, payload_size: int = 100) -> None:
    await store.start_or_resume(run_id, MANIFEST, "w1", lease_ms=60_000)
    await store.append_stream_events(
        run_id, [(f"e{i}", {"text": "x" * payload_size}) for i in range(3)]
    )
    await store.complete_step(run_id, 0, {"text": "done"}, intent="produce", worker_id="w1")
    await store.emit_event(run_id, "k", {"v": 1})
    await store.end_run(run_id, "w1", "completed", {"text": "done"})


async def test_prune_deletes_idle_runs_and_keeps_the_rest(store: DurableRunStore) -> None:
    await _finished(store, "chat:t1:u:old:0")
    await _finished(store, "chat:t2:u:old:0")
    await _finished(store, "other:t1:u:old:0")
    await store.start_or_resume("chat:t1:u:live:0", MANIFEST, "w2", lease_ms=60_000)
    await asyncio.sleep(0.03)
    between = datetime.now(UTC)  # "now" for the prunes: the old runs are older than 10 ms
    await asyncio.sleep(0.03)
    await _finished(store, "chat:t1:u:new:0")
    age = timedelta(milliseconds=10)
    listed = await prune_runs(store, older_than=age, prefix="chat:t1:", dry_run=True, now=between)
    assert listed.run_ids == ("chat:t1:u:old:0",) and listed.dry_run
    assert await store.load_run("chat:t1:u:old:0") is not None  # a dry run deletes nothing
    result = await prune_runs(store, older_than=age, prefix="chat:t1:", now=between)
    assert result.run_ids == ("chat:t1:u:old:0",) and result.count == 1
    assert await store.load_run("chat:t1:u:old:0") is None
    assert await store.read_stream_events("chat:t1:u:old:0") == []
    assert await store.load_steps("chat:t1:u:old:0") == []
    assert await store.load_event("chat:t1:u:old:0", "k") is None
    for kept in ("chat:t2:u:old:0", "other:t1:u:old:0", "chat:t1:u:live:0", "chat:t1:u:new:0"):
        assert await store.load_run(kept) is not None, kept
    # every prefix: the other old ones go, the live lease and the recent run stay
    rest = await prune_runs(store, older_than=age, now=between)
    assert set(rest.run_ids) == {"chat:t2:u:old:0", "other:t1:u:old:0"}
    assert await store.load_run("chat:t1:u:live:0") is not None
    # a run id may be reused after its prune, its stream log starting afresh at seq 0
    await _finished(store, "chat:t1:u:old:0")
    assert (await store.load_run("chat:t1:u:old:0")) is not None
    reused = await store.read_stream_events("chat:t1:u:old:0")
    assert [(r.seq, r.event_id) for r in reused] == [(0, "e0"), (1, "e1"), (2, "e2")]
    assert await store.stream_length("chat:t1:u:old:0") == 3


async def test_usage_counts_a_prefix_and_drops_after_prune(store: DurableRunStore) -> None:
    assert await storage_usage(store, "chat:t1:") == 0
    await _finished(store, "chat:t1:u:a:0", payload_size=1000)
    one = await storage_usage(store, "chat:t1:")
    assert one > 3000  # three 1000-byte stream payloads, plus the manifest and results
    await _finished(store, "chat:t1:u:b:0", payload_size=1000)
    await _finished(store, "chat:t10:u:a:0", payload_size=5000)  # another tenant's prefix
    two = await storage_usage(store, "chat:t1:")
    assert one * 2 - 50 <= two <= one * 2 + 50
    await asyncio.sleep(0.03)
    await prune_runs(store, older_than=timedelta(milliseconds=10), prefix="chat:t1:")
    assert await storage_usage(store, "chat:t1:") == 0
    assert await storage_usage(store, "chat:t10:") > 15000


async def test_prune_checks_its_arguments(store: DurableRunStore) -> None:
    with pytest.raises(InvalidArgumentError):
        await prune_runs(store, older_than=timedelta(0))
    with pytest.raises(InvalidArgumentError):
        await prune_runs(store, older_than=timedelta(days=1), prefix="a\x00b")
    with pytest.raises(InvalidArgumentError):
        await storage_usage(store, "")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45), ("2w", 1209600), ("5", 5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0d", "-1d", "3y", "d", "1.5.2h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_duration(text)


def test_parse_byte_size() -> None:
    assert parse_byte_size("256MiB") == 256 * 2**20
    assert parse_byte_size("1GB") == 10**9
    assert parse_byte_size("1500") == 1500
    for bad in ("", "0", "12 parsecs", "-5MB"):
        with pytest.raises(InvalidArgumentError):
            parse_byte_size(bad)
