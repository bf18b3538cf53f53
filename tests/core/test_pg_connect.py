"""Every PostgreSQL store opens through `_pg.open_pool` against the real server: what no retry
can fix (a missing database, a missing role, a role that may not log in, a malformed DSN) fails
at once, without a retry notice or the pool's warnings; a refused connection is retried for the
connect timeout with one notice, then fails with one message; a server that comes up while we
wait is used."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from agent_runtime._pg import describe_dsn, is_permanent, reason
from agent_runtime.durable import PostgresDurableRunStore
from agent_runtime.errors import StoreUnavailableError
from agent_runtime.history import PostgresConversationHistory
from agent_runtime.ledger import PostgresRuntimeRunPersistence
from agent_runtime.sessions import PostgresRuntimeSessionStore
from tests.conftest import PG_BASE_DSN

Opener = Callable[[str, float], Awaitable[None]]


async def _durable(dsn: str, timeout: float) -> None:
    store = await PostgresDurableRunStore.from_dsn(dsn, connect_timeout_s=timeout)
    await store.close()


async def _sessions(dsn: str, timeout: float) -> None:
    store = PostgresRuntimeSessionStore(dsn, connect_timeout_s=timeout)
    try:
        await store.get("s-1")
    finally:
        await store.close()


async def _history(dsn: str, timeout: float) -> None:
    store = PostgresConversationHistory(dsn, connect_timeout_s=timeout)
    try:
        await store.get_or_create("s-1", tenant_id="t")
    finally:
        await store.close()


async def _ledger(dsn: str, timeout: float) -> None:
    store = PostgresRuntimeRunPersistence(dsn, connect_timeout_s=timeout)
    try:
        await store.list()
    finally:
        await store.close()


OPENERS = {"durable": _durable, "sessions": _sessions, "history": _history, "ledger": _ledger}


def _with(
    dsn: str, *, user: str | None = None, db: str | None = None, port: int | None = None
) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user or parts.username}@{parts.hostname}:{port or parts.port or 5432}"
    path = f"/{db}" if db else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nologin_role(pg_dsn: str) -> Iterator[str]:
    """A real role that exists but may not log in (the server refuses it at every attempt)."""
    role = f"nologin_{secrets.token_hex(4)}"
    with psycopg.connect(PG_BASE_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
    yield role
    with psycopg.connect(PG_BASE_DSN, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _warnings(caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"agent_runtime.postgres": [], "psycopg.pool": []}
    for rec in caplog.records:
        if rec.levelno >= logging.WARNING and rec.name in found:
            found[rec.name].append(rec.getMessage())
    return found


@pytest.fixture(params=sorted(OPENERS))
def opener(request: pytest.FixtureRequest) -> Opener:
    return OPENERS[request.param]


@pytest.mark.parametrize("case", ["database", "role", "nologin", "malformed"])
async def test_what_no_retry_fixes_fails_at_once_and_quietly(
    opener: Opener,
    case: str,
    pg_dsn: str,
    nologin_role: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dsn, expected = {
        "database": (
            _with(pg_dsn, db="no_such_db_here"),
            'database "no_such_db_here" does not exist',
        ),
        "role": (
            _with(pg_dsn, user="no_such_role_here"),
            'role "no_such_role_here" does not exist',
        ),
        "nologin": (_with(pg_dsn, user=nologin_role), "is not permitted to log in"),
        "malformed": (pg_dsn + "&no_such_option=1", "no_such_option"),
    }[case]
    caplog.set_level(logging.WARNING)
    # a timeout far beyond the test's budget: a retry would show up as a hung test
    with pytest.raises(StoreUnavailableError) as info:
        await opener(dsn, 60.0)
    assert expected in info.value.message
    assert "\n" not in info.value.message
    assert _warnings(caplog) == {"agent_runtime.postgres": [], "psycopg.pool": []}


async def test_a_refused_connection_is_retried_with_one_notice_then_one_error(
    opener: Opener, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    caplog.set_level(logging.WARNING)
    with pytest.raises(StoreUnavailableError) as info:
        await opener(_with(pg_dsn, port=port), 0.5)
    assert info.value.message == (
        f"cannot connect to PostgreSQL at postgres@127.0.0.1:{port}/test: "
        "Connection refused (gave up after 0.5 s)"
    )
    warnings = _warnings(caplog)
    assert warnings["psycopg.pool"] == []
    assert warnings["agent_runtime.postgres"] == [
        f"PostgreSQL at postgres@127.0.0.1:{port}/test: Connection refused; "
        "retrying for up to 0.5 s"
    ]


async def test_a_server_that_comes_up_during_the_wait_is_used(opener: Opener, pg_dsn: str) -> None:
    """The port refuses until the retry notice is logged, then forwards to the real server."""
    port = _closed_port()
    real = urlsplit(pg_dsn)
    notice = asyncio.Event()
    loop = asyncio.get_running_loop()

    class OnNotice(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            loop.call_soon_threadsafe(notice.set)

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

    async def bring_up() -> asyncio.Server:
        await notice.wait()
        return await asyncio.start_server(forward, "127.0.0.1", port)

    handler = OnNotice(logging.WARNING)
    logger = logging.getLogger("agent_runtime.postgres")
    logger.addHandler(handler)
    try:
        up = asyncio.create_task(bring_up())
        await opener(_with(pg_dsn, port=port), 60.0)
        server = await up
        server.close()
    finally:
        logger.removeHandler(handler)


def test_the_permanent_rule_on_libpq_messages_a_trust_server_cannot_produce() -> None:
    """Password refusals (our test server trusts local connections) and the transient kinds."""

    def err(text: str) -> Any:
        return psycopg.OperationalError(text)

    at = 'connection failed: connection to server at "db", port 5432 failed: '
    for text in (
        'FATAL:  password authentication failed for user "app"',
        'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "app", database "x"',
        "fe_sendauth: no password supplied",
        'FATAL:  permission denied for database "x"',
    ):
        assert is_permanent(err(at + text)), text
    for text in (
        "Connection refused\n\tIs the server running on that host?",
        "FATAL:  the database system is starting up",
        "FATAL:  sorry, too many clients already",
        "server closed the connection unexpectedly",
    ):
        assert not is_permanent(err(at + text)), text
    assert is_permanent(psycopg.ProgrammingError('invalid URI query parameter: "x"'))
    assert reason(err(at + 'FATAL:  role "x" does not exist')) == 'role "x" does not exist'
    assert reason(err(at + "Connection refused\n\tIs the server running?")) == "Connection refused"


def test_the_dsn_is_described_without_its_password() -> None:
    assert (
        describe_dsn("postgresql://app:s3cret@db.internal:6432/runs") == "app@db.internal:6432/runs"
    )
    assert "s3cret" not in describe_dsn("host=db user=app password=s3cret dbname=runs")


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "5"])
async def test_a_bad_connect_timeout_is_a_configuration_error(pg_dsn: str, timeout: Any) -> None:
    from agent_runtime.durable import open_store
    from agent_runtime.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="connect timeout"):
        await open_store(pg_dsn, connect_timeout_s=timeout)


async def test_open_store_passes_its_connect_timeout(pg_dsn: str) -> None:
    from agent_runtime.durable import open_store

    port = _closed_port()
    with pytest.raises(StoreUnavailableError, match=r"gave up after 0\.3 s"):
        await open_store(_with(pg_dsn, port=port), connect_timeout_s=0.3)
