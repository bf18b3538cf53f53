"""Store factories for the durable conformance suite: every store runs every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.durable import (
    DurableRunStore,
    InMemoryDurableRunStore,
    SQLiteDurableRunStore,
)

StoreFactory = Callable[[pytest.FixtureRequest, Path], Awaitable[Any]]


async def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> DurableRunStore:
    return InMemoryDurableRunStore()


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> DurableRunStore:
    return SQLiteDurableRunStore(tmp_path / "runs.db")


async def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> DurableRunStore:
    from agent_runtime.durable._postgres import PostgresDurableRunStore

    dsn = request.getfixturevalue("pg_dsn")
    return await PostgresDurableRunStore.from_dsn(dsn, min_size=1, max_size=4)


async def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> DurableRunStore:
    from agent_runtime.durable._filesystem import FileSystemDurableRunStore

    return FileSystemDurableRunStore(tmp_path / "runs")


# name -> async factory(request, tmp_path); a store joins the suite by adding one line here.
STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "filesystem": _filesystem,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DurableRunStore]:
    s = await STORE_FACTORIES[request.param](request, tmp_path)
    try:
        yield s
    finally:
        await s.close()
