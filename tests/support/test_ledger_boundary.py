"""Ledger persistences at their edges: versioned migrations, a reopened file, a locked file, an
unreachable or freshly shared PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest

from agent_runtime import (
    PostgresRuntimeRunPersistence,
    SQLiteRuntimeRunPersistence,
    StoreUnavailableError,
    ValidationError,
    start_runtime_run,
)
from agent_runtime.ledger._schema import SCHEMA_TABLE
from agent_runtime.types import AgentTaskSpec

TASK = AgentTaskSpec(id="triage", intent="triage a ticket")


async def test_sqlite_rows_survive_a_reopen_and_the_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.db"
    ledger = SQLiteRuntimeRunPersistence(path)
    assert ledger.schema_version() == 1
    handle = start_runtime_run(workspace_id="ws", task_spec=TASK, adapter=ledger, id="r1")
    handle.complete(status="completed")
    await handle.persist()
    await ledger.close()
    again = SQLiteRuntimeRunPersistence(path)
    assert again.schema_version() == 1
    assert await again.get("r1") == handle.to_row()
    await again.close()
    with sqlite3.connect(path) as db:
        assert db.execute(f"SELECT version, description FROM {SCHEMA_TABLE}").fetchall() == [
            (1, "runtime run rows")
        ]


def test_a_newer_or_edited_schema_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    SQLiteRuntimeRunPersistence(newer)
    with sqlite3.connect(newer) as db:
        db.execute(f"INSERT INTO {SCHEMA_TABLE} VALUES (99, 'from the future', 'x', 0)")
    with pytest.raises(StoreUnavailableError, match="newer"):
        SQLiteRuntimeRunPersistence(newer)
    edited = tmp_path / "edited.db"
    SQLiteRuntimeRunPersistence(edited)
    with sqlite3.connect(edited) as db:
        db.execute(f"UPDATE {SCHEMA_TABLE} SET checksum = 'deadbeef' WHERE version = 1")
    with pytest.raises(StoreUnavailableError, match="must not change"):
        SQLiteRuntimeRunPersistence(edited)


def test_an_unopenable_file_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailableError):
        SQLiteRuntimeRunPersistence(blocker / "ledger.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError):
        SQLiteRuntimeRunPersistence(garbage)


async def test_a_locked_file_is_store_unavailable_and_persist_can_be_retried(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    ledger = SQLiteRuntimeRunPersistence(path, busy_timeout_ms=50)
    handle = start_runtime_run(workspace_id="ws", task_spec=TASK, adapter=ledger, id="r1")
    handle.complete(status="completed")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError):
            await handle.persist()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert handle.status == "completed"
    await handle.persist()
    assert await ledger.get("r1") == handle.to_row()
    await ledger.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_postgres_is_store_unavailable_and_propagates_from_persist() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{_closed_port()}/none"
    ledger = PostgresRuntimeRunPersistence(dsn, connect_timeout_s=1)
    handle = start_runtime_run(workspace_id="ws", task_spec=TASK, adapter=ledger)
    handle.complete(status="failed")
    with pytest.raises(StoreUnavailableError):
        await handle.persist()
    with pytest.raises(StoreUnavailableError):
        await ledger.list()
    await ledger.close()


async def test_postgres_workers_migrate_at_once_and_share_rows(pg_dsn: str) -> None:
    ledgers = [PostgresRuntimeRunPersistence(pg_dsn) for _ in range(4)]
    try:
        assert await asyncio.gather(*(ledger.schema_version() for ledger in ledgers)) == [1] * 4
        handles = []
        for i, ledger in enumerate(ledgers):
            handle = start_runtime_run(
                workspace_id="ws", task_spec=TASK, adapter=ledger, id=f"r{i}"
            )
            handle.complete(status="completed")
            handles.append(handle)
        await asyncio.gather(*(h.persist() for h in handles))
        rows = await ledgers[0].list()
        assert sorted(r.id for r in rows) == ["r0", "r1", "r2", "r3"]
    finally:
        for ledger in ledgers:
            await ledger.close()
    reopened = PostgresRuntimeRunPersistence(pg_dsn)
    assert await reopened.get("r2") == handles[2].to_row()
    await reopened.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dsn": ""},
        {"dsn": "postgresql://x", "min_size": 0},
        {"dsn": "postgresql://x", "connect_timeout_s": 0},
    ],
)
def test_postgres_options_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PostgresRuntimeRunPersistence(**kwargs)  # type: ignore[arg-type]
