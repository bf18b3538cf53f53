"""Runtime-run ledger: rows written through memory and SQLite persistence, cost honesty."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import InvalidArgumentError, RuntimeRunStateError
from agent_runtime.telemetry import (
    InMemoryRuntimeRunPersistence,
    RuntimeRunOptions,
    RuntimeRunPersistenceAdapter,
    RuntimeRunRow,
    SQLiteRuntimeRunPersistence,
    start_runtime_run,
)
from agent_runtime.types import ModelPrice, TextDeltaEvent, UsageEvent


@pytest.fixture(params=["memory", "sqlite"])
async def persistence(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    p: Any = (
        InMemoryRuntimeRunPersistence()
        if request.param == "memory"
        else SQLiteRuntimeRunPersistence(tmp_path / "ledger.db")
    )
    assert isinstance(p, RuntimeRunPersistenceAdapter)
    yield p
    await p.close()


async def test_run_lifecycle_rows(persistence: Any) -> None:
    handle = await start_runtime_run(
        RuntimeRunOptions(run_id="r1", tenant_id="t", model="m", metadata={"k": [1]}), persistence
    )
    running = await persistence.load_run("r1")
    assert running.status == "running" and running.ended_at_ms is None
    handle.record_event(TextDeltaEvent(text="he"))
    handle.record_event(TextDeltaEvent(text="llo"))
    handle.record_event(UsageEvent(input_tokens=10, output_tokens=3))
    handle.record_event({"type": "usage", "input_tokens": 5, "output_tokens": 2})
    row = await handle.complete(cost=0.25)
    stored = await persistence.load_run("r1")
    assert stored == row
    assert row.status == "completed" and row.cost_usd == 0.25
    assert row.event_count == 4 and row.event_counts == {"text.delta": 2, "usage": 2}
    assert (row.input_tokens, row.output_tokens) == (15, 5)
    assert row.duration_ms is not None and row.duration_ms >= 0
    assert row.metadata == {"k": [1]} and row.tenant_id == "t"


async def test_cost_is_none_when_unknown_and_computed_from_price(persistence: Any) -> None:
    unknown = await start_runtime_run(RuntimeRunOptions(run_id="u"), persistence)
    unknown.record_event(UsageEvent(input_tokens=1000, output_tokens=1000))
    assert (await unknown.complete()).cost_usd is None
    priced_no_usage = await start_runtime_run(
        RuntimeRunOptions(run_id="p0", price=ModelPrice(1.0, 2.0)), persistence
    )
    assert (await priced_no_usage.complete()).cost_usd is None
    priced = await start_runtime_run(
        RuntimeRunOptions(run_id="p", price=ModelPrice(1.0, 2.0)), persistence
    )
    priced.record_event(UsageEvent(input_tokens=1_000_000, output_tokens=500_000))
    assert (await priced.complete()).cost_usd == pytest.approx(2.0)


async def test_second_completion_is_refused_and_row_unchanged(persistence: Any) -> None:
    handle = await start_runtime_run(RuntimeRunOptions(run_id="d"), persistence)
    first = await handle.fail(ValueError("boom"))
    assert first.error == {"type": "ValueError", "message": "boom"}
    for again in (handle.complete(), handle.fail("x")):
        with pytest.raises(RuntimeRunStateError):
            await again
    with pytest.raises(RuntimeRunStateError):
        handle.record_event({"type": "status"})
    assert await persistence.load_run("d") == first


async def test_concurrent_completions_only_one_wins(persistence: Any) -> None:
    handle = await start_runtime_run(RuntimeRunOptions(run_id="c"), persistence)
    results = await asyncio.gather(handle.complete(), handle.fail("late"), return_exceptions=True)
    assert sum(isinstance(r, RuntimeRunRow) for r in results) == 1
    assert sum(isinstance(r, RuntimeRunStateError) for r in results) == 1


async def test_list_runs_and_bad_input(persistence: Any) -> None:
    for i in range(3):
        await start_runtime_run(RuntimeRunOptions(run_id=f"r{i}"), persistence)
    assert len(await persistence.list_runs(limit=2)) == 2
    handle = await start_runtime_run(RuntimeRunOptions(), persistence)
    assert len(handle.run_id) == 32
    for bad in (-1.0, float("nan"), "1"):
        with pytest.raises(InvalidArgumentError):
            await handle.complete(cost=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await handle.fail(42)
    with pytest.raises(InvalidArgumentError):
        handle.record_event({"no": "type"})
    with pytest.raises(InvalidArgumentError):
        await start_runtime_run(RuntimeRunOptions(run_id=""), persistence)
    with pytest.raises(InvalidArgumentError):
        await start_runtime_run(RuntimeRunOptions(metadata={"x": {1}}), persistence)
    assert (await handle.complete()).status == "completed", "bad calls left the run open"


class _FlakyPersistence(InMemoryRuntimeRunPersistence):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def save_run(self, row: RuntimeRunRow) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        await super().save_run(row)


async def test_failed_final_write_keeps_the_run_open() -> None:
    p = _FlakyPersistence()
    handle = await start_runtime_run(RuntimeRunOptions(run_id="f"), p)
    p.fail_next = True
    with pytest.raises(OSError):
        await handle.complete(cost=1.0)
    assert (await p.load_run("f")).status == "running"  # type: ignore[union-attr]
    assert (await handle.complete(cost=1.0)).status == "completed"


async def test_sqlite_ledger_survives_reopen(tmp_path: Path) -> None:
    a = SQLiteRuntimeRunPersistence(tmp_path / "l.db")
    h = await start_runtime_run(RuntimeRunOptions(run_id="x"), a)
    await h.complete(cost=0.5)
    await a.close()
    b = SQLiteRuntimeRunPersistence(tmp_path / "l.db")
    assert (await b.load_run("x")).cost_usd == 0.5  # type: ignore[union-attr]
    await b.close()
