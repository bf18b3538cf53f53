"""PostgreSQL plumbing shared by every PostgreSQL-backed store: one way to open a pool that
fails fast on what no retry can fix and waits, saying so once, for a server that is not up yet.

`open_pool` first makes one direct connection: the pool itself only logs why it cannot
connect (one warning per attempt) and then times out with "initialization incomplete". A
refusal by the server (wrong password, no such role or database, no pg_hba.conf entry) or a
malformed DSN raises `StoreUnavailableError` at once; a refused or timed-out connection is
retried until `connect_timeout_s`, with one warning on the `agent_runtime.postgres` logger.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, StoreUnavailableError

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["describe_dsn", "is_permanent", "open_pool", "reason", "wait_for_server"]

log = logging.getLogger("agent_runtime.postgres")

# Server refusals and client-side mistakes that the same DSN can never get past. libpq reports
# connection failures as text only (no SQLSTATE), so they are recognised by their wording.
_PERMANENT = re.compile(
    r"authentication failed|does not exist|no pg_hba\.conf entry|permission denied"
    r"|not permitted to log in|invalid (?:connection option|URI|integer value|\w+ value)"
    r"|missing \"=\"|unterminated quoted string|server does not support SSL"
    r"|certificate|password is required|no password supplied",
    re.IGNORECASE,
)
_BACKOFF_S = (0.05, 0.1, 0.2, 0.4, 0.5)


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - the pool is needed next; fail here with the hint
    except ImportError as exc:  # pragma: no cover - the postgres extra is installed in dev
        raise ConfigurationError(
            "PostgreSQL stores need psycopg and psycopg-pool: "
            "pip install 'durable-agent-runtime[postgres]'"
        ) from exc
    return psycopg


def describe_dsn(dsn: str) -> str:
    """`user@host:port/dbname` of a DSN, never its password (for messages and logs)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:  # a malformed DSN: the connect attempt says what is wrong with it
        return "the given DSN"
    user = f"{info['user']}@" if info.get("user") else ""
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    port = f":{info['port']}" if info.get("port") else ""
    db = f"/{info['dbname']}" if info.get("dbname") else ""
    return f"{user}{host}{port}{db}"


def reason(exc: BaseException) -> str:
    """The part of a libpq error that says why, on one line: `database "x" does not exist`,
    `Connection refused`."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    why = first.rsplit(" failed: ", 1)[-1]
    why = re.sub(r"^(?:connection (?:failed|is bad): )", "", why)
    return re.sub(r"^FATAL:\s+", "", why).strip()


def is_permanent(exc: BaseException) -> bool:
    """Whether connecting again with the same DSN cannot succeed (authentication, a missing
    role or database, a malformed DSN), as opposed to a server that is down or busy."""
    psycopg = _driver()
    if isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError):
        return True  # ProgrammingError and friends: the DSN itself is wrong
    return bool(_PERMANENT.search(str(exc)))


async def wait_for_server(dsn: str, connect_timeout_s: float) -> None:
    """Connect once directly, retrying a server that is not reachable yet until
    `connect_timeout_s`; `StoreUnavailableError` at once for a permanent refusal, or once the
    time is up. One warning is logged when the first attempt fails and retries begin."""
    psycopg = _driver()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout_s
    where = describe_dsn(dsn)
    attempt = 0
    while True:
        remaining = deadline - loop.time()
        try:
            async with asyncio.timeout(max(remaining, 0.05)):
                conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=2)
        except TimeoutError as exc:
            last: BaseException = exc
            why = f"no answer within {connect_timeout_s:g} s"
        except psycopg.Error as exc:
            if is_permanent(exc):
                raise StoreUnavailableError(
                    f"cannot connect to PostgreSQL at {where}: {reason(exc)}"
                ) from exc
            last, why = exc, reason(exc)
        else:
            await conn.close()
            return
        if attempt == 0 and loop.time() < deadline:
            log.warning(
                "PostgreSQL at %s: %s; retrying for up to %g s", where, why, connect_timeout_s
            )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {where}: {why} "
                f"(gave up after {connect_timeout_s:g} s)"
            ) from last
        await asyncio.sleep(min(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)], remaining))
        attempt += 1


async def open_pool(
    dsn: str,
    *,
    name: str,
    min_size: int,
    max_size: int,
    connect_timeout_s: float,
    **options: Any,
) -> AsyncConnectionPool:
    """An open `AsyncConnectionPool` of autocommit connections on `dsn`, after
    `wait_for_server`; `options` go to the pool (`check=`, `reconnect_timeout=`, ...).
    Raises `StoreUnavailableError` (the pool closed) when it cannot be opened."""
    if (
        isinstance(connect_timeout_s, bool)
        or not isinstance(connect_timeout_s, int | float)
        or not 0 < connect_timeout_s < float("inf")
    ):
        raise ConfigurationError(
            f"connect timeout must be a positive number of seconds, got {connect_timeout_s!r}"
        )
    _driver()
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    await wait_for_server(dsn, connect_timeout_s)
    pool: AsyncConnectionPool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        timeout=connect_timeout_s,
        name=name,
        **options,
    )
    try:
        await pool.open(wait=True, timeout=connect_timeout_s)
    except PoolTimeout as exc:  # the server answered the probe, then stopped answering
        await pool.close()
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {min_size} pool "
            f"connection(s) not open after {connect_timeout_s:g} s"
        ) from exc
    except BaseException:
        await pool.close()
        raise
    return pool
