"""Durable-turn tests run on a SQLite file and on PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.durable import DurableRunStore, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL `open_store` accepts, so child processes can open the same store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'turns.db'}"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[DurableRunStore]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()
