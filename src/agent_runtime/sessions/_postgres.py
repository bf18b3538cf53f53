"""`PostgresRuntimeSessionStore`: sessions and their events in PostgreSQL (psycopg 3 pool).

Built from a DSN (the store owns a pool, opened on first use) or from your open
`AsyncConnectionPool` (borrowed: `close()` leaves it open). The schema is migrated on first use
under an advisory lock, so many workers may start at once. JSON is stored as text, byte for
byte what the library encoded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .._pg import open_pool
from ..durable._migrations import check_applied
from ..errors import ConfigurationError, StoreUnavailableError, ValidationError
from ..types import RuntimeSession, RuntimeStreamEvent
from ._checks import (
    check_event,
    check_id,
    check_session,
    decode_event,
    decode_session,
    encode_event,
    encode_session,
)
from ._migrations import SCHEMA_INFO_TABLE
from ._schema import POSTGRES_MIGRATIONS

__all__ = ["PostgresRuntimeSessionStore"]

# advisory lock namespace of the session schema's migrations ("BSS"); the schema name hashes
# the second key, so stores in different schemas of one database do not wait on each other
_MIGRATION_LOCK = 0x42_53_53
_PUT = (
    "INSERT INTO backend_sessions (session_id, backend, status, updated_at, record) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session_id) DO UPDATE SET "
    "backend = excluded.backend, status = excluded.status, updated_at = excluded.updated_at, "
    "record = excluded.record"
)
_APPEND = (
    "INSERT INTO backend_session_events (session_id, type, event, created_at_ms) "
    "VALUES (%s, %s, %s, %s)"
)

Conn = Any  # psycopg.AsyncConnection[tuple[Any, ...]]


def _driver() -> tuple[Any, Any, tuple[type[BaseException], ...]]:
    """(psycopg, AsyncConnectionPool, the errors that mean "unavailable")."""
    try:
        import psycopg
        from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
    except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
        raise ConfigurationError(
            "PostgresRuntimeSessionStore needs psycopg and psycopg-pool: "
            "pip install 'durable-agent-runtime[postgres]'"
        ) from exc
    unavailable = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, PoolClosed)
    return psycopg, AsyncConnectionPool, unavailable


class PostgresRuntimeSessionStore:
    """An async `RuntimeSessionEventLog` in PostgreSQL, shared by any number of workers;
    `get` and `list_events` return equal copies of what was stored."""

    def __init__(
        self,
        dsn_or_pool: Any,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        psycopg, pool_class, self._unavailable = _driver()
        self._db_error: type[BaseException] = psycopg.Error
        if isinstance(dsn_or_pool, str):
            if not dsn_or_pool:
                raise ValidationError("PostgresRuntimeSessionStore: dsn must not be empty")
            if type(min_size) is not int or type(max_size) is not int:
                raise ValidationError("PostgresRuntimeSessionStore: pool sizes must be ints")
            if not 0 < min_size <= max_size:
                raise ValidationError("PostgresRuntimeSessionStore: need 0 < min_size <= max_size")
            self._dsn: str | None = dsn_or_pool
            self._pool: Any = None
        elif isinstance(dsn_or_pool, pool_class):
            self._dsn = None
            self._pool = dsn_or_pool
        else:
            raise ValidationError(
                "PostgresRuntimeSessionStore needs a DSN string or a psycopg_pool "
                "AsyncConnectionPool"
            )
        if type(connect_timeout_s) not in (int, float) or not connect_timeout_s > 0:
            raise ValidationError("PostgresRuntimeSessionStore: connect_timeout_s must be > 0")
        self._pool_class = pool_class
        self._sizes = (min_size, max_size)
        self.connect_timeout_s = float(connect_timeout_s)
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def owns_pool(self) -> bool:
        """Whether `close()` closes the pool (the store built it from a DSN)."""
        return self._dsn is not None

    async def _ensure(self) -> Any:
        """The pool, opened and migrated (once; a failure is retried by the next call)."""
        if self._ready:
            return self._pool
        if self._closed:
            raise StoreUnavailableError("PostgreSQL session store is closed")
        async with self._lock:
            if self._ready:
                return self._pool
            try:
                if self._dsn is not None and self._pool is None:
                    self._pool = await open_pool(
                        self._dsn,
                        name="agent-runtime-sessions",
                        min_size=self._sizes[0],
                        max_size=self._sizes[1],
                        connect_timeout_s=self.connect_timeout_s,
                    )
                await self._migrate(self._pool)
            except (*self._unavailable, self._db_error) as exc:
                if self._dsn is not None and self._pool is not None:  # a fresh pool next time
                    pool, self._pool = self._pool, None
                    await pool.close()
                raise StoreUnavailableError(f"cannot open PostgreSQL session store: {exc}") from exc
            self._ready = True
            return self._pool

    async def _migrate(self, pool: Any) -> None:
        async with pool.connection(timeout=self.connect_timeout_s) as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                (_MIGRATION_LOCK,),
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_INFO_TABLE} ("
                "version integer PRIMARY KEY, description text NOT NULL, "
                "checksum text NOT NULL, applied_at_ms bigint NOT NULL)"
            )
            cur = await conn.execute(f"SELECT version, checksum FROM {SCHEMA_INFO_TABLE}")
            applied = {int(v): str(c) for v, c in await cur.fetchall()}
            for m in check_applied(POSTGRES_MIGRATIONS, applied, "PostgreSQL session store"):
                await conn.execute(m.sql.encode())
                await conn.execute(
                    f"INSERT INTO {SCHEMA_INFO_TABLE} VALUES (%s, %s, %s, %s)",
                    (m.version, m.description, m.checksum, time.time_ns() // 1_000_000),
                )

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        """A pooled connection; a lost connection or an exhausted pool surfaces as
        `StoreUnavailableError` (the broken connection is discarded by the pool)."""
        pool = await self._ensure()
        try:
            async with pool.connection(timeout=self.connect_timeout_s) as conn:
                yield conn
        except self._unavailable as exc:
            raise StoreUnavailableError(f"PostgreSQL session store unavailable: {exc}") from exc

    async def schema_version(self) -> int:
        """The highest session migration applied (migrating first when needed)."""
        async with self._conn() as conn:
            cur = await conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_INFO_TABLE}")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def get(self, session_id: str) -> RuntimeSession | None:
        """A copy of the session stored under `session_id`, or None."""
        check_id(session_id, "PostgresRuntimeSessionStore.get", sql=True)
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT record FROM backend_sessions WHERE session_id = %s", (session_id,)
            )
            row = await cur.fetchone()
        return None if row is None else decode_session(row[0])

    async def put(self, session: RuntimeSession) -> None:
        """Store `session` under `session.id`, replacing the previous one."""
        check_session(session, "PostgresRuntimeSessionStore.put")
        check_id(session.id, "PostgresRuntimeSessionStore.put", sql=True)
        record = encode_session(session)
        params = (session.id, session.backend, session.status, session.updated_at, record)
        async with self._conn() as conn:
            await conn.execute(_PUT, params)

    async def append_event(self, session_id: str, event: RuntimeStreamEvent) -> None:
        """Append `event` (as its wire JSON) to the session's log."""
        check_id(session_id, "PostgresRuntimeSessionStore.append_event", sql=True)
        check_event(event, "PostgresRuntimeSessionStore.append_event")
        params = (session_id, event.TYPE, encode_event(event), time.time_ns() // 1_000_000)
        async with self._conn() as conn:
            await conn.execute(_APPEND, params)

    async def list_events(self, session_id: str) -> list[RuntimeStreamEvent]:
        """The session's events in append order (empty when unknown)."""
        check_id(session_id, "PostgresRuntimeSessionStore.list_events", sql=True)
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT event FROM backend_session_events WHERE session_id = %s ORDER BY id",
                (session_id,),
            )
            rows = await cur.fetchall()
        return [decode_event(text) for (text,) in rows]

    async def close(self) -> None:
        """Release the connections (an owned pool is closed; a borrowed one is left open)."""
        self._closed = True
        self._ready = False
        if self._dsn is not None and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
