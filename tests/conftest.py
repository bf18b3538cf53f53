"""Shared fixtures: a real PostgreSQL schema per test, and the CI rule that a missing
service fails the run instead of skipping."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import pytest

PG_BASE_DSN = os.environ.get("AGENT_RUNTIME_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip locally when a dependency is missing; fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required test dependency missing under CI: {why}")
    pytest.skip(why)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped after the test."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the postgres extra is installed by make test
        require(False, "psycopg is not installed")
        raise
    schema = f"t_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        require(False, f"PostgreSQL at {PG_BASE_DSN} is not reachable: {exc}")
    sep = "&" if "?" in PG_BASE_DSN else "?"
    yield f"{PG_BASE_DSN}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(PG_BASE_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
