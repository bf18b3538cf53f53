"""`open_store(url)`: every scheme opens the right store; bad URLs are `ConfigurationError`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_runtime.durable import (
    DURABLE_SCHEMA_VERSION,
    FileSystemDurableRunStore,
    InMemoryDurableRunStore,
    PostgresDurableRunStore,
    SQLiteDurableRunStore,
    open_store,
)
from agent_runtime.durable._open import store_path
from agent_runtime.errors import ConfigurationError, StoreUnavailableError


async def test_memory() -> None:
    store = await open_store("memory:")
    assert isinstance(store, InMemoryDurableRunStore)
    await store.close()


async def test_sqlite_absolute_relative_and_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/a.db?durability=full")
    assert isinstance(store, SQLiteDurableRunStore) and store.durability == "full"
    assert store.path == f"{tmp_path}/a.db"
    await store.close()
    monkeypatch.chdir(tmp_path)
    for url, rel in [("sqlite:rel/b.db", "rel/b.db"), ("sqlite:///./c.db", "./c.db")]:
        store = await open_store(url)
        assert isinstance(store, SQLiteDurableRunStore) and store.path == rel
        await store.close()
        assert (tmp_path / rel).is_file()


async def test_create_false_refuses_missing_stores(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/missing.db", f"file://{tmp_path}/missing"):
        with pytest.raises(StoreUnavailableError, match="no store at"):
            await open_store(url, create=False)
    assert list(tmp_path.iterdir()) == []
    store = await open_store(f"sqlite:///{tmp_path}/made.db")
    await store.close()
    store = await open_store(f"sqlite:///{tmp_path}/made.db", create=False)
    await store.close()


async def test_file_store(tmp_path: Path) -> None:
    store = await open_store(f"file://{tmp_path}/root?fsync=false")
    assert isinstance(store, FileSystemDurableRunStore) and store.fsync is False
    assert (tmp_path / "root" / "format.json").is_file()
    await store.close()


async def test_postgres_both_schemes(pg_dsn: str) -> None:
    for url in (pg_dsn, pg_dsn.replace("postgresql://", "postgres://", 1) + "&pool_max=2"):
        store = await open_store(url)
        assert isinstance(store, PostgresDurableRunStore)
        assert await store.schema_version() == DURABLE_SCHEMA_VERSION
        await store.close()


async def test_postgres_unreachable_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailableError):
        await PostgresDurableRunStore.from_dsn(
            "postgresql://postgres@127.0.0.1:1/test", connect_timeout_s=1
        )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "nocolon",
        "mongodb://host/db",
        "memory:/x",
        "sqlite:",
        "sqlite://host/path.db",
        "sqlite:///x.db?durability=sometimes",
        "sqlite:///x.db?journal=wal",
        "file:///tmp/x?fsync=maybe",
        "postgresql://h/db?pool_min=0",
        "postgresql://h/db?pool_min=5&pool_max=2",
    ],
)
async def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        await open_store(url)


def test_store_path_forms() -> None:
    assert store_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert store_path("sqlite:///rel/x.db") == "rel/x.db"
    assert store_path("sqlite:///./rel/x.db") == "./rel/x.db"
    assert store_path("sqlite:rel/x.db") == "rel/x.db"
    assert store_path("sqlite:///../up.db") == "../up.db"
    assert store_path("sqlite:///:memory:") == ":memory:"
    assert store_path("file:data/runs?fsync=0") == "data/runs"
    assert os.path.isabs(store_path("file:///srv/runs"))
