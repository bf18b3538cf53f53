"""`PostgresConversationHistory`: conversations in PostgreSQL for many workers (psycopg 3 +
pool; tables `runtime_sessions` and `runtime_session_messages`).

Writes lock the session row (`SELECT ... FOR UPDATE`) before the ownership check, so two
workers appending to one session serialize and message positions never collide. JSON is
stored as text (not jsonb) so every string, including NUL characters, round-trips exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from .._pg import open_pool
from ..errors import InvalidArgumentError, StoreUnavailableError
from ..jsoncanon import loads_json
from ._records import (
    Conversation,
    advancing,
    check_limit,
    check_owner,
    check_owner_args,
    encode_messages,
    encode_metadata,
    encode_patch,
    merge_metadata,
    ms_to_dt,
    now_ms,
)

__all__ = ["PostgresConversationHistory"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runtime_sessions (
    session_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runtime_sessions_owner
    ON runtime_sessions (tenant_id, user_id, updated_at_ms);
CREATE TABLE IF NOT EXISTS runtime_session_messages (
    session_id TEXT NOT NULL REFERENCES runtime_sessions (session_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    message TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"""
_COLUMNS = "session_id, tenant_id, user_id, created_at_ms, updated_at_ms, metadata, message_count"
# serializes concurrent first-time schema creation across processes
_SCHEMA_LOCK_KEY = 0x72756E74696D65  # "runtime"

Row = tuple[Any, ...]
Conn = Any  # psycopg.AsyncConnection[tuple[Any, ...]]


