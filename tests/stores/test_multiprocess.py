"""Many real worker processes on one store: lease races, SIGKILL and SIGSTOP takeovers,
concurrent stream appenders with a live tailing reader. PostgreSQL, SQLite and files."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from agent_runtime.durable import open_store

from .mp import release_together, result, spawn, store_url

STORES = ["postgres", "sqlite", "filesystem"]

pytestmark = pytest.mark.slow


def fx_dir(tmp_path: Path) -> Path:
    fx = tmp_path / "fx"
    fx.mkdir()
    return fx


def executions(fx: Path) -> tuple[dict[int, int], list[str]]:
    """Which pid ran each step (from the O_EXCL files) and any duplicate executions."""
    ran = {int(p.name.split("-")[1]): int(p.read_text()) for p in fx.glob("step-*")}
    return ran, sorted(p.name for p in fx.glob("dup-*"))


@pytest.mark.parametrize("kind", STORES)
def test_eight_processes_race_one_drives(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    fx, sync = fx_dir(tmp_path), tmp_path / "sync"
    sync.mkdir()
    steps = 6
    args = {
        "mode": "run",
        "url": url,
        "run_id": "race",
        "fx": str(fx),
        "steps": steps,
        "step_ms": 80,
        "sync_dir": str(sync),
    }
    procs = [spawn({**args, "name": f"w{i}"}) for i in range(8)]
    release_together(sync, procs)
    outcomes = [result(p) for p in procs]
    drove = [o for o in outcomes if o["outcome"] == "drove"]
    held = [o for o in outcomes if o["outcome"] == "held"]
    assert len(drove) == 1, outcomes
    assert len(held) == 7, outcomes
    assert drove[0]["executed"] == steps
    ran, dups = executions(fx)
    assert dups == []
    assert ran == dict.fromkeys(range(steps), drove[0]["pid"])


async def _steps(url: str, run_id: str) -> list[tuple[int, str, int, int]]:
    store = await open_store(url)
    try:
        return [
            (s.step_index, s.status, s.attempts, s.result["pid"])
            for s in await store.load_steps(run_id)
        ]
    finally:
        await store.close()


async def _holder(url: str, run_id: str) -> str | None:
    store = await open_store(url)
    try:
        run = await store.load_run(run_id)
        return run.lease_holder if run else None
    finally:
        await store.close()


def _wait_progress(fx: Path, pid: int, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    path = fx / f"progress-{pid}"
    while True:
        text = path.read_text() if path.exists() else ""
        if text.isdigit() and int(text) >= at_least:
            return
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", STORES)
def test_sigkill_takeover_within_lease_ttl(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    fx = fx_dir(tmp_path)
    lease_ms = 1500
    args = {
        "mode": "run",
        "url": url,
        "run_id": "kill",
        "fx": str(fx),
        "steps": 8,
        "step_ms": 100,
        "lease_ms": lease_ms,
    }
    a = spawn({**args, "name": "a"})
    # b is up and polling for the lease a holds before a dies, so its start-up is not timed
    sync = tmp_path / "sync"
    sync.mkdir()
    b = spawn({**args, "name": "b", "wait_s": 20, "sync_dir": str(sync)})
    _wait_progress(fx, a.pid, 0)  # a holds the run
    release_together(sync, [b])
    _wait_progress(fx, a.pid, 3)  # a is inside step 3: steps 0..2 are committed
    a.send_signal(signal.SIGKILL)
    a.wait()
    killed_at = time.monotonic()
    committed_by_a = asyncio.run(_steps(url, "kill"))
    assert len(committed_by_a) >= 3
    while not (asyncio.run(_holder(url, "kill")) or "").startswith("b-"):
        assert time.monotonic() - killed_at < 10
        time.sleep(0.02)
    took_over = time.monotonic() - killed_at
    out = result(b)
    assert out["outcome"] == "drove"
    assert took_over <= lease_ms / 1000 + 1.0, f"takeover took {took_over:.2f}s"
    final = asyncio.run(_steps(url, "kill"))
    assert [s[:3] for s in final] == [(i, "completed", 1) for i in range(8)]
    # what a committed is kept as is; b ran only the rest
    assert final[: len(committed_by_a)] == committed_by_a
    assert {s[3] for s in final[len(committed_by_a) :]} == {b.pid}
    assert out["replayed"] == len(committed_by_a)
    ran, dups = executions(fx)
    assert set(ran) == set(range(8))
    # only the step a was inside when killed may have run twice (its result never committed)
    assert all(d.startswith(f"dup-{len(committed_by_a)}-") for d in dups)


@pytest.mark.parametrize("kind", STORES)
def test_paused_worker_late_commit_is_fenced(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    fx = fx_dir(tmp_path)
    args = {
        "mode": "run",
        "url": url,
        "run_id": "pause",
        "fx": str(fx),
        "steps": 5,
        "step_ms": 300,
        "lease_ms": 1500,
    }
    a = spawn({**args, "name": "a"})
    _wait_progress(fx, a.pid, 2)
    a.send_signal(signal.SIGSTOP)  # a is frozen inside step 2, holding a lease that lapses
    try:
        paused_step = int((fx / f"progress-{a.pid}").read_text())
        b = spawn({**args, "name": "b", "wait_s": 10})
        out = result(b)
        assert out["outcome"] == "drove"
        before = asyncio.run(_steps(url, "pause"))
    finally:
        a.send_signal(signal.SIGCONT)
    late = result(a)
    assert late["outcome"] == "lease_lost"
    after = asyncio.run(_steps(url, "pause"))
    assert after == before, "a paused worker overwrote a step after the takeover"
    assert [s[:3] for s in after] == [(i, "completed", 1) for i in range(5)]
    assert after[paused_step][3] == b.pid
    assert (fx / f"dup-{paused_step}-{a.pid}").exists()  # a did finish its step, too late


@pytest.mark.parametrize("kind", STORES)
def test_four_appenders_overlapping_ids_and_a_tailing_reader(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    sync = tmp_path / "sync"
    sync.mkdir()
    per_proc, stride, workers = 10_000, 5_000, 4
    batches = [50, 100, 200, 500]
    procs = [
        spawn(
            {
                "mode": "append",
                "url": url,
                "run_id": "stream",
                "start": p * stride,
                "count": per_proc,
                "batch": batches[p],
                "unbatched_first": 300,
                "sync_dir": str(sync),
            }
        )
        for p in range(workers)
    ]
    release_together(sync, procs)
    expected = {f"ev-{i}" for i in range((workers - 1) * stride + per_proc)}

    async def tail() -> list[tuple[int, str]]:
        store = await open_store(url)
        seen: list[tuple[int, str]] = []
        cursor = None
        try:
            while len(seen) < len(expected):
                batch = await store.read_stream_events("stream", after_seq=cursor, limit=2000)
                seen.extend((e.seq, e.event_id) for e in batch)
                if batch:
                    cursor = batch[-1].seq
                else:
                    await asyncio.sleep(0.01)
            final = [(e.seq, e.event_id) for e in await store.read_stream_events("stream")]
        finally:
            await store.close()
        assert final == seen
        return seen

    seen = asyncio.run(asyncio.wait_for(tail(), 120))
    outs = [result(p) for p in procs]
    assert [s for s, _ in seen] == list(range(len(expected)))
    ids = [e for _, e in seen]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert sum(o["accepted"] for o in outs) == len(expected)
