"""One conformance suite for every `ConversationHistoryStore` (the server's conversation
history): memory, SQLite file, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ConversationOwnerError, InvalidArgumentError
from agent_runtime.history import (
    ConversationHistoryStore,
    InMemoryConversationHistory,
    PostgresConversationHistory,
    SQLiteConversationHistory,
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    s: Any
    if request.param == "memory":
        s = InMemoryConversationHistory()
    elif request.param == "sqlite":
        s = SQLiteConversationHistory(tmp_path / "sessions.db")
    else:
        s = PostgresConversationHistory(request.getfixturevalue("pg_dsn"), max_size=4)
    try:
        yield s
    finally:
        await s.close()


async def test_protocol(store: Any) -> None:
    assert isinstance(store, ConversationHistoryStore)


async def test_create_append_load(store: Any) -> None:
    s = await store.get_or_create("s1", tenant_id="t", user_id="u", metadata={"title": "hi"})
    assert (s.session_id, s.tenant_id, s.user_id) == ("s1", "t", "u")
    assert s.metadata == {"title": "hi"} and s.messages == () and s.message_count == 0
    assert s.created_at == s.updated_at
    await store.append_messages(
        "s1", [{"role": "user", "content": "a"}], tenant_id="t", user_id="u"
    )
    s2 = await store.append_messages(
        "s1",
        [{"role": "assistant", "content": "b"}, {"role": "user", "content": "c\x00é\n"}],
        tenant_id="t",
        user_id="u",
    )
    assert [m["content"] for m in s2.messages] == ["a", "b", "c\x00é\n"]
    assert s2.message_count == 3 and s2.updated_at >= s.updated_at
    loaded = await store.load("s1", tenant_id="t", user_id="u")
    assert loaded == s2
    again = await store.get_or_create("s1", tenant_id="t", user_id="u", metadata={"x": 1})
    assert again.metadata == {"title": "hi"}, "existing session keeps its metadata"
    assert await store.load("nope", tenant_id="t", user_id="u") is None


async def test_append_creates_and_anonymous_user(store: Any) -> None:
    s = await store.append_messages("anon", [{"n": 1}], tenant_id="t")
    assert s.user_id is None and s.message_count == 1
    with pytest.raises(ConversationOwnerError):
        await store.load("anon", tenant_id="t", user_id="someone")


async def test_other_tenant_or_user_is_refused_and_nothing_changes(store: Any) -> None:
    await store.append_messages("s", [{"m": 1}], tenant_id="t1", user_id="u1")
    for tenant, user in [("t2", "u1"), ("t1", "u2"), ("t1", None)]:
        with pytest.raises(ConversationOwnerError) as info:
            await store.append_messages("s", [{"m": 2}], tenant_id=tenant, user_id=user)
        assert "t1" not in str(info.value) or tenant == "t1"
        with pytest.raises(ConversationOwnerError):
            await store.get_or_create("s", tenant_id=tenant, user_id=user)
        with pytest.raises(ConversationOwnerError):
            await store.load("s", tenant_id=tenant, user_id=user)
        with pytest.raises(ConversationOwnerError):
            await store.update_metadata("s", {"a": 1}, tenant_id=tenant, user_id=user)
        with pytest.raises(ConversationOwnerError):
            await store.delete("s", tenant_id=tenant, user_id=user)
    s = await store.load("s", tenant_id="t1", user_id="u1")
    assert s.messages == ({"m": 1},) and s.metadata == {}


async def test_metadata_merge(store: Any) -> None:
    await store.get_or_create("s", tenant_id="t", metadata={"a": 1, "b": {"c": [1, 2]}})
    s = await store.update_metadata("s", {"a": None, "d": "x"}, tenant_id="t")
    assert s.metadata == {"b": {"c": [1, 2]}, "d": "x"}


async def test_list_and_delete(store: Any) -> None:
    for i in range(3):
        await store.get_or_create(f"s{i}", tenant_id="t", user_id="u")
        await asyncio.sleep(0.002)
    await store.get_or_create("other-user", tenant_id="t", user_id="v")
    await store.get_or_create("other-tenant", tenant_id="t2", user_id="u")
    await asyncio.sleep(0.002)
    await store.append_messages("s0", [{"bump": True}], tenant_id="t", user_id="u")
    listed = await store.list_sessions(tenant_id="t", user_id="u")
    assert [s.session_id for s in listed] == ["s0", "s2", "s1"]
    assert listed[0].messages == () and listed[0].message_count == 1
    assert {s.session_id for s in await store.list_sessions(tenant_id="t")} == {
        "s0",
        "s1",
        "s2",
        "other-user",
    }
    assert len(await store.list_sessions(tenant_id="t", limit=2)) == 2
    assert await store.delete("s0", tenant_id="t", user_id="u") is True
    assert await store.delete("s0", tenant_id="t", user_id="u") is False
    assert await store.load("s0", tenant_id="t", user_id="u") is None
    s = await store.append_messages("s0", [{"fresh": 1}], tenant_id="t", user_id="u")
    assert s.messages == ({"fresh": 1},), "a deleted session leaves no messages behind"


async def test_concurrent_appends_keep_every_message(store: Any) -> None:
    await store.get_or_create("c", tenant_id="t")
    await asyncio.gather(
        *(store.append_messages("c", [{"i": i}, {"i": i}], tenant_id="t") for i in range(8))
    )
    s = await store.load("c", tenant_id="t")
    assert s.message_count == 16 and sorted(m["i"] for m in s.messages) == sorted(
        [i for i in range(8) for _ in range(2)]
    )


async def test_add_messages_appends_and_counts_without_reading_back(store: Any) -> None:
    assert await store.add_messages("a", [{"n": 1}, {"n": 2}], tenant_id="t", user_id="u") == 2
    assert await store.add_messages("a", [{"n": 3}], tenant_id="t", user_id="u") == 3
    assert await store.add_messages("a", [], tenant_id="t", user_id="u") == 3
    s = await store.load("a", tenant_id="t", user_id="u")
    assert [m["n"] for m in s.messages] == [1, 2, 3] and s.message_count == 3
    with pytest.raises(ConversationOwnerError):
        await store.add_messages("a", [{"n": 4}], tenant_id="t", user_id="v")
    assert (await store.load("a", tenant_id="t", user_id="u")).message_count == 3


async def test_advance_metadata_raises_floors_and_fills_defaults(store: Any) -> None:
    await store.advance_metadata("m", at_least={"turns": 2}, defaults={"title": "a"}, tenant_id="t")
    s = await store.load("m", tenant_id="t")
    assert s.metadata == {"turns": 2, "title": "a"} and s.messages == ()
    await store.advance_metadata("m", at_least={"turns": 1}, defaults={"title": "b"}, tenant_id="t")
    assert (await store.load("m", tenant_id="t")).metadata == {"turns": 2, "title": "a"}
    await store.update_metadata("m", {"turns": "x", "keep": [1]}, tenant_id="t")
    await store.advance_metadata("m", at_least={"turns": 1}, tenant_id="t")
    assert (await store.load("m", tenant_id="t")).metadata == {
        "turns": 1,
        "title": "a",
        "keep": [1],
    }, "a value that is not an int counts as below the floor"
    with pytest.raises(ConversationOwnerError):
        await store.advance_metadata("m", at_least={"turns": 9}, tenant_id="t", user_id="u")
    assert (await store.load("m", tenant_id="t")).metadata["turns"] == 1


async def test_concurrent_advances_keep_the_highest_floor(store: Any) -> None:
    await asyncio.gather(
        *(
            store.advance_metadata("c", at_least={"turns": n}, tenant_id="t")
            for n in (3, 9, 1, 7, 9, 2, 5)
        )
    )
    assert (await store.load("c", tenant_id="t")).metadata == {"turns": 9}


@pytest.mark.parametrize(
    ("at_least", "defaults", "path"),
    [
        ([1], None, "at_least"),
        ({"turns": -1}, None, "at_least.turns"),
        ({"turns": True}, None, "at_least.turns"),
        ({"turns": 1.0}, None, "at_least.turns"),
        ({1: 1}, None, "at_least"),
        ({"turns": 1}, [1], "metadata"),
        ({"turns": 1}, {"v": float("nan")}, "metadata.v"),
    ],
)
async def test_bad_advance_is_typed_and_writes_nothing(
    store: Any, at_least: Any, defaults: Any, path: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await store.advance_metadata("s", at_least=at_least, defaults=defaults, tenant_id="t")
    assert info.value.path == path
    assert await store.list_sessions(tenant_id="t") == []


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda st: st.get_or_create("", tenant_id="t"), "session_id"),
        (lambda st: st.get_or_create("s", tenant_id=""), "tenant_id"),
        (lambda st: st.get_or_create("s", tenant_id="t", user_id=5), "user_id"),
        (lambda st: st.get_or_create("s\x00", tenant_id="t"), "session_id"),
        (lambda st: st.get_or_create("s", tenant_id="t", metadata=[1]), "metadata"),
        (lambda st: st.append_messages("s", {"role": "user"}, tenant_id="t"), "messages"),
        (lambda st: st.append_messages("s", [{"ok": 1}, "no"], tenant_id="t"), "messages[1]"),
        (
            lambda st: st.append_messages("s", [{"v": float("inf")}], tenant_id="t"),
            "messages[0].v",
        ),
        (lambda st: st.list_sessions(tenant_id="t", limit=0), "limit"),
    ],
)
async def test_bad_input_is_typed_and_writes_nothing(store: Any, call: Any, path: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await call(store)
    assert info.value.path == path
    assert await store.list_sessions(tenant_id="t") == []


async def test_sqlite_survives_reopen_and_schema_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    a = SQLiteConversationHistory(path)
    await a.append_messages("s", [{"x": 1}], tenant_id="t")
    await a.close()
    b = SQLiteConversationHistory(path)
    assert (await b.load("s", tenant_id="t")).messages == ({"x": 1},)
    await b.close()


async def test_postgres_two_stores_share_sessions(pg_dsn: str) -> None:
    a = PostgresConversationHistory(pg_dsn, max_size=2)
    b = PostgresConversationHistory(pg_dsn, max_size=2)
    try:
        await asyncio.gather(
            a.get_or_create("s", tenant_id="t"), b.get_or_create("s", tenant_id="t")
        )
        await a.append_messages("s", [{"from": "a"}], tenant_id="t")
        s = await b.append_messages("s", [{"from": "b"}], tenant_id="t")
        assert [m["from"] for m in s.messages] == ["a", "b"]
        with pytest.raises(ConversationOwnerError):
            await b.get_or_create("s", tenant_id="other")
    finally:
        await a.close()
        await b.close()


async def test_postgres_history_on_a_durable_store_pool_opens_no_pool_of_its_own(
    pg_dsn: str,
) -> None:
    from agent_runtime.durable import PostgresDurableRunStore

    runs = await PostgresDurableRunStore.from_dsn(pg_dsn, max_size=3)
    try:
        history = PostgresConversationHistory(pg_dsn, pool=runs.pool)
        await history.append_messages("shared-pool", [{"n": 1}], tenant_id="t")
        assert await history.add_messages("shared-pool", [{"n": 2}], tenant_id="t") == 2
        assert runs.pool.get_stats()["pool_size"] <= 3
        await history.close()  # the pool is the store's: still open, the store still works
        assert not runs.pool.closed
        assert await runs.load_run("no-such-run") is None
        again = PostgresConversationHistory(pg_dsn, pool=runs.pool)
        loaded = await again.load("shared-pool", tenant_id="t")
        assert loaded is not None and [m["n"] for m in loaded.messages] == [1, 2]
    finally:
        await runs.close()
    with pytest.raises(InvalidArgumentError) as info:
        PostgresConversationHistory(pg_dsn, pool=object())
    assert info.value.path == "pool"


async def test_postgres_lost_connection_is_a_typed_error_and_the_store_recovers(
    pg_dsn: str,
) -> None:
    import secrets

    import psycopg

    from agent_runtime.errors import StoreUnavailableError

    app = f"sessions-{secrets.token_hex(4)}"
    store = PostgresConversationHistory(f"{pg_dsn}&application_name={app}", max_size=1)
    try:
        await store.append_messages("s", [{"n": 1}], tenant_id="t")
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (app,),
            ).fetchall()
        assert killed and all(ok for (ok,) in killed)
        with pytest.raises(StoreUnavailableError):
            await store.append_messages("s", [{"n": 2}], tenant_id="t")
        s = await store.append_messages("s", [{"n": 3}], tenant_id="t")
        assert [m["n"] for m in s.messages] == [1, 3], "the failed append wrote nothing"
    finally:
        await store.close()


async def test_postgres_store_recovers_when_the_database_comes_up_late(pg_dsn: str) -> None:
    """A first call while PostgreSQL is unreachable fails typed; once it is reachable the same
    store object works (the failed open must not leave it permanently closed)."""
    import socket
    from urllib.parse import urlsplit, urlunsplit

    from agent_runtime.errors import StoreUnavailableError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    real = urlsplit(pg_dsn)
    dsn = urlunsplit(real._replace(netloc=f"{real.username}@127.0.0.1:{port}"))
    store = PostgresConversationHistory(dsn, max_size=2, connect_timeout_s=0.5)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(real.hostname, real.port or 5432)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    try:
        with pytest.raises(StoreUnavailableError):
            await store.get_or_create("s", tenant_id="t")
        proxy = await asyncio.start_server(forward, "127.0.0.1", port)
        try:
            s = await store.append_messages("s", [{"n": 1}], tenant_id="t")
            assert s.messages == ({"n": 1},)
        finally:
            await store.close()
            proxy.close()
    finally:
        await store.close()
