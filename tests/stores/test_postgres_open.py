"""Opening a PostgreSQL store that cannot be reached: the error names the reason (a missing
database, a refused connection), not only the pool's "initialization incomplete"; a
malformed DSN fails at once instead of waiting out the connect timeout."""

from __future__ import annotations

import time

import pytest

from agent_runtime.durable import PostgresDurableRunStore, open_store
from agent_runtime.errors import StoreUnavailableError


def _base(pg_dsn: str) -> str:
    return pg_dsn.split("?", 1)[0].rsplit("/", 1)[0]


async def test_malformed_dsn_fails_at_once_naming_the_option(pg_dsn: str) -> None:
    url = _base(pg_dsn) + "/test?no_such_option=1"
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="no_such_option"):
        await PostgresDurableRunStore.from_dsn(url, connect_timeout_s=8)
    with pytest.raises(StoreUnavailableError, match="no_such_option"):
        await open_store(url)
    assert time.monotonic() - t0 < 4


async def test_missing_database_is_named(pg_dsn: str) -> None:
    url = _base(pg_dsn) + "/no_such_database_here"
    with pytest.raises(StoreUnavailableError, match='"no_such_database_here" does not exist'):
        await PostgresDurableRunStore.from_dsn(url, connect_timeout_s=1)


async def test_unreachable_server_waits_for_the_timeout_and_says_why(pg_dsn: str) -> None:
    url = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="refused"):
        await PostgresDurableRunStore.from_dsn(url, connect_timeout_s=1)
    assert time.monotonic() - t0 < 5
