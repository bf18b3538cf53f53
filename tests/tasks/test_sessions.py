"""Backend session stores (ORIGINAL §6, DESIGN §2): one suite over memory, a SQLite file and
PostgreSQL, then what only the SQL stores do (copies, wire JSON, migrations, connections)."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agent_runtime import (
    AgentTaskSpec,
    KnowledgeRequirement,
    RuntimeSession,
    StoreUnavailableError,
    ValidationError,
    score_knowledge_readiness,
)
from agent_runtime.readiness import decide_knowledge_readiness
from agent_runtime.sessions import (
    InMemoryRuntimeSessionStore,
    PostgresRuntimeSessionStore,
    RuntimeSessionEventLog,
    RuntimeSessionStore,
    SQLiteRuntimeSessionStore,
)
from agent_runtime.types import (
    BackendErrorDetail,
    BackendErrorEvent,
    FinalEvent,
    LlmCallEvent,
    ReadinessEndEvent,
    SessionCreatedEvent,
    TextDeltaEvent,
    ToolCallEvent,
)

TASK = AgentTaskSpec(
    id="t1",
    intent="Answer.",
    inputs={"q": "ünïcode \x00 and \n"},
    required_knowledge=(KnowledgeRequirement(id="k", description="d"),),
)
SESSION = RuntimeSession(
    id="s1",
    backend="sandbox",
    status="active",
    created_at="2026-01-01T00:00:00.000Z",
    updated_at="2026-01-01T00:00:01.000Z",
    resume_token="rt",
    metadata={"resumable": True, "nested": {"a": [1, 2.5, None]}},
)


def sample_events() -> list[Any]:
    report = score_knowledge_readiness("t1", TASK.required_knowledge or ())
    ts = "2026-01-01T00:00:02.000Z"
    detail = BackendErrorDetail("transport", "chat backend returned 503", 503, "busy")
    return [
        SessionCreatedEvent(TASK, SESSION, ts),
        ReadinessEndEvent(TASK, report, decide_knowledge_readiness(report), ts),
        TextDeltaEvent(text="hé\x00llo", task=TASK, session=SESSION, timestamp=ts),
        TextDeltaEvent(text="bare"),
        ToolCallEvent(tool_name="search", tool_call_id="c1", args={"q": [1, {"x": None}]}),
        LlmCallEvent(model="m", tokens_in=3, tokens_out=4, cost_usd=0.25, task=TASK),
        BackendErrorEvent(
            task=TASK, backend="sandbox", message="m", recoverable=False, error=detail
        ),
        FinalEvent(task=TASK, status="failed", reason="m", text="partial", error=detail),
    ]


async def call(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    s: Any
    if request.param == "memory":
        s = InMemoryRuntimeSessionStore()
    elif request.param == "sqlite":
        s = SQLiteRuntimeSessionStore(tmp_path / "sessions.db")
    else:
        s = PostgresRuntimeSessionStore(request.getfixturevalue("pg_dsn"), max_size=2)
    try:
        yield s
    finally:
        await call(s.close())


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    s: Any
    if request.param == "sqlite":
        s = SQLiteRuntimeSessionStore(tmp_path / "sessions.db")
    else:
        s = PostgresRuntimeSessionStore(request.getfixturevalue("pg_dsn"), max_size=2)
    try:
        yield s
    finally:
        await s.close()


# --- every store ------------------------------------------------------------------------------


async def test_protocols(store: Any) -> None:
    assert isinstance(store, RuntimeSessionStore)
    assert isinstance(store, RuntimeSessionEventLog)


async def test_get_put_replace(store: Any) -> None:
    assert await call(store.get("s1")) is None
    await call(store.put(SESSION))
    assert await call(store.get("s1")) == SESSION
    done = SESSION.touched(status="completed", resume_token=None)
    await call(store.put(done))
    got = await call(store.get("s1"))
    assert got == done and got.resume_token is None and got.status == "completed"
    assert await call(store.get("s2")) is None


async def test_events_in_append_order_round_trip(store: Any) -> None:
    events = sample_events()
    for event in events:
        await call(store.append_event("s1", event))
    await call(store.append_event("s2", TextDeltaEvent(text="other")))
    listed = await call(store.list_events("s1"))
    assert listed == events
    assert [e.to_dict() for e in listed] == [e.to_dict() for e in events]
    assert await call(store.list_events("s2")) == [TextDeltaEvent(text="other")]
    assert await call(store.list_events("unknown")) == []


async def test_list_events_returns_a_new_list(store: Any) -> None:
    await call(store.append_event("s1", TextDeltaEvent(text="a")))
    first = await call(store.list_events("s1"))
    first.append(TextDeltaEvent(text="mine"))
    first.clear()
    assert await call(store.list_events("s1")) == [TextDeltaEvent(text="a")]
    assert await call(store.list_events("s1")) is not await call(store.list_events("s1"))


@pytest.mark.parametrize(
    "bad",
    [
        lambda s: s.put({"id": "s1", "backend": "b"}),
        lambda s: s.put(None),
        lambda s: s.get(""),
        lambda s: s.get(5),
        lambda s: s.append_event("", TextDeltaEvent(text="x")),
        lambda s: s.append_event(None, TextDeltaEvent(text="x")),
        lambda s: s.append_event("s1", {"type": "text_delta", "text": "x"}),
        lambda s: s.append_event("s1", "text_delta"),
        lambda s: s.list_events(""),
    ],
)
async def test_bad_input_is_a_validation_error_that_writes_nothing(store: Any, bad: Any) -> None:
    with pytest.raises(ValidationError):
        await call(bad(store))
    assert await call(store.get("s1")) is None
    assert await call(store.list_events("s1")) == []


# --- the in-memory store: the original's semantics --------------------------------------------


def test_memory_store_is_synchronous_and_keeps_the_objects() -> None:
    store = InMemoryRuntimeSessionStore()
    assert store.put(SESSION) is None
    assert store.get("s1") is SESSION
    event = TextDeltaEvent(text="a")
    assert store.append_event("s1", event) is None
    assert store.list_events("s1")[0] is event
    assert store.list_events("nope") == []


# --- the SQL stores ---------------------------------------------------------------------------


async def test_sql_stores_return_equal_copies(sql_store: Any) -> None:
    await sql_store.put(SESSION)
    got = await sql_store.get("s1")
    assert got == SESSION and got is not SESSION and got.metadata is not SESSION.metadata
    event = TextDeltaEvent(text="a", task=TASK, session=SESSION, timestamp="x")
    await sql_store.append_event("s1", event)
    (listed,) = await sql_store.list_events("s1")
    assert listed == event and listed is not event


@pytest.mark.parametrize(
    "bad",
    [
        lambda s: s.put(RuntimeSession.new("b", "nul\x00id")),
        lambda s: s.get("nul\x00id"),
        lambda s: s.put(RuntimeSession.new("b", "s1", {"when": {1, 2}})),
        lambda s: s.put(RuntimeSession.new("b", "s1", {"x": float("nan")})),
        lambda s: s.append_event("s1", ToolCallEvent(tool_name="t", args={"v": float("inf")})),
        lambda s: s.append_event("s1", ToolCallEvent(tool_name="t", args=object())),
    ],
)
async def test_sql_refuses_what_it_cannot_store_exactly(sql_store: Any, bad: Any) -> None:
    with pytest.raises(ValidationError):
        await bad(sql_store)
    assert await sql_store.get("s1") is None
    assert await sql_store.list_events("s1") == []


async def test_events_are_stored_as_their_wire_json(tmp_path: Path) -> None:
    store = SQLiteRuntimeSessionStore(tmp_path / "s.db")
    event = ToolCallEvent(tool_name="search", tool_call_id="c1", args={"q": 1})
    await store.append_event("s1", event)
    await store.put(SESSION)
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        ((kind, text),) = db.execute("SELECT type, event FROM backend_session_events").fetchall()
        (record,) = db.execute("SELECT record FROM backend_sessions").fetchone()
    assert kind == "tool_call" and orjson.loads(text) == event.to_dict()
    assert orjson.loads(record) == SESSION.to_dict()


async def test_sqlite_survives_reopen_with_its_migration_recorded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    a = SQLiteRuntimeSessionStore(path)
    await a.put(SESSION)
    await a.append_event("s1", TextDeltaEvent(text="kept"))
    assert a.schema_version() == 1
    await a.close()
    b = SQLiteRuntimeSessionStore(path)
    assert await b.get("s1") == SESSION
    assert await b.list_events("s1") == [TextDeltaEvent(text="kept")]
    assert b.schema_version() == 1
    await b.close()
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT version, description, checksum FROM backend_sessions_schema_info"
        ).fetchall()
    assert [(v, d) for v, d, _ in rows] == [(1, "backend sessions and their events")]
    assert len(rows[0][2]) == 16


async def test_sqlite_refuses_an_edited_or_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await SQLiteRuntimeSessionStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE backend_sessions_schema_info SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(StoreUnavailableError, match="past migrations must not change"):
        SQLiteRuntimeSessionStore(path)
    other = tmp_path / "newer.db"
    await SQLiteRuntimeSessionStore(other).close()
    with sqlite3.connect(other) as db:
        db.execute("INSERT INTO backend_sessions_schema_info VALUES (99, 'future', 'x', 0)")
    with pytest.raises(StoreUnavailableError, match="newer than this library"):
        SQLiteRuntimeSessionStore(other)


async def test_sqlite_shares_a_file_with_the_conversation_history(tmp_path: Path) -> None:
    from agent_runtime.history import SQLiteConversationHistory

    path = tmp_path / "app.db"
    history = SQLiteConversationHistory(path)
    await history.append_messages("s1", [{"role": "user", "content": "hi"}], tenant_id="t")
    store = SQLiteRuntimeSessionStore(path)
    await store.put(SESSION)
    assert (await history.load("s1", tenant_id="t")).message_count == 1  # type: ignore[union-attr]
    assert await store.get("s1") == SESSION
    await store.close()
    await history.close()


async def test_sqlite_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteRuntimeSessionStore(tmp_path / "s.db")
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get("s1")


async def test_sqlite_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreUnavailableError):
        SQLiteRuntimeSessionStore(tmp_path / "dir.db")


async def _backends(dsn: str, app: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_postgres_close_releases_its_connections(pg_dsn: str) -> None:
    app = f"sessions-{secrets.token_hex(4)}"
    store = PostgresRuntimeSessionStore(f"{pg_dsn}&application_name={app}", max_size=2)
    assert await _backends(pg_dsn, app) == 0, "nothing connects before first use"
    await store.put(SESSION)
    assert await _backends(pg_dsn, app) >= 1
    assert store.owns_pool
    await store.close()
    assert await _backends(pg_dsn, app) == 0
    with pytest.raises(StoreUnavailableError):
        await store.get("s1")


async def test_postgres_on_a_borrowed_pool_leaves_it_open(pg_dsn: str) -> None:
    async with AsyncConnectionPool(pg_dsn, min_size=1, max_size=2, open=False) as pool:
        store = PostgresRuntimeSessionStore(pool)
        assert not store.owns_pool
        await store.put(SESSION)
        await store.append_event("s1", TextDeltaEvent(text="x"))
        await store.close()
        assert not pool.closed
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM backend_session_events")
            assert await cur.fetchone() == (1,)


async def test_postgres_two_stores_migrate_once_and_share(pg_dsn: str) -> None:
    a = PostgresRuntimeSessionStore(pg_dsn, max_size=2)
    b = PostgresRuntimeSessionStore(pg_dsn, max_size=2)
    try:
        await asyncio.gather(a.put(SESSION), b.append_event("s1", TextDeltaEvent(text="b")))
        assert await b.get("s1") == SESSION
        await a.append_event("s1", TextDeltaEvent(text="a"))
        assert [e.text for e in await b.list_events("s1")] == ["b", "a"]
        assert await a.schema_version() == 1 and await b.schema_version() == 1
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT version, checksum FROM backend_sessions_schema_info"
            ).fetchall()
        assert len(rows) == 1 and rows[0][0] == 1
    finally:
        await a.close()
        await b.close()


async def test_postgres_refuses_an_edited_migration(pg_dsn: str) -> None:
    first = PostgresRuntimeSessionStore(pg_dsn)
    await first.put(SESSION)
    await first.close()
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("UPDATE backend_sessions_schema_info SET checksum = 'edited'")
    again = PostgresRuntimeSessionStore(pg_dsn)
    try:
        with pytest.raises(StoreUnavailableError, match="past migrations must not change"):
            await again.get("s1")
    finally:
        await again.close()


async def test_postgres_lost_connection_is_typed_and_the_store_recovers(pg_dsn: str) -> None:
    app = f"sessions-{secrets.token_hex(4)}"
    store = PostgresRuntimeSessionStore(f"{pg_dsn}&application_name={app}", max_size=1)
    try:
        await store.append_event("s1", TextDeltaEvent(text="1"))
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (app,),
            )
        with pytest.raises(StoreUnavailableError):
            await store.append_event("s1", TextDeltaEvent(text="2"))
        await store.append_event("s1", TextDeltaEvent(text="3"))
        assert [e.text for e in await store.list_events("s1")] == ["1", "3"]
    finally:
        await store.close()


async def test_postgres_unreachable_is_typed_then_retried(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as probe:
        port = probe.info.port
    free = 1 if port != 1 else 2
    store = PostgresRuntimeSessionStore(
        f"postgresql://postgres@127.0.0.1:{free}/test", connect_timeout_s=0.5
    )
    with pytest.raises(StoreUnavailableError):
        await store.get("s1")
    with pytest.raises(StoreUnavailableError):
        await store.get("s1")
    await store.close()


@pytest.mark.parametrize(
    "args",
    [("",), (42,), (None,)],
)
def test_postgres_bad_construction_is_a_validation_error(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError):
        PostgresRuntimeSessionStore(*args)


def test_postgres_bad_pool_sizes() -> None:
    with pytest.raises(ValidationError):
        PostgresRuntimeSessionStore("postgresql://x", min_size=3, max_size=2)
    with pytest.raises(ValidationError):
        PostgresRuntimeSessionStore("postgresql://x", connect_timeout_s=0)
