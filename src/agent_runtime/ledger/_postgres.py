"""`PostgresRuntimeRunPersistence`: ledger rows in PostgreSQL, shared by many workers.

The pool opens and the versioned schema (`_schema.py`) is applied on first use, under an
advisory lock so many processes may start at once. A connection lost between calls is replaced
by the pool (each connection is checked before use); an unreachable server is
`StoreUnavailableError`, and the next call tries again.
"""

from __future__ import annotations

import asyncio
import builtins
from typing import TYPE_CHECKING, Any

from .._pg import open_pool
from ..durable._migrations import check_applied
from ..errors import ConfigurationError, StoreUnavailableError, ValidationError
from ..jsoncanon import dumps_json, loads_json
from ._memory import check_id, check_list_args, check_row
from ._records import RuntimeRunRow
from ._schema import POSTGRES_LEDGER_MIGRATIONS, SCHEMA_TABLE

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresRuntimeRunPersistence"]

_MIGRATION_LOCK = 0x52_52_4C  # "RRL": the ledger's advisory lock namespace


def _psycopg_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError as exc:  # pragma: no cover - the extra is installed in development
        raise ConfigurationError(
            "PostgresRuntimeRunPersistence needs psycopg and psycopg-pool: "
            "pip install 'durable-agent-runtime[postgres]'"
        ) from exc
    return (psycopg.Error, PoolTimeout)


class PostgresRuntimeRunPersistence:
    """Ledger rows in PostgreSQL: `upsert(row)`, `get(id)`, `list(...)`, `close()`."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ValidationError("PostgresRuntimeRunPersistence: dsn must be a non-empty string")
        if type(min_size) is not int or type(max_size) is not int or not 0 < min_size <= max_size:
            raise ValidationError("PostgresRuntimeRunPersistence: need 0 < min_size <= max_size")
        if type(connect_timeout_s) not in (int, float) or not connect_timeout_s > 0:
            raise ValidationError("PostgresRuntimeRunPersistence: connect_timeout_s must be > 0")
        self._errors = _psycopg_errors()
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = float(connect_timeout_s)
        self._pool: AsyncConnectionPool | None = None
        self._opening: asyncio.Lock | None = None

    async def _ready(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._open()
        return self._pool

    async def _open(self) -> AsyncConnectionPool:
        from psycopg_pool import AsyncConnectionPool

        pool = await open_pool(  # fails fast, or retries a server not up yet
            self._dsn,
            name="agent-runtime-ledger",
            min_size=self._min_size,
            max_size=self._max_size,
            connect_timeout_s=self._timeout,
            check=AsyncConnectionPool.check_connection,
        )
        try:
            await self._migrate(pool)
        except self._errors as exc:
            await pool.close()
            raise StoreUnavailableError(f"run ledger: cannot use PostgreSQL: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        return pool

    @staticmethod
    async def _migrate(pool: AsyncConnectionPool) -> None:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                (_MIGRATION_LOCK,),
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version integer PRIMARY KEY, "
                "description text NOT NULL, checksum text NOT NULL, applied_at_ms bigint NOT NULL)"
            )
            cur = await conn.execute(f"SELECT version, checksum FROM {SCHEMA_TABLE}")
            applied = {int(v): str(c) for v, c in await cur.fetchall()}
            for m in check_applied(POSTGRES_LEDGER_MIGRATIONS, applied, "PostgreSQL run ledger"):
                await conn.execute(m.sql.encode())
                await conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} VALUES "
                    "(%s, %s, %s, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                    (m.version, m.description, m.checksum),
                )

    async def _query(self, sql: str, args: tuple[Any, ...]) -> builtins.list[tuple[Any, ...]]:
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql, args)
                return await cur.fetchall() if cur.description is not None else []
        except self._errors as exc:
            raise StoreUnavailableError(f"run ledger: PostgreSQL failed: {exc}") from exc

    async def schema_version(self) -> int:
        """The highest ledger migration applied to the database."""
        rows = await self._query(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}", ())
        return int(rows[0][0])

    async def upsert(self, row: RuntimeRunRow) -> None:
        """Insert or replace `row` by its id."""
        check_row(row)
        await self._query(
            "INSERT INTO runtime_run_ledger VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, "
            "task_id = excluded.task_id, session_id = excluded.session_id, "
            "status = excluded.status, started_at = excluded.started_at, "
            "completed_at = excluded.completed_at, row = excluded.row",
            (
                row.id,
                row.workspace_id,
                row.task_id,
                row.session_id,
                row.status,
                row.started_at,
                row.completed_at,
                dumps_json(row.to_dict(), root="row").decode(),
            ),
        )

    async def get(self, id: str) -> RuntimeRunRow | None:
        """The row with this id, or None."""
        rows = await self._query(
            "SELECT row FROM runtime_run_ledger WHERE id = %s", (check_id(id),)
        )
        return RuntimeRunRow.from_dict(loads_json(rows[0][0])) if rows else None

    async def list(
        self, *, workspace_id: str | None = None, limit: int = 100
    ) -> builtins.list[RuntimeRunRow]:
        """Rows (of one workspace when given), newest start first, at most `limit`."""
        check_list_args(workspace_id, limit)
        rows = await self._query(
            "SELECT row FROM runtime_run_ledger WHERE (%s::text IS NULL OR workspace_id = %s) "
            "ORDER BY started_at DESC, id DESC LIMIT %s",
            (workspace_id, workspace_id, limit),
        )
        return [RuntimeRunRow.from_dict(loads_json(r[0])) for r in rows]

    async def close(self) -> None:
        """Close the pool (a later call opens a new one)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
