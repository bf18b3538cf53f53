"""`PostgresDurableRunStore`: durable runs in PostgreSQL, for many workers on many hosts.

psycopg 3 (async) over a psycopg-pool connection pool, autocommit: every write is one
statement, hence one transaction and one round trip. A start or resume is one call of
`durable_claim_run` (create or claim, and the completed steps); a step commit is one call of
`durable_write_step`, which locks the run row, checks the fence (lease holder) and upserts
the step; a batch of stream appends is one call of `durable_stream_append`, which serializes
appenders of a run on its head row and answers a batch of new events with one row.

A lost connection (server restart, failover) is retried until `reconnect_timeout_s`: the pool
replaces broken connections. A retried write that had in fact committed is recognised (same
step result already stored under our lease, run already ended with our outcome) and returned
as a success, so a restart loses no step and runs none twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ..errors import (
    ConfigurationError,
    DurableRunNotFoundError,
    DurableValueError,
    StoreUnavailableError,
)
from ..jsoncanon import loads_json
from ._base import StoreBase, decode_all
from ._manifest import DurableRunManifest
from ._migrations import check_applied
from ._postgres_schema import POSTGRES_MIGRATIONS
from ._records import (
    AppendStreamResult,
    EmitEventResult,
    EventRecord,
    RunHandle,
    RunRecord,
    RunStatus,
    StartOrResumeResult,
    StepRecord,
    StreamEventRecord,
    accepted_batch,
    appended,
    ms_dt,
    new_run,
    new_stream_event,
)
from ._restart import restart_statements
from ._retention import postgres_prune, postgres_usage
from ._sql import POSTGRES, RUN_COLUMNS, completed_steps, run_record, step_record, stream_records
from ._steps import StepWrite
from ._validate import (
    diverged,
    lease_held,
    lease_lost,
    mismatch,
    not_found,
    step_completed,
    step_not_begun,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresDurableRunStore"]

log = logging.getLogger("agent_runtime.durable.postgres")

T = TypeVar("T")
Conn: TypeAlias = "psycopg.AsyncConnection[Any]"


def _retryable() -> tuple[type[BaseException], ...]:
    """The exceptions meaning "connection lost, try again": imported lazily, so the package
    imports without the `postgres` extra."""
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError as exc:  # pragma: no cover - the extra is installed in development
        raise ConfigurationError(
            "PostgresDurableRunStore needs psycopg and psycopg-pool: "
            "pip install 'durable-agent-runtime[postgres]'"
        ) from exc
    return (psycopg.OperationalError, PoolTimeout)


# advisory lock namespace of schema migrations (first key), the schema name hashes the second
_MIGRATION_LOCK = 0x44_52_53  # "DRS"

Q = POSTGRES
# one round trip each: claim (rows: the run, then its completed steps from column 11 on), a
# fenced step write, a batched append
_CLAIM = "SELECT * FROM durable_claim_run(%s, %s, %s, %s, %s, %s, %s)"
_CLAIM_STEP_AT = 11
_WRITE_STEP = "SELECT * FROM durable_write_step(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
# the id and payload arrays go in binary (`%b`): the text form quotes and escapes every element
# (about 8 µs an event in psycopg), the binary form is each element's bytes
_APPEND = "SELECT * FROM durable_stream_append(%s, %b, %b)"
_RESTART, _DROP_STEPS, _DROP_EVENTS = restart_statements("%s", "durable_now_ms()")


class PostgresDurableRunStore(StoreBase):
    """A `DurableRunStore` in PostgreSQL (15+), shared by any number of worker processes.

    Build it with `await PostgresDurableRunStore.from_dsn(dsn)` (owns its pool) or
    `await PostgresDurableRunStore.from_pool(pool)` (borrows yours; the pool must hand out
    autocommit connections). Both apply pending migrations unless `migrate=False`.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        owns_pool: bool = False,
        reconnect_timeout_s: float = 30.0,
    ) -> None:
        if reconnect_timeout_s < 0:
            raise DurableValueError("reconnect_timeout_s must be >= 0", path="reconnect_timeout_s")
        self._retryable = _retryable()
        self._pool = pool
        self._owns_pool = owns_pool
        self.reconnect_timeout_s = reconnect_timeout_s
        self.retries = 0
        """Operations retried after a lost connection since the store was opened."""

    @property
    def pool(self) -> AsyncConnectionPool:
        """The connection pool the store runs on (for stores of other records beside it)."""
        return self._pool

    @classmethod
    async def from_dsn(
        cls,
        dsn: str,
        min_size: int = 1,
        max_size: int = 10,
        *,
        migrate: bool = True,
        connect_timeout_s: float = 10.0,
        reconnect_timeout_s: float = 30.0,
    ) -> PostgresDurableRunStore:
        """Open a pool on `dsn` (a `postgresql://` URL or a libpq conninfo string)."""
        if not isinstance(dsn, str) or not dsn:
            raise DurableValueError("dsn must be a non-empty string", path="dsn")
        if type(min_size) is not int or type(max_size) is not int or not 0 < min_size <= max_size:
            raise DurableValueError("need 0 < min_size <= max_size", path="min_size")
        _retryable()  # the driver is installed (ConfigurationError with the hint otherwise)
        from .._pg import open_pool

        # fails at once on what no retry fixes (a missing database, role or password),
        # retries a server that is not up yet for connect_timeout_s, then says why
        pool = await open_pool(
            dsn,
            name="agent-runtime-durable",
            min_size=min_size,
            max_size=max_size,
            connect_timeout_s=connect_timeout_s,
            reconnect_timeout=max(reconnect_timeout_s, 1.0),
        )
        store = cls(pool, owns_pool=True, reconnect_timeout_s=reconnect_timeout_s)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await pool.close()
                raise
        return store

    @classmethod
    async def from_pool(
        cls, pool: AsyncConnectionPool, *, migrate: bool = True, reconnect_timeout_s: float = 30.0
    ) -> PostgresDurableRunStore:
        """Use an existing open pool (autocommit connections); `close()` leaves it open."""
        store = cls(pool, owns_pool=False, reconnect_timeout_s=reconnect_timeout_s)
        if migrate:
            await store.migrate()
        return store

    # -- plumbing ----------------------------------------------------------------------------

    async def _with_conn(self, op: Callable[[Conn, int], Awaitable[T]]) -> T:
        """Run `op(conn, attempt)`; on a lost connection retry with a fresh one until the
        reconnect deadline. `attempt > 0` tells `op` an earlier try may have committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout_s
        attempt = 0
        delay = 0.05
        while True:
            try:
                remaining = max(deadline - loop.time(), 0.5)
                async with self._pool.connection(timeout=remaining) as conn:
                    return await op(conn, attempt)
            except self._retryable as exc:
                if loop.time() >= deadline:
                    raise StoreUnavailableError(f"PostgreSQL store unavailable: {exc}") from exc
                log.warning("PostgreSQL operation failed (%s); retrying", exc)
                attempt += 1
                self.retries += 1
                await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
                delay = min(delay * 2, 1.0)

    async def migrate(self) -> int:
        """Apply pending migrations under an advisory lock (safe from many processes at
        once); return the schema version."""

        async def op(conn: Conn, attempt: int) -> int:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                    (_MIGRATION_LOCK,),
                )
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS durable_schema_info ("
                    "version integer PRIMARY KEY, description text NOT NULL, "
                    "checksum text NOT NULL, applied_at_ms bigint NOT NULL)"
                )
                cur = await conn.execute("SELECT version, checksum FROM durable_schema_info")
                applied = {int(v): str(c) for v, c in await cur.fetchall()}
                for m in check_applied(POSTGRES_MIGRATIONS, applied, "PostgreSQL store"):
                    await conn.execute(m.sql.encode())
                    await conn.execute(
                        "INSERT INTO durable_schema_info VALUES (%s, %s, %s, durable_now_ms())",
                        (m.version, m.description, m.checksum),
                    )
                    applied[m.version] = m.checksum
                return max(applied, default=0)

        return await self._with_conn(op)

    async def schema_version(self) -> int:
        """The highest migration applied to the database (0 before the first)."""

        async def op(conn: Conn, attempt: int) -> int:
            cur = await conn.execute("SELECT to_regclass('durable_schema_info') IS NOT NULL")
            row = await cur.fetchone()
            if not row or not row[0]:
                return 0
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM durable_schema_info")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._with_conn(op)

    async def _fetchone(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async def op(conn: Conn, attempt: int) -> tuple[Any, ...] | None:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

        return await self._with_conn(op)

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async def op(conn: Conn, attempt: int) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

        return await self._with_conn(op)

    # -- runs and leases ---------------------------------------------------------------------

    async def _claim(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int
    ) -> StartOrResumeResult:
        params = (
            run_id,
            manifest.digest,
            manifest.encoded,
            manifest.project_id,
            manifest.scenario_id,
            worker_id,
            lease_ms,
        )
        rows = await self._fetchall(_CLAIM, params)
        head = rows[0]
        code = head[0]
        if code == "mismatch":
            raise mismatch(run_id)
        if code == "held":
            raise lease_held(run_id, head[5], head[6])
        if code == "missing":  # deleted while we looked: the caller may try again
            raise DurableRunNotFoundError(f"run {run_id!r} vanished", run_id=run_id)
        expires = None if head[6] is None else ms_dt(head[6])
        outcome, handle = head[8], head[10]
        record = new_run(
            run_id,
            manifest.digest,
            manifest.project_id,
            manifest.scenario_id,
            head[2],
            ms_dt(head[3]),
            ms_dt(head[4]),
            head[5],
            expires,
            None if outcome is None else loads_json(outcome),
            head[9],
            None if handle is None else RunHandle.from_dict(loads_json(handle)),
            loads_json(manifest.encoded if head[1] is None else head[1]),
            head[7],
        )
        steps = completed_steps(run_id, [r[_CLAIM_STEP_AT:] for r in rows[1:]])
        return StartOrResumeResult(record, steps, None if code == "completed" else expires)

    async def _renew(
        self, run_id: str, worker_id: str, lease_ms: int, lease_epoch: int | None
    ) -> bool:
        row = await self._fetchone(
            "UPDATE durable_runs SET lease_expires_at_ms = durable_now_ms() + %s "
            "WHERE run_id = %s AND lease_holder = %s "
            "AND (%s::bigint IS NULL OR lease_epoch = %s) RETURNING 1",
            (lease_ms, run_id, worker_id, lease_epoch, lease_epoch),
        )
        return row is not None

    async def _end(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: str,
        lease_epoch: int | None,
    ) -> RunRecord:
        async def op(conn: Conn, attempt: int) -> RunRecord:
            cur = await conn.execute(
                "UPDATE durable_runs SET status = %s, outcome = %s, lease_holder = NULL, "
                "lease_expires_at_ms = NULL, updated_at_ms = durable_now_ms() "
                "WHERE run_id = %s AND (%s::text IS NULL OR (lease_holder = %s "
                "AND (%s::bigint IS NULL OR lease_epoch = %s))) "
                f"RETURNING {RUN_COLUMNS}",
                (status, outcome, run_id, worker_id, worker_id, lease_epoch, lease_epoch),
            )
            row = await cur.fetchone()
            if row is not None:
                return run_record(row)
            cur = await conn.execute(Q.load_run, (run_id,))
            row = await cur.fetchone()
            if row is None:
                raise not_found(run_id)
            if attempt > 0 and row[8] is None and row[5] == status and row[11] == outcome:
                return run_record(row)  # our first try committed before the connection broke
            raise lease_lost(run_id, worker_id, lease_epoch, row[8], row[10])

        return await self._with_conn(op)

    async def _load_run(self, run_id: str) -> RunRecord | None:
        row = await self._fetchone(Q.load_run, (run_id,))
        return run_record(row) if row else None

    async def _list_runs(self, limit: int, status: RunStatus | None) -> list[RunRecord]:
        if status is None:
            rows = await self._fetchall(Q.list_runs, (limit,))
        else:
            rows = await self._fetchall(Q.list_runs_by_status, (status, limit))
        return [run_record(r) for r in rows]

    async def _set_handle(self, run_id: str, handle: RunHandle | None, encoded: str | None) -> None:
        row = await self._fetchone(
            "UPDATE durable_runs SET handle = %s, updated_at_ms = durable_now_ms() "
            "WHERE run_id = %s RETURNING 1",
            (encoded, run_id),
        )
        if row is None:
            raise not_found(run_id)

    # -- steps -------------------------------------------------------------------------------

    async def _load_steps(self, run_id: str) -> list[StepRecord]:
        return [step_record(r) for r in await self._fetchall(Q.load_steps, (run_id,))]

    async def _load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        row = await self._fetchone(Q.load_step, (run_id, step_index))
        return step_record(row) if row else None

    async def _write_step(self, write: StepWrite) -> StepRecord:
        run_id, index = write.run_id, write.step_index
        params = (
            run_id,
            index,
            write.status,
            write.worker_id,
            write.lease_epoch,
            write.intent,
            write.kind,
            write.input_hash,
            write.result,
            write.error,
        )

        async def op(conn: Conn, attempt: int) -> StepRecord:
            cur = await conn.execute(_WRITE_STEP, params)
            row = await cur.fetchone()
            assert row is not None
            code = row[0]
            if code == "ok" or (
                # our first try committed before the connection broke
                code == "completed"
                and attempt > 0
                and write.status == "completed"
                and row[7] == write.result
            ):
                return step_record((run_id, index, *row[2:]))
            if code == "missing":
                raise not_found(run_id)
            if code == "lost":
                raise lease_lost(run_id, write.worker_id, write.lease_epoch, row[1])
            if code == "diverged":
                raise diverged(run_id, index, row[2], write.intent or "")
            if code == "not_begun":
                raise step_not_begun(run_id, index)
            raise step_completed(run_id, index)

        return await self._with_conn(op)

    # -- events ------------------------------------------------------------------------------

    async def _emit(self, run_id: str, key: str, payload: str) -> EmitEventResult:
        async def op(conn: Conn, attempt: int) -> EmitEventResult:
            cur = await conn.execute(
                "WITH ins AS (INSERT INTO durable_events (run_id, key, payload, created_at_ms) "
                "SELECT run_id, %s, %s, durable_now_ms() FROM durable_runs WHERE run_id = %s "
                "ON CONFLICT (run_id, key) DO NOTHING RETURNING payload, created_at_ms) "
                "SELECT true, payload, created_at_ms FROM ins UNION ALL "
                "SELECT false, payload, created_at_ms FROM durable_events "
                "WHERE run_id = %s AND key = %s",
                (key, payload, run_id, run_id, key),
            )
            row = await cur.fetchone()
            if row is None:
                raise not_found(run_id)
            accepted = bool(row[0]) or (attempt > 0 and row[1] == payload)
            return EmitEventResult(
                accepted, EventRecord(run_id, key, loads_json(row[1]), ms_dt(row[2]))
            )

        return await self._with_conn(op)

    async def _load_event(self, run_id: str, key: str) -> EventRecord | None:
        row = await self._fetchone(Q.load_event, (run_id, key))
        if row is None:
            return None
        return EventRecord(run_id, key, loads_json(row[0]), ms_dt(row[1]))

    # -- stream log --------------------------------------------------------------------------

    async def _append(
        self, run_id: str, event_ids: list[str], payloads: list[str]
    ) -> list[AppendStreamResult]:
        rows = await self._fetchall(_APPEND, (run_id, event_ids, payloads))
        if len(rows) == 1 and rows[0][0]:
            # every event was new: one summary row (seq of the first, one time), in bulk
            first, created_ms = rows[0][1], rows[0][3]
            return accepted_batch(run_id, first, event_ids, decode_all(payloads), ms_dt(created_ms))
        out: list[AppendStreamResult] = []
        seen: dict[int, datetime] = {}
        for event_id, payload, (accepted, seq, stored, created_ms) in zip(
            event_ids, payloads, rows, strict=True
        ):
            at = seen.get(created_ms)
            if at is None:
                at = seen[created_ms] = ms_dt(created_ms)
            value = loads_json(payload if accepted else stored)
            out.append(appended(accepted, new_stream_event(run_id, seq, event_id, value, at)))
        return out

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        return stream_records(
            run_id, await self._fetchall(Q.read_stream, (run_id, after_seq, limit))
        )

    async def _stream_length(self, run_id: str) -> int:
        row = await self._fetchone(
            "SELECT next_seq FROM durable_stream_heads WHERE run_id = %s", (run_id,)
        )
        return int(row[0]) if row else 0

    # -- retention: on the database's clock unless the caller gives the time ------------------

    async def _prune(self, prefix: str, age_ms: int, at_ms: int | None, dry_run: bool) -> list[str]:
        cutoff = None if at_ms is None else at_ms - age_ms
        return await postgres_prune(self._with_conn, prefix, age_ms, cutoff, dry_run)

    async def _usage(self, prefix: str) -> int:
        return await postgres_usage(self._with_conn, prefix)

    async def close(self) -> None:
        if self._owns_pool:
            await self._pool.close()

    # -- restarting a failed run -------------------------------------------------------------

    async def _restart_failed(
        self, run_id: str, manifest: DurableRunManifest, entry: tuple[str, str] | None
    ) -> RunRecord | None:
        params = (
            manifest.digest,
            manifest.encoded,
            manifest.project_id,
            manifest.scenario_id,
        )

        async def op(conn: Conn, attempt: int) -> tuple[Any, ...] | None:
            # a retry after a lost commit finds the run restarted already: None, as for a
            # restart that lost a race (the caller reloads the run either way)
            async with conn.transaction():
                cur = await conn.execute(_RESTART, (*params, run_id))
                row: tuple[Any, ...] | None = await cur.fetchone()
                if row is None:
                    return None
                await conn.execute(_DROP_STEPS, (run_id,))
                await conn.execute(_DROP_EVENTS, (run_id,))
                if entry is not None:
                    await conn.execute(_APPEND, (run_id, [entry[0]], [entry[1]]))
                return row

        row = await self._with_conn(op)
        return None if row is None else run_record(row)
