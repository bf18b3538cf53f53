"""The production-run ledger (ORIGINAL §12): the handle's rules, its row, and the persistences
(memory, a real SQLite file, a real PostgreSQL schema)."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import (
    InMemoryRuntimeRunPersistence,
    PostgresRuntimeRunPersistence,
    RuntimeRunCost,
    RuntimeRunHandle,
    RuntimeRunRow,
    RuntimeRunStateError,
    SQLiteRuntimeRunPersistence,
    ValidationError,
    start_runtime_run,
)
from agent_runtime.types import AgentTaskSpec, LlmCallEvent, TextDeltaEvent

TASK = AgentTaskSpec(id="triage", intent="triage a ticket", domain="support")
T0 = 1_796_112_877_123  # 2026-12-01T08:14:37.123Z


class Clock:
    """A `now` of our own: epoch ms that the test moves."""

    def __init__(self, ms: float = T0) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms


def run(clock: Clock | None = None, **kwargs: Any) -> RuntimeRunHandle:
    options: dict[str, Any] = {"workspace_id": "ws-1", "task_spec": TASK, "now": clock or Clock()}
    options.update(kwargs)
    return start_runtime_run(**options)


# --- the handle -------------------------------------------------------------------------------


def test_start_defaults() -> None:
    handle = start_runtime_run(workspace_id="ws-1", task_spec=TASK)
    assert re.fullmatch(r"triage:[0-9a-z]{8}", handle.id)
    assert handle.id != start_runtime_run(workspace_id="ws-1", task_spec=TASK).id
    assert (handle.workspace_id, handle.session_id, handle.task_spec) == ("ws-1", None, TASK)
    assert handle.status == "running"
    assert handle.cost().wall_ms >= 0
    given = run(id="run-1", session_id="s-1", agent_id="a-1", scenario_id="sc-1")
    assert (given.id, given.session_id) == ("run-1", "s-1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workspace_id": ""},
        {"workspace_id": None},
        {"task_spec": {"id": "triage", "intent": "x"}},
        {"task_spec": None},
        {"id": ""},
        {"now": 5},
        {"now": lambda: math.nan},
        {"adapter": object()},
        {"session_id": 3},
    ],
)
def test_start_refuses_bad_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        run(**kwargs)


def test_observe_counts_only_llm_calls() -> None:
    handle = run()
    handle.observe(LlmCallEvent(model="m", tokens_in=100, tokens_out=20, cost_usd=0.5))
    handle.observe(TextDeltaEvent(text="ignored"))
    handle.observe({"type": "text_delta", "text": "ignored too"})
    handle.observe(LlmCallEvent(model="m", tokens_in=math.nan, tokens_out=math.inf, cost_usd=None))  # type: ignore[arg-type]
    handle.observe(LlmCallEvent(model="m").to_dict())
    handle.observe("not an event")
    cost = handle.cost()
    assert (cost.tokens_in, cost.tokens_out, cost.cost_usd, cost.llm_calls) == (100, 20, 0.5, 3)
    with pytest.raises(ValidationError):
        handle.observe({"type": "llm_call", "model": 3})
    assert handle.cost().llm_calls == 3, "a bad event changes nothing"


def test_wall_time_runs_until_completion_then_freezes() -> None:
    clock = Clock()
    handle = run(clock)
    clock.ms += 250
    assert handle.cost().wall_ms == 250
    clock.ms += 750
    handle.complete(status="completed")
    clock.ms += 5000
    assert handle.cost().wall_ms == 1000
    handle.complete(status="completed", result_summary="again")
    assert handle.cost().wall_ms == 1000, "a repeated completion updates nothing"


def test_complete_rules() -> None:
    handle = run()
    with pytest.raises(ValidationError):
        handle.complete(status="running")
    with pytest.raises(ValidationError):
        handle.complete(status="done")  # type: ignore[arg-type]
    assert handle.status == "running"
    handle.complete(
        status="failed", result_summary="model refused", error="refusal", metadata={"a": 1}
    )
    assert handle.status == "failed"
    handle.complete(status="failed", result_summary="other", error="other", metadata={"b": 2})
    row = handle.to_row()
    assert (row.result_summary, row.error, row.metadata) == ("model refused", "refusal", {"a": 1})
    with pytest.raises(
        RuntimeRunStateError,
        match=re.escape('Cannot transition runtime run from "failed" to "completed"'),
    ):
        handle.complete(status="completed")
    assert handle.status == "failed"


def test_complete_refuses_bad_input_and_changes_nothing() -> None:
    handle = run()
    for kwargs in (
        {"result_summary": 3},
        {"error": 42},
        {"metadata": {"bad": {1, 2}}},
        {"metadata": ["x"]},
        {"cost": {"tokens_in": "many"}},
        {"cost": {"tokenz": 1}},
        {"cost": 12},
        {"cost": {"llm_calls": 1.5}},
    ):
        with pytest.raises(ValidationError):
            handle.complete(status="completed", **kwargs)
    assert handle.status == "running" and handle.to_row().completed_at is None


def test_a_cost_override_replaces_finite_fields_only() -> None:
    clock = Clock()
    handle = run(clock)
    handle.observe(LlmCallEvent(model="m", tokens_in=10, tokens_out=5, cost_usd=0.1))
    clock.ms += 40
    handle.complete(
        status="completed",
        cost={
            "tokens_in": 1000,
            "tokens_out": math.nan,
            "cost_usd": 2.5,
            "wall_ms": 1,
            "llm_calls": 4.0,
        },
    )
    assert handle.cost() == RuntimeRunCost(
        tokens_in=1000, tokens_out=5, cost_usd=2.5, wall_ms=40, llm_calls=4
    )
    other = run()
    other.complete(
        status="cancelled",
        cost=RuntimeRunCost(tokens_in=7, tokens_out=8, cost_usd=0.5, wall_ms=99, llm_calls=2),
    )
    assert other.cost() == RuntimeRunCost(
        tokens_in=7, tokens_out=8, cost_usd=0.5, wall_ms=0, llm_calls=2
    )


def test_an_exception_as_error_is_its_message() -> None:
    handle = run()
    handle.complete(status="failed", error=RuntimeError("backend down"))
    assert handle.to_row().error == "backend down"


def test_the_row() -> None:
    clock = Clock()
    handle = run(clock, id="run-1", session_id="s-1", agent_id="a-1", scenario_id="sc-1")
    running = handle.to_row()
    assert running.to_dict() == {
        "id": "run-1",
        "workspaceId": "ws-1",
        "sessionId": "s-1",
        "agentId": "a-1",
        "domain": "support",
        "taskId": "triage",
        "scenarioId": "sc-1",
        "status": "running",
        "cost": {"tokensIn": 0, "tokensOut": 0, "costUsd": 0, "wallMs": 0, "llmCalls": 0},
        "startedAt": "2026-12-01T08:14:37.123Z",
    }
    handle.observe(LlmCallEvent(model="m", tokens_in=3, tokens_out=4, cost_usd=0.25))
    clock.ms += 1500
    handle.complete(status="completed", result_summary="closed", metadata={"a": 1, "b": 2})
    row = handle.to_row({"b": 3, "c": 4})
    assert isinstance(row, RuntimeRunRow)
    assert row.to_dict() == {
        "id": "run-1",
        "workspaceId": "ws-1",
        "sessionId": "s-1",
        "agentId": "a-1",
        "domain": "support",
        "taskId": "triage",
        "scenarioId": "sc-1",
        "status": "completed",
        "resultSummary": "closed",
        "cost": {"tokensIn": 3, "tokensOut": 4, "costUsd": 0.25, "wallMs": 1500, "llmCalls": 1},
        "startedAt": "2026-12-01T08:14:37.123Z",
        "completedAt": "2026-12-01T08:14:38.623Z",
        "metadata": {"a": 1, "b": 3, "c": 4},
    }
    assert handle.to_row().metadata == {"a": 1, "b": 2}
    assert RuntimeRunRow.from_dict(row.to_dict()) == row
    bare = run()
    bare.complete(status="completed")
    assert bare.to_row().metadata is None and bare.to_row({"x": 1}).metadata == {"x": 1}
    with pytest.raises(ValidationError):
        bare.to_row(["x"])  # type: ignore[arg-type]


class SyncAdapter:
    def __init__(self) -> None:
        self.rows: list[RuntimeRunRow] = []

    def upsert(self, row: RuntimeRunRow) -> None:
        self.rows.append(row)


class FailingAdapter:
    async def upsert(self, row: RuntimeRunRow) -> None:
        raise OSError("ledger disk full")


async def test_persist_rules() -> None:
    adapter = SyncAdapter()
    handle = run(adapter=adapter)
    with pytest.raises(
        RuntimeRunStateError, match=r"^Cannot persist a runtime run before complete\(\) is called$"
    ):
        await handle.persist()
    assert adapter.rows == []
    handle.complete(status="completed", metadata={"a": 1})
    await handle.persist({"b": 2})
    assert len(adapter.rows) == 1 and adapter.rows[0].metadata == {"a": 1, "b": 2}
    no_adapter = run()
    no_adapter.complete(status="completed")
    await no_adapter.persist()
    failing = run(adapter=FailingAdapter())
    failing.complete(status="failed")
    with pytest.raises(OSError, match="ledger disk full"):
        await failing.persist()


# --- persistences -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def persistence(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        store: Any = InMemoryRuntimeRunPersistence()
    elif request.param == "sqlite":
        store = SQLiteRuntimeRunPersistence(tmp_path / "ledger.db")
    else:
        store = PostgresRuntimeRunPersistence(request.getfixturevalue("pg_dsn"))
    yield store
    await store.close()


async def test_persisted_rows_read_back(persistence: Any) -> None:
    clock = Clock()
    first = run(clock, adapter=persistence, id="run-a", session_id="s")
    first.observe(LlmCallEvent(model="m", tokens_in=5, tokens_out=6, cost_usd=0.125))
    clock.ms += 10
    first.complete(status="completed", result_summary="ok", metadata={"n": [1, "two"]})
    await first.persist({"extra": True})
    assert await persistence.get("run-a") == first.to_row({"extra": True})
    assert await persistence.get("missing") is None

    later = run(Clock(T0 + 60_000), adapter=persistence, id="run-b", workspace_id="ws-2")
    later.complete(status="cancelled")
    await later.persist()
    third = run(Clock(T0 + 30_000), adapter=persistence, id="run-c")
    third.complete(status="failed", error="boom")
    await third.persist()
    assert [r.id for r in await persistence.list()] == ["run-b", "run-c", "run-a"]
    assert [r.id for r in await persistence.list(workspace_id="ws-1")] == ["run-c", "run-a"]
    assert [r.id for r in await persistence.list(limit=1)] == ["run-b"]
    assert await persistence.list(workspace_id="nobody") == []


async def test_upsert_replaces_by_id(persistence: Any) -> None:
    handle = run(adapter=persistence, id="run-x")
    handle.complete(status="completed", result_summary="first")
    await handle.persist()
    await handle.persist({"again": 1})
    rows = await persistence.list()
    assert len(rows) == 1 and rows[0].metadata == {"again": 1}


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("list", {"limit": 0}),
        ("list", {"limit": "10"}),
        ("list", {"workspace_id": ""}),
        ("get", {"id": ""}),
        ("upsert", {"row": {"id": "x"}}),
    ],
)
async def test_persistences_refuse_bad_input_alike(
    persistence: Any, call: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await getattr(persistence, call)(**kwargs)
