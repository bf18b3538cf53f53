"""SQLite specifics: migrations, durability modes, one read at resume, heartbeat renewal."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import DURABLE_SCHEMA_VERSION, StoreUnavailableError
from agent_runtime.durable import (
    DurableContext,
    DurableRunManifest,
    InMemoryDurableRunStore,
    SQLiteDurableRunStore,
    run_durable,
)
from agent_runtime.durable._sqlite_schema import SQLITE_MIGRATIONS
from agent_runtime.errors import DurableRunLeaseHeldError, DurableValueError

MANIFEST = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"x": 1})


def test_migrations_are_contiguous_and_current() -> None:
    assert [m.version for m in SQLITE_MIGRATIONS] == list(range(1, DURABLE_SCHEMA_VERSION + 1))


async def test_schema_created_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    s1 = SQLiteDurableRunStore(path)
    assert s1.schema_version() == DURABLE_SCHEMA_VERSION
    await s1.close()
    s2 = SQLiteDurableRunStore(path)  # reopening applies nothing twice
    await s2.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT version, checksum FROM durable_schema_info").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [(m.version, m.checksum) for m in SQLITE_MIGRATIONS]
    assert mode == "wal"


async def test_a_version_1_file_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    """A file written at schema 1 opens at the current version with its rows intact, and the
    database itself then refuses to change a recorded step's intent."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE durable_schema_info (version INTEGER PRIMARY KEY, description TEXT "
            "NOT NULL, checksum TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"
        )
        first = SQLITE_MIGRATIONS[0]
        db.executescript(first.sql)
        db.execute(
            "INSERT INTO durable_schema_info VALUES (1, ?, ?, 0)",
            (first.description, first.checksum),
        )
        db.execute(
            "INSERT INTO durable_steps VALUES ('r', 0, 'fetch', 'logic', NULL, 'failed', 1, "
            "NULL, NULL, 0, 0)"
        )
    store = SQLiteDurableRunStore(path)
    try:
        assert store.schema_version() == DURABLE_SCHEMA_VERSION
        step = await store.load_step("r", 0)
        assert step is not None and step.intent == "fetch"
    finally:
        await store.close()
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.IntegrityError, match="divergence"):
        db.execute("UPDATE durable_steps SET intent = 'other' WHERE run_id = 'r'")


async def test_the_database_refuses_to_change_a_completed_step(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = SQLiteDurableRunStore(path)
    await store.start_or_resume("r", MANIFEST, "w", lease_ms=5000)
    await store.complete_step("r", 0, 1, intent="s", worker_id="w")
    await store.begin_step("r", 1, "t", "llm", None, worker_id="w")
    await store.close()
    with sqlite3.connect(path) as db:
        with pytest.raises(sqlite3.IntegrityError, match="step_completed"):
            db.execute("UPDATE durable_steps SET result = '2' WHERE step_index = 0")
        db.execute("UPDATE durable_steps SET status = 'failed' WHERE step_index = 1")


async def test_edited_past_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await SQLiteDurableRunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE durable_schema_info SET checksum = 'different' WHERE version = 1")
    with pytest.raises(StoreUnavailableError, match="past migrations must not change"):
        SQLiteDurableRunStore(path)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await SQLiteDurableRunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO durable_schema_info VALUES (999, 'future', 'x', 0)")
    with pytest.raises(StoreUnavailableError, match="newer than this library"):
        SQLiteDurableRunStore(path)


def test_bad_durability_and_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(DurableValueError):
        SQLiteDurableRunStore(tmp_path / "a.db", durability="fast")  # type: ignore[arg-type]
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreUnavailableError):
        SQLiteDurableRunStore(tmp_path / "dir.db")


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_durability_modes(tmp_path: Path, durability: str) -> None:
    store = SQLiteDurableRunStore(tmp_path / "a.db", durability=durability)  # type: ignore[arg-type]
    sync = store._db.execute("PRAGMA synchronous").fetchone()[0]
    assert sync == {"normal": 1, "full": 2}[durability]
    res = await run_durable(
        run_id="r", manifest=MANIFEST, store=store, task_fn=lambda ctx: ctx.step("a", lambda: 1)
    )
    assert res.result == 1
    await store.close()


class CountingStore:
    """Wraps a store and counts calls, to check how run_durable talks to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return wrapper


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_resume_loads_completed_steps_in_one_read(tmp_path: Path, kind: str) -> None:
    inner = (
        InMemoryDurableRunStore() if kind == "memory" else SQLiteDurableRunStore(tmp_path / "a.db")
    )
    store = CountingStore(inner)
    fail = [True]

    async def task(ctx: DurableContext) -> int:
        for i in range(50):
            await ctx.step(f"s{i}", lambda i=i: i)
        if fail[0]:
            fail[0] = False
            raise RuntimeError("stop after 50")
        return int(await ctx.step("last", lambda: 50))

    with pytest.raises(RuntimeError):
        await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)  # type: ignore[arg-type]
    store.calls.clear()
    res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)  # type: ignore[arg-type]
    assert res.replayed == 50 and res.executed == 1
    # one start_or_resume (which returns the 50 steps), one commit, one end: no per-step reads
    assert store.calls == {"start_or_resume": 1, "complete_step": 1, "end_run": 1}


async def test_heartbeat_keeps_a_long_run_leased(tmp_path: Path) -> None:
    store = SQLiteDurableRunStore(tmp_path / "a.db")
    other = SQLiteDurableRunStore(tmp_path / "a.db")
    refused: list[str] = []

    async def task(ctx: DurableContext) -> str:
        for i in range(4):
            await asyncio.sleep(0.15)  # 0.6 s in all, twice the 0.3 s lease
            try:
                await other.start_or_resume("r", MANIFEST, "intruder", lease_ms=300)
            except DurableRunLeaseHeldError:
                refused.append(str(i))
            await ctx.step(f"s{i}", lambda: "ok")
        return "done"

    res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task, lease_ms=300)
    assert res.result == "done" and refused == ["0", "1", "2", "3"]
    run = await store.load_run("r")
    assert run is not None and run.lease_holder is None and run.status == "completed"


async def test_full_disk_is_a_typed_error_and_the_run_resumes_after(tmp_path: Path) -> None:
    # SQLite rolls a transaction back by itself on SQLITE_FULL; the store must report that
    # cause, typed, not a "cannot rollback" error of its own, and stay usable
    store = SQLiteDurableRunStore(tmp_path / "full.db")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    calls: list[int] = []

    async def task(ctx: DurableContext) -> int:
        for i in range(50):
            await ctx.step(f"s{i}", lambda i=i: calls.append(i) or "x" * 3000)
        return len(calls)

    with pytest.raises(StoreUnavailableError, match="full") as info:
        await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert not store._db.in_transaction
    done = len(await store.load_steps("r"))
    assert 0 < done < 50
    with pytest.raises(StoreUnavailableError, match="full"):
        await store.append_stream_events("r", [("big", "y" * 100_000)])
    assert await store.read_stream_events("r") == []
    store._db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    res = await run_durable(run_id="r", manifest=MANIFEST, store=store, task_fn=task)
    assert res.replayed == done and res.executed == 50 - done
    assert calls == list(range(done + 1)) + list(range(done, 50))
    assert "full" in str(info.value)
    await store.close()
