"""Run ledger at its boundary: listing limits, a locked SQLite ledger, and a run whose final
write failed staying open for a retry."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import InvalidArgumentError, StoreUnavailableError
from agent_runtime.telemetry import (
    InMemoryRuntimeRunPersistence,
    RuntimeRunOptions,
    SQLiteRuntimeRunPersistence,
    start_runtime_run,
)


@pytest.fixture(params=["memory", "sqlite"])
async def persistence(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    p: Any = (
        InMemoryRuntimeRunPersistence()
        if request.param == "memory"
        else SQLiteRuntimeRunPersistence(tmp_path / "ledger.db")
    )
    yield p
    await p.close()


@pytest.mark.parametrize("limit", [0, -1, 1.5, "2", True])
async def test_bad_limits_are_refused_the_same_way(persistence: Any, limit: Any) -> None:
    for i in range(3):
        await start_runtime_run(RuntimeRunOptions(run_id=f"r{i}"), persistence)
    with pytest.raises(InvalidArgumentError):
        await persistence.list_runs(limit=limit)
    assert [r.run_id for r in await persistence.list_runs(limit=3)] == ["r2", "r1", "r0"]


async def test_locked_sqlite_ledger_is_a_typed_error_and_the_run_stays_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    ledger = SQLiteRuntimeRunPersistence(path, busy_timeout_ms=100)
    handle = await start_runtime_run(RuntimeRunOptions(run_id="x"), ledger)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError):
            await handle.complete(cost=1.0)
        with pytest.raises(StoreUnavailableError):
            await start_runtime_run(RuntimeRunOptions(run_id="y"), ledger)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not handle.finished
    assert (await handle.complete(cost=1.0)).status == "completed"
    assert (await ledger.load_run("x")).status == "completed"  # type: ignore[union-attr]
    await ledger.close()