class PostgresConversationHistory:
    """A `ConversationHistoryStore` in PostgreSQL; the pool opens and the schema is created on
    first use (idempotently, under an advisory lock).

    With `pool` (an open psycopg `AsyncConnectionPool`, e.g. a durable store's `pool`) it runs
    on that pool instead of opening its own, and `close` leaves it open for its owner."""

    def __init__(
        self,
        dsn: str,
        *,
        pool: Any = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout_s: float = 10.0,
    ) -> None:
        try:
            import psycopg_pool
        except ImportError as exc:  # pragma: no cover - the postgres extra is not installed
            raise StoreUnavailableError(
                "PostgresConversationHistory needs durable-agent-runtime[postgres]"
            ) from exc
        if pool is not None and not isinstance(pool, psycopg_pool.AsyncConnectionPool):
            raise InvalidArgumentError("must be a psycopg_pool.AsyncConnectionPool", path="pool")
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s
        self._sizes = (min_size, max_size)
        self._pool: Any = pool  # else opened by the first call (open_pool)
        self._owns_pool = pool is None
        self._ready = False
        self._lock = asyncio.Lock()

    async def _ensure(self) -> Any:
        if self._ready:
            return self._pool
        import psycopg

        async with self._lock:
            if not self._ready:
                try:
                    if self._pool is None:  # fails fast, or retries a server not up yet
                        self._pool = await open_pool(
                            self.dsn,
                            name="agent-runtime-history",
                            min_size=self._sizes[0],
                            max_size=self._sizes[1],
                            connect_timeout_s=self.connect_timeout_s,
                        )
                    async with self._pool.connection() as conn, conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                        await conn.execute(_SCHEMA)
                except (psycopg.Error, TimeoutError) as exc:
                    raise StoreUnavailableError(
                        f"cannot open PostgreSQL conversation history: {exc}"
                    ) from exc
                self._ready = True
        return self._pool

    @asynccontextmanager
    async def _conn(self, *, transaction: bool = True) -> AsyncIterator[Conn]:
        """A pooled connection (in a transaction unless told otherwise); a lost connection or
        an exhausted pool surfaces as `StoreUnavailableError` (the transaction rolled back,
        unless the connection dropped during COMMIT itself)."""
        import psycopg

        pool = await self._ensure()
        try:
            async with pool.connection() as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailableError(
                f"PostgreSQL conversation history unavailable: {exc}"
            ) from exc

    @staticmethod
    async def _owned(
        conn: Conn, session_id: str, tenant_id: str, user_id: str | None, *, lock: bool = True
    ) -> Row | None:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM runtime_sessions WHERE session_id = %s"
            + (" FOR UPDATE" if lock else ""),
            (session_id,),
        )
        row: Row | None = await cur.fetchone()
        if row is not None:
            check_owner(session_id, row[1], row[2], tenant_id, user_id)
        return row

    @staticmethod
    async def _insert(
        conn: Conn, session_id: str, tenant_id: str, user_id: str | None, meta: str
    ) -> Row | None:
        """Insert unless another worker just did; returns the new row or None."""
        now = now_ms()
        cur = await conn.execute(
            f"INSERT INTO runtime_sessions ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, 0) "
            f"ON CONFLICT (session_id) DO NOTHING RETURNING {_COLUMNS}",
            (session_id, tenant_id, user_id, now, now, meta),
        )
        row: Row | None = await cur.fetchone()
        return row

    async def _claim(
        self, conn: Conn, session_id: str, tenant_id: str, user_id: str | None, meta: str
    ) -> Row:
        """The locked, owner-checked row, created when missing."""
        row = await self._owned(conn, session_id, tenant_id, user_id)
        if row is None:
            row = await self._insert(conn, session_id, tenant_id, user_id, meta)
            if row is None:  # lost a creation race: the winner's row decides ownership
                row = await self._owned(conn, session_id, tenant_id, user_id)
        assert row is not None
        return row

    @staticmethod
    async def _record(conn: Conn, row: Row, *, with_messages: bool = True) -> Conversation:
        messages: tuple[dict[str, Any], ...] = ()
        if with_messages:
            cur = await conn.execute(
                "SELECT message FROM runtime_session_messages WHERE session_id = %s ORDER BY seq",
                (row[0],),
            )
            messages = tuple(loads_json(m) for (m,) in await cur.fetchall())
        return Conversation(
            session_id=row[0],
            tenant_id=row[1],
            user_id=row[2],
            created_at=ms_to_dt(row[3]),
            updated_at=ms_to_dt(row[4]),
            metadata=loads_json(row[5]),
            messages=messages,
            message_count=row[6],
        )

    async def get_or_create(
        self,
        session_id: str,
        *,
        tenant_id: str,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        meta = encode_metadata(metadata)
        async with self._conn() as conn:
            row = await self._owned(conn, session_id, tenant_id, user_id, lock=False)
            if row is None:
                row = await self._claim(conn, session_id, tenant_id, user_id, meta)
            return await self._record(conn, row)

    async def load(
        self, session_id: str, *, tenant_id: str, user_id: str | None = None
    ) -> Conversation | None:
        check_owner_args(session_id, tenant_id, user_id)
        async with self._conn() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = await self._owned(conn, session_id, tenant_id, user_id, lock=False)
            return None if row is None else await self._record(conn, row)

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        encoded = encode_messages(messages)
        async with self._conn() as conn:
            row = await self._append(conn, session_id, encoded, tenant_id, user_id)
            return await self._record(conn, row)

    async def add_messages(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> int:
        check_owner_args(session_id, tenant_id, user_id)
        encoded = encode_messages(messages)
        async with self._conn() as conn:
            row = await self._append(conn, session_id, encoded, tenant_id, user_id)
            return int(row[6])

    async def _append(
        self, conn: Conn, session_id: str, encoded: list[str], tenant_id: str, user_id: str | None
    ) -> Row:
        """Append `encoded` in the open transaction; the session's row after."""
        row = await self._claim(conn, session_id, tenant_id, user_id, "{}")
        if encoded:
            count, now = row[6], now_ms()
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO runtime_session_messages VALUES (%s, %s, %s, %s)",
                    [(session_id, count + i, m, now) for i, m in enumerate(encoded)],
                )
            cur2 = await conn.execute(
                "UPDATE runtime_sessions SET message_count = %s, "
                "updated_at_ms = GREATEST(updated_at_ms, %s) WHERE session_id = %s "
                f"RETURNING {_COLUMNS}",
                (count + len(encoded), now, session_id),
            )
            row = await cur2.fetchone()
        return row

    async def advance_metadata(
        self,
        session_id: str,
        *,
        at_least: Mapping[str, int],
        defaults: Mapping[str, Any] | None = None,
        tenant_id: str,
        user_id: str | None = None,
    ) -> None:
        check_owner_args(session_id, tenant_id, user_id)
        change = advancing(at_least, defaults)
        async with self._conn() as conn:
            await self._change_metadata(conn, session_id, tenant_id, user_id, change)

    async def update_metadata(
        self,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
    ) -> Conversation:
        check_owner_args(session_id, tenant_id, user_id)
        patch = encode_patch(metadata)
        async with self._conn() as conn:
            row = await self._change_metadata(
                conn, session_id, tenant_id, user_id, lambda current: merge_metadata(current, patch)
            )
            return await self._record(conn, row)

    async def _change_metadata(
        self,
        conn: Conn,
        session_id: str,
        tenant_id: str,
        user_id: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> Row:
        """In the open transaction: the locked, owner-checked session (created when new) gets
        `change(its metadata)`, unless that is None; its row after."""
        row = await self._claim(conn, session_id, tenant_id, user_id, "{}")
        merged = change(loads_json(row[5]))
        if merged is None:
            return row
        cur = await conn.execute(
            "UPDATE runtime_sessions SET metadata = %s, "
            "updated_at_ms = GREATEST(updated_at_ms, %s) WHERE session_id = %s "
            f"RETURNING {_COLUMNS}",
            (encode_metadata(merged), now_ms(), session_id),
        )
        updated: Row = await cur.fetchone()
        return updated

    async def list_sessions(
        self, *, tenant_id: str, user_id: str | None = None, limit: int = 50
    ) -> list[Conversation]:
        check_owner_args("-", tenant_id, user_id)
        check_limit(limit)
        async with self._conn(transaction=False) as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM runtime_sessions WHERE tenant_id = %s "
                "AND (%s::text IS NULL OR user_id = %s) "
                "ORDER BY updated_at_ms DESC, session_id DESC LIMIT %s",
                (tenant_id, user_id, user_id, limit),
            )
            rows = await cur.fetchall()
            return [await self._record(conn, r, with_messages=False) for r in rows]

    async def delete(self, session_id: str, *, tenant_id: str, user_id: str | None = None) -> bool:
        check_owner_args(session_id, tenant_id, user_id)
        async with self._conn() as conn:
            if await self._owned(conn, session_id, tenant_id, user_id) is None:
                return False
            await conn.execute("DELETE FROM runtime_sessions WHERE session_id = %s", (session_id,))
            return True

    async def close(self) -> None:
        pool, self._ready = self._pool, False
        if self._owns_pool:
            self._pool = None
            if pool is not None:
                await pool.close()
