"""`PostgresDurableRunStore`: durable runs in PostgreSQL, for many workers on many hosts.

psycopg 3 (async) over a psycopg-pool connection pool, autocommit: every write is one
statement, hence one transaction. A step commit is one call of `durable_write_step`, which
locks the run row, checks the fence (lease holder) and upserts the step; a stream append is
one call of `durable_stream_append`, which serializes appenders of a run on its head row.

A lost connection (server restart, failover) is retried until `reconnect_timeout_s`: the pool
replaces broken connections. A retried write that had in fact committed is recognised (same
step result already stored under our lease, run already ended with our outcome) and returned
as a success, so a restart loses no step and runs none twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ..errors import (
    ConfigurationError,
    DurableRunError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunNotFoundError,
    DurableValueError,
    StoreUnavailableError,
)
from ..jsoncanon import dumps_json, loads_json
from ._base import StoreBase
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
    StepKind,
    StepRecord,
    StepStatus,
    StreamEventRecord,
    ms_to_dt,
)
from ._store import DEFAULT_LEASE_MS
from ._validate import (
    check_end_status,
    check_epoch,
    check_id,
    check_index,
    check_lease_ms,
    check_start,
    check_status,
    diverged,
    lease_lost,
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

_RUN_COLUMNS = (
    "run_id, manifest_hash, manifest, project_id, scenario_id, status, created_at_ms, "
    "updated_at_ms, lease_holder, lease_expires_at_ms, lease_epoch, outcome, step_count, handle"
)
_STEP_COLUMNS = (
    "run_id, step_index, intent, kind, input_hash, status, attempts, result, error, "
    "started_at_ms, completed_at_ms"
)


def _run_record(row: Sequence[Any]) -> RunRecord:
    handle = row[13]
    return RunRecord(
        run_id=row[0],
        manifest_hash=row[1],
        manifest=loads_json(row[2]),
        project_id=row[3],
        scenario_id=row[4],
        status=row[5],
        created_at=ms_to_dt(row[6]),  # type: ignore[arg-type]
        updated_at=ms_to_dt(row[7]),  # type: ignore[arg-type]
        lease_holder=row[8],
        lease_expires_at=ms_to_dt(row[9]),
        lease_epoch=row[10],
        outcome=loads_json(row[11]) if row[11] is not None else None,
        step_count=row[12],
        handle=RunHandle.from_dict(loads_json(handle)) if handle is not None else None,
    )


def _step_record(row: Sequence[Any]) -> StepRecord:
    return StepRecord(
        run_id=row[0],
        step_index=row[1],
        intent=row[2],
        kind=row[3],
        input_hash=row[4],
        status=row[5],
        attempts=row[6],
        result=loads_json(row[7]) if row[7] is not None else None,
        error=loads_json(row[8]) if row[8] is not None else None,
        started_at=ms_to_dt(row[9]),
        completed_at=ms_to_dt(row[10]),
    )


def _stream_record(row: Sequence[Any]) -> StreamEventRecord:
    return StreamEventRecord(row[0], row[1], row[2], loads_json(row[3]), ms_to_dt(row[4]))  # type: ignore[arg-type]


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

    async def start_or_resume(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> StartOrResumeResult:
        check_start(run_id, manifest, worker_id, lease_ms)
        mhash, manifest_json = manifest.digest, manifest.encoded

        async def op(conn: Conn, attempt: int) -> StartOrResumeResult:
            await conn.execute(
                "INSERT INTO durable_runs (run_id, manifest_hash, manifest, project_id, "
                "scenario_id, status, created_at_ms, updated_at_ms) VALUES "
                "(%s, %s, %s, %s, %s, 'running', durable_now_ms(), durable_now_ms()) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, mhash, manifest_json, manifest.project_id, manifest.scenario_id),
            )
            # the claim: one conditional UPDATE (free, ours, or expired)
            cur = await conn.execute(
                "UPDATE durable_runs SET lease_holder = %s, "
                "lease_expires_at_ms = durable_now_ms() + %s, lease_epoch = lease_epoch + 1, "
                "status = 'running', updated_at_ms = durable_now_ms() "
                "WHERE run_id = %s AND manifest_hash = %s AND status <> 'completed' "
                "AND (lease_holder IS NULL OR lease_holder = %s "
                "OR lease_expires_at_ms <= durable_now_ms()) "
                f"RETURNING {_RUN_COLUMNS}",
                (worker_id, lease_ms, run_id, mhash, worker_id),
            )
            claimed = await cur.fetchone()
            row = claimed
            if claimed is None:
                cur = await conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE run_id = %s", (run_id,)
                )
                row = await cur.fetchone()
                if row is None:  # deleted in between: let the caller retry
                    raise DurableRunNotFoundError(f"run {run_id!r} vanished", run_id=run_id)
                if row[1] != mhash:
                    raise DurableRunInputMismatchError(
                        f"run {run_id!r} exists with another manifest", run_id=run_id
                    )
                if row[5] != "completed":
                    raise DurableRunLeaseHeldError(
                        f"run {run_id!r} is leased by {row[8]!r}",
                        run_id=run_id,
                        holder=row[8],
                        expires_at_ms=row[9],
                    )
            cur = await conn.execute(
                f"SELECT {_STEP_COLUMNS} FROM durable_steps "
                "WHERE run_id = %s AND status = 'completed' ORDER BY step_index",
                (run_id,),
            )
            steps = [_step_record(r) for r in await cur.fetchall()]
            if claimed is None:
                assert row is not None
                return StartOrResumeResult(_run_record(row), steps, None)
            record = _run_record(claimed)
            return StartOrResumeResult(record, steps, record.lease_expires_at)

        return await self._with_conn(op)

    async def renew_lease(
        self,
        run_id: str,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
        *,
        lease_epoch: int | None = None,
    ) -> bool:
        check_id(run_id, "run_id")
        check_id(worker_id, "worker_id")
        check_lease_ms(lease_ms)
        check_epoch(lease_epoch)
        row = await self._fetchone(
            "UPDATE durable_runs SET lease_expires_at_ms = durable_now_ms() + %s "
            "WHERE run_id = %s AND lease_holder = %s "
            "AND (%s::bigint IS NULL OR lease_epoch = %s) RETURNING 1",
            (lease_ms, run_id, worker_id, lease_epoch, lease_epoch),
        )
        return row is not None

    async def load_run(self, run_id: str) -> RunRecord | None:
        check_id(run_id, "run_id")
        row = await self._fetchone(
            f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE run_id = %s", (run_id,)
        )
        return _run_record(row) if row else None

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        if type(limit) is not int or limit < 0:
            raise DurableValueError("limit must be an int >= 0", path="limit")
        if status is not None:
            check_status(status)
        rows = await self._fetchall(
            f"SELECT {_RUN_COLUMNS} FROM durable_runs "
            "WHERE (%s::text IS NULL OR status = %s) "
            "ORDER BY created_at_ms DESC, run_id DESC LIMIT %s",
            (status, status, limit),
        )
        return [_run_record(r) for r in rows]

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        check_id(run_id, "run_id")
        check_end_status(status)
        check_epoch(lease_epoch)
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        encoded = dumps_json(outcome, root="outcome").decode()

        async def op(conn: Conn, attempt: int) -> RunRecord:
            cur = await conn.execute(
                "UPDATE durable_runs SET status = %s, outcome = %s, lease_holder = NULL, "
                "lease_expires_at_ms = NULL, updated_at_ms = durable_now_ms() "
                "WHERE run_id = %s AND (%s::text IS NULL OR (lease_holder = %s "
                "AND (%s::bigint IS NULL OR lease_epoch = %s))) "
                f"RETURNING {_RUN_COLUMNS}",
                (status, encoded, run_id, worker_id, worker_id, lease_epoch, lease_epoch),
            )
            row = await cur.fetchone()
            if row is not None:
                return _run_record(row)
            cur = await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE run_id = %s", (run_id,)
            )
            row = await cur.fetchone()
            if row is None:
                raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
            if attempt > 0 and row[8] is None and row[5] == status and row[11] == encoded:
                return _run_record(row)  # our first try committed before the connection broke
            raise lease_lost(run_id, worker_id, lease_epoch, row[8], row[10])

        return await self._with_conn(op)

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        check_id(run_id, "run_id")
        if handle is not None and not isinstance(handle, RunHandle):
            raise DurableRunError("handle must be a RunHandle or None", run_id=run_id)
        data = dumps_json(handle.to_dict(), root="handle").decode() if handle else None
        row = await self._fetchone(
            "UPDATE durable_runs SET handle = %s, updated_at_ms = durable_now_ms() "
            "WHERE run_id = %s RETURNING 1",
            (data, run_id),
        )
        if row is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)

    # -- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        check_id(run_id, "run_id")
        rows = await self._fetchall(
            f"SELECT {_STEP_COLUMNS} FROM durable_steps WHERE run_id = %s ORDER BY step_index",
            (run_id,),
        )
        return [_step_record(r) for r in rows]

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        check_id(run_id, "run_id")
        check_index(step_index)
        row = await self._fetchone(
            f"SELECT {_STEP_COLUMNS} FROM durable_steps WHERE run_id = %s AND step_index = %s",
            (run_id, step_index),
        )
        return _step_record(row) if row else None

    async def _write_step(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        worker_id: str | None,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None,
        error: str | None,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        params = (
            run_id,
            step_index,
            status,
            worker_id,
            lease_epoch,
            intent,
            kind,
            input_hash,
            result,
            error,
        )

        async def op(conn: Conn, attempt: int) -> StepRecord:
            cur = await conn.execute(
                "SELECT * FROM durable_write_step(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", params
            )
            row = await cur.fetchone()
            assert row is not None
            code = row[0]
            if code == "ok" or (
                code == "completed" and attempt > 0 and status == "completed" and row[7] == result
            ):
                return _step_record((run_id, step_index, *row[2:]))
            if code == "missing":
                raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
            if code == "lost":
                raise lease_lost(run_id, worker_id, lease_epoch, row[1])
            if code == "diverged":
                raise diverged(run_id, step_index, row[2], intent or "")
            if code == "not_begun":
                raise DurableRunError(
                    f"step {step_index} of run {run_id!r} was not begun; pass its intent",
                    code="step_not_begun",
                    run_id=run_id,
                )
            raise DurableRunError(
                f"step {step_index} of run {run_id!r} is already completed",
                code="step_completed",
                run_id=run_id,
            )

        return await self._with_conn(op)

    # -- events ------------------------------------------------------------------------------

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        check_id(run_id, "run_id")
        check_id(key, "key")
        encoded = dumps_json(payload, root="payload").decode()

        async def op(conn: Conn, attempt: int) -> EmitEventResult:
            cur = await conn.execute(
                "WITH ins AS (INSERT INTO durable_events (run_id, key, payload, created_at_ms) "
                "SELECT run_id, %s, %s, durable_now_ms() FROM durable_runs WHERE run_id = %s "
                "ON CONFLICT (run_id, key) DO NOTHING RETURNING payload, created_at_ms) "
                "SELECT true, payload, created_at_ms FROM ins UNION ALL "
                "SELECT false, payload, created_at_ms FROM durable_events "
                "WHERE run_id = %s AND key = %s",
                (key, encoded, run_id, run_id, key),
            )
            row = await cur.fetchone()
            if row is None:
                raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
            accepted = bool(row[0]) or (attempt > 0 and row[1] == encoded)
            rec = EventRecord(run_id, key, loads_json(row[1]), ms_to_dt(row[2]))  # type: ignore[arg-type]
            return EmitEventResult(accepted, rec)

        return await self._with_conn(op)

    async def load_event(self, run_id: str, key: str) -> EventRecord | None:
        check_id(run_id, "run_id")
        check_id(key, "key")
        row = await self._fetchone(
            "SELECT payload, created_at_ms FROM durable_events WHERE run_id = %s AND key = %s",
            (run_id, key),
        )
        if row is None:
            return None
        return EventRecord(run_id, key, loads_json(row[0]), ms_to_dt(row[1]))  # type: ignore[arg-type]

    # -- stream log --------------------------------------------------------------------------

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        check_id(run_id, "run_id")
        ids: list[str] = []
        payloads: list[str] = []
        for i, (event_id, payload) in enumerate(events):
            ids.append(check_id(event_id, "event_id"))
            payloads.append(dumps_json(payload, root=f"events[{i}].payload").decode())
        if not ids:
            return []

        async def op(conn: Conn, attempt: int) -> list[AppendStreamResult]:
            cur = await conn.execute(
                "SELECT * FROM durable_stream_append(%s, %s, %s)", (run_id, ids, payloads)
            )
            rows = await cur.fetchall()
            out: list[AppendStreamResult] = []
            for event_id, data, (accepted, seq, stored, created_ms) in zip(
                ids, payloads, rows, strict=True
            ):
                text = data if accepted else stored
                created = ms_to_dt(created_ms)
                assert created is not None
                rec = StreamEventRecord(run_id, seq, event_id, loads_json(text), created)
                out.append(AppendStreamResult(bool(accepted), rec))
            return out

        return await self._with_conn(op)

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        check_id(run_id, "run_id")
        if after_seq is not None and type(after_seq) is not int:
            raise DurableValueError("after_seq must be an int or None", path="after_seq")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise DurableValueError("limit must be an int >= 0 or None", path="limit")
        rows = await self._fetchall(
            "SELECT run_id, seq, event_id, payload, created_at_ms FROM durable_stream "
            "WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (run_id, -1 if after_seq is None else after_seq, limit),
        )
        return [_stream_record(r) for r in rows]

    async def stream_length(self, run_id: str) -> int:
        """How many entries the run's stream log holds."""
        check_id(run_id, "run_id")
        row = await self._fetchone(
            "SELECT next_seq FROM durable_stream_heads WHERE run_id = %s", (run_id,)
        )
        return int(row[0]) if row else 0

    async def close(self) -> None:
        if self._owns_pool:
            await self._pool.close()
