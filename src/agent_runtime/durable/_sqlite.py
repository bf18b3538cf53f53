"""`SQLiteDurableRunStore`: the embedded default store, one file, many processes on one host.

WAL mode; every step commit is a single `BEGIN IMMEDIATE` transaction that checks the fence
(lease holder) and writes the step, so a begin+complete costs one fsync in `durability="full"`.
Statements run on the calling thread: each is short, and a thread hop would cost more than the
statement itself. Waiting for another process's write lock is bounded by `busy_timeout_ms`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from .._sqlite import SQLiteTransaction, connect_sqlite
from ..errors import (
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
    ms_dt,
    ms_to_dt,
    now_ms,
)
from ._sqlite_schema import SQLITE_MIGRATIONS
from ._store import DEFAULT_LEASE_MS
from ._validate import (
    check_after_seq,
    check_end_status,
    check_epoch,
    check_id,
    check_index,
    check_lease_ms,
    check_limit,
    check_start,
    check_status,
    diverged,
    lease_lost,
)

__all__ = ["SQLiteDurableRunStore"]

Durability = Literal["normal", "full"]

_RUN_COLUMNS = (
    "run_id, manifest_hash, manifest, project_id, scenario_id, status, created_at_ms, "
    "updated_at_ms, lease_holder, lease_expires_at_ms, lease_epoch, outcome, step_count, handle"
)
_STEP_COLUMNS = (
    "run_id, step_index, intent, kind, input_hash, status, attempts, result, error, "
    "started_at_ms, completed_at_ms"
)

_INSERT_STEP = f"""
INSERT INTO durable_steps ({_STEP_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
"""

_UPSERT_STEP = f"""
INSERT INTO durable_steps ({_STEP_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT (run_id, step_index) DO UPDATE SET
    intent = excluded.intent,
    kind = excluded.kind,
    input_hash = COALESCE(excluded.input_hash, durable_steps.input_hash),
    status = excluded.status,
    result = excluded.result,
    error = excluded.error,
    attempts = CASE WHEN durable_steps.status = 'running' AND excluded.status != 'running'
                    THEN durable_steps.attempts ELSE durable_steps.attempts + 1 END,
    started_at_ms = CASE WHEN durable_steps.status = 'running'
                         THEN durable_steps.started_at_ms ELSE excluded.started_at_ms END,
    completed_at_ms = excluded.completed_at_ms
WHERE durable_steps.status != 'completed' AND durable_steps.intent = excluded.intent
RETURNING {_STEP_COLUMNS}
"""


def _run_record(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
    handle = row[13]
    return RunRecord(
        run_id=row[0],
        manifest_hash=row[1],
        manifest=loads_json(row[2]),
        project_id=row[3],
        scenario_id=row[4],
        status=row[5],
        created_at=ms_dt(row[6]),
        updated_at=ms_dt(row[7]),
        lease_holder=row[8],
        lease_expires_at=ms_to_dt(row[9]),
        lease_epoch=row[10],
        outcome=loads_json(row[11]) if row[11] is not None else None,
        step_count=row[12],
        handle=RunHandle.from_dict(loads_json(handle)) if handle is not None else None,
    )


def _step_record(row: sqlite3.Row | tuple[Any, ...]) -> StepRecord:
    started = ms_to_dt(row[9])
    # a step begun and completed in one commit has one timestamp: build it once (resume
    # loads every completed step, so this runs once per step on the replay path)
    completed = started if row[10] == row[9] else ms_to_dt(row[10])
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
        started_at=started,
        completed_at=completed,
    )


def _stream_record(row: tuple[Any, ...]) -> StreamEventRecord:
    return StreamEventRecord(row[0], row[1], row[2], loads_json(row[3]), ms_dt(row[4]))


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements; semicolons inside comments or strings are safe."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


class SQLiteDurableRunStore(StoreBase):
    """A `DurableRunStore` in one SQLite file (WAL), safe across processes on one host.

    `durability="full"` fsyncs every commit (survives power loss); `"normal"` fsyncs at WAL
    checkpoints only (survives a process crash, the common case, at a fraction of the cost).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        durability: Durability = "normal",
        *,
        busy_timeout_ms: int = 5000,
    ) -> None:
        if durability not in ("normal", "full"):
            raise DurableValueError(
                f"durability must be 'normal' or 'full', got {durability!r}", path="durability"
            )
        self.path = str(path)
        self.durability = durability
        try:
            self._db = connect_sqlite(
                self.path,
                busy_timeout_ms=busy_timeout_ms,
                synchronous="FULL" if durability == "full" else "NORMAL",
            )
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self.path}: {exc}") from exc

    # -- plumbing ----------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS durable_schema_info ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "checksum TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"
            )
            applied = dict(db.execute("SELECT version, checksum FROM durable_schema_info"))
            for m in check_applied(SQLITE_MIGRATIONS, applied, self.path):
                # statement by statement: executescript() would COMMIT mid-transaction
                for statement in _statements(m.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO durable_schema_info VALUES (?, ?, ?, ?)",
                    (m.version, m.description, m.checksum, now_ms()),
                )

    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        row = self._db.execute("SELECT MAX(version) FROM durable_schema_info").fetchone()
        return int(row[0] or 0)

    def _tx(self) -> SQLiteTransaction:
        return SQLiteTransaction(self._db, f"SQLite store {self.path}")

    def _missing_or_lost(
        self,
        db: sqlite3.Connection,
        run_id: str,
        worker_id: str | None,
        lease_epoch: int | None = None,
    ) -> None:
        row = db.execute(
            "SELECT lease_holder, lease_epoch FROM durable_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        raise lease_lost(run_id, worker_id, lease_epoch, row[0], row[1])

    def _fence(
        self,
        db: sqlite3.Connection,
        run_id: str,
        worker_id: str | None,
        lease_epoch: int | None,
        step_count: int,
    ) -> None:
        # touches no indexed column: a step commit costs one row update plus the step insert
        if worker_id is None:
            cur = db.execute(
                "UPDATE durable_runs SET step_count = MAX(step_count, ?) WHERE run_id = ?",
                (step_count, run_id),
            )
        elif lease_epoch is None:
            cur = db.execute(
                "UPDATE durable_runs SET step_count = MAX(step_count, ?) "
                "WHERE run_id = ? AND lease_holder = ?",
                (step_count, run_id, worker_id),
            )
        else:
            cur = db.execute(
                "UPDATE durable_runs SET step_count = MAX(step_count, ?) "
                "WHERE run_id = ? AND lease_holder = ? AND lease_epoch = ?",
                (step_count, run_id, worker_id, lease_epoch),
            )
        if cur.rowcount != 1:
            self._missing_or_lost(db, run_id, worker_id, lease_epoch)

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
        with self._tx() as db:
            now = now_ms()
            created = db.execute(
                "INSERT INTO durable_runs (run_id, manifest_hash, manifest, project_id, "
                "scenario_id, status, created_at_ms, updated_at_ms, lease_holder, "
                "lease_expires_at_ms, lease_epoch) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, 1) "
                "ON CONFLICT (run_id) DO NOTHING",
                (
                    run_id,
                    mhash,
                    manifest_json,
                    manifest.project_id,
                    manifest.scenario_id,
                    now,
                    now,
                    worker_id,
                    now + lease_ms,
                ),
            )
            if created.rowcount == 1:  # a new run: nothing to read back
                fresh = (
                    run_id,
                    mhash,
                    manifest_json,
                    manifest.project_id,
                    manifest.scenario_id,
                    "running",
                    now,
                    now,
                    worker_id,
                    now + lease_ms,
                    1,
                    None,
                    0,
                    None,
                )
                record = _run_record(fresh)
                return StartOrResumeResult(record, [], record.lease_expires_at)
            row = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row[1] != mhash:
                raise DurableRunInputMismatchError(
                    f"run {run_id!r} exists with another manifest", run_id=run_id
                )
            elif row[5] == "completed":
                steps = self._completed_steps(db, run_id)
                return StartOrResumeResult(_run_record(row), steps, None)
            cur = db.execute(
                "UPDATE durable_runs SET lease_holder = ?, lease_expires_at_ms = ?, "
                "lease_epoch = lease_epoch + 1, status = 'running', updated_at_ms = ? "
                "WHERE run_id = ? AND (lease_holder IS NULL OR lease_holder = ? "
                "OR lease_expires_at_ms <= ?) "
                f"RETURNING {_RUN_COLUMNS}",
                (worker_id, now + lease_ms, now, run_id, worker_id, now),
            )
            claimed = cur.fetchone()
            if claimed is None:
                assert row is not None
                raise DurableRunLeaseHeldError(
                    f"run {run_id!r} is leased by {row[8]!r}",
                    run_id=run_id,
                    holder=row[8],
                    expires_at_ms=row[9],
                )
            steps = self._completed_steps(db, run_id)
        record = _run_record(claimed)
        return StartOrResumeResult(record, steps, record.lease_expires_at)

    def _completed_steps(self, db: sqlite3.Connection, run_id: str) -> list[StepRecord]:
        rows = db.execute(
            f"SELECT {_STEP_COLUMNS} FROM durable_steps WHERE run_id = ? AND status = 'completed' "
            "ORDER BY step_index",
            (run_id,),
        ).fetchall()
        return [_step_record(r) for r in rows]

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
        with self._tx() as db:
            cur = db.execute(
                "UPDATE durable_runs SET lease_expires_at_ms = ? "
                "WHERE run_id = ? AND lease_holder = ? AND (? IS NULL OR lease_epoch = ?)",
                (now_ms() + lease_ms, run_id, worker_id, lease_epoch, lease_epoch),
            )
            return cur.rowcount == 1

    async def load_run(self, run_id: str) -> RunRecord | None:
        check_id(run_id, "run_id")
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return _run_record(row) if row else None

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        check_limit(limit, optional=False)
        if status is not None:
            check_status(status)
            rows = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM durable_runs WHERE status = ? "
                "ORDER BY rowid DESC LIMIT ?",
                (status, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_RUN_COLUMNS} FROM durable_runs ORDER BY rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
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
        sql = (
            "UPDATE durable_runs SET status = ?, outcome = ?, lease_holder = NULL, "
            "lease_expires_at_ms = NULL, updated_at_ms = ? WHERE run_id = ?"
        )
        params: tuple[Any, ...] = (status, encoded, now_ms(), run_id)
        if worker_id is not None:
            sql += " AND lease_holder = ?"
            params += (worker_id,)
            if lease_epoch is not None:
                sql += " AND lease_epoch = ?"
                params += (lease_epoch,)
        with self._tx() as db:
            row = db.execute(f"{sql} RETURNING {_RUN_COLUMNS}", params).fetchone()
            if row is None:
                self._missing_or_lost(db, run_id, worker_id, lease_epoch)
        return _run_record(row)

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        check_id(run_id, "run_id")
        if handle is not None and not isinstance(handle, RunHandle):
            raise DurableRunError("handle must be a RunHandle or None", run_id=run_id)
        data = dumps_json(handle.to_dict(), root="handle").decode() if handle else None
        with self._tx() as db:
            cur = db.execute(
                "UPDATE durable_runs SET handle = ?, updated_at_ms = ? WHERE run_id = ?",
                (data, now_ms(), run_id),
            )
            if cur.rowcount != 1:
                raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)

    # -- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        check_id(run_id, "run_id")
        rows = self._db.execute(
            f"SELECT {_STEP_COLUMNS} FROM durable_steps WHERE run_id = ? ORDER BY step_index",
            (run_id,),
        ).fetchall()
        return [_step_record(r) for r in rows]

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        check_id(run_id, "run_id")
        check_index(step_index)
        row = self._db.execute(
            f"SELECT {_STEP_COLUMNS} FROM durable_steps WHERE run_id = ? AND step_index = ?",
            (run_id, step_index),
        ).fetchone()
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
        now = now_ms()
        completed_at = None if status == "running" else now
        with self._tx() as db:
            self._fence(db, run_id, worker_id, lease_epoch, step_index + 1)
            if intent is not None:
                # common case: first write of this position, a plain INSERT like any hand-rolled
                # loop would do; an existing row (begun, failed) takes the upsert below
                try:
                    db.execute(
                        _INSERT_STEP,
                        (
                            run_id,
                            step_index,
                            intent,
                            kind,
                            input_hash,
                            status,
                            result,
                            error,
                            now,
                            completed_at,
                        ),
                    )
                except sqlite3.IntegrityError:
                    pass
                else:
                    started = ms_to_dt(now)
                    return StepRecord(
                        run_id=run_id,
                        step_index=step_index,
                        intent=intent,
                        kind=kind,
                        input_hash=input_hash,
                        status=status,
                        attempts=1,
                        result=loads_json(result) if result is not None else None,
                        error=loads_json(error) if error is not None else None,
                        started_at=started,
                        completed_at=started if completed_at is not None else None,
                    )
            else:
                prev = db.execute(
                    "SELECT intent, kind FROM durable_steps WHERE run_id = ? AND step_index = ?",
                    (run_id, step_index),
                ).fetchone()
                if prev is None:
                    raise DurableRunError(
                        f"step {step_index} of run {run_id!r} was not begun; pass its intent",
                        code="step_not_begun",
                        run_id=run_id,
                    )
                intent, kind = prev
            row = db.execute(
                _UPSERT_STEP,
                (
                    run_id,
                    step_index,
                    intent,
                    kind,
                    input_hash,
                    status,
                    result,
                    error,
                    now,
                    completed_at,
                ),
            ).fetchone()
            if row is None:
                prev = db.execute(
                    "SELECT intent FROM durable_steps WHERE run_id = ? AND step_index = ?",
                    (run_id, step_index),
                ).fetchone()
                if prev is not None and prev[0] != intent:
                    raise diverged(run_id, step_index, prev[0], intent)
                raise DurableRunError(
                    f"step {step_index} of run {run_id!r} is already completed",
                    code="step_completed",
                    run_id=run_id,
                )
        return _step_record(row)

    # -- events ------------------------------------------------------------------------------

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        check_id(run_id, "run_id")
        check_id(key, "key")
        encoded = dumps_json(payload, root="payload").decode()
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM durable_runs WHERE run_id = ?", (run_id,)).fetchone()
                is None
            ):
                raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
            now = now_ms()
            cur = db.execute(
                "INSERT INTO durable_events (run_id, key, payload, created_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, key) DO NOTHING",
                (run_id, key, encoded, now),
            )
            if cur.rowcount == 1:
                return EmitEventResult(
                    True,
                    EventRecord(run_id, key, loads_json(encoded), ms_dt(now)),
                )
            row = db.execute(
                "SELECT payload, created_at_ms FROM durable_events WHERE run_id = ? AND key = ?",
                (run_id, key),
            ).fetchone()
        return EmitEventResult(False, EventRecord(run_id, key, loads_json(row[0]), ms_dt(row[1])))

    async def load_event(self, run_id: str, key: str) -> EventRecord | None:
        check_id(run_id, "run_id")
        check_id(key, "key")
        row = self._db.execute(
            "SELECT payload, created_at_ms FROM durable_events WHERE run_id = ? AND key = ?",
            (run_id, key),
        ).fetchone()
        if row is None:
            return None
        return EventRecord(run_id, key, loads_json(row[0]), ms_dt(row[1]))

    # -- stream log --------------------------------------------------------------------------

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        check_id(run_id, "run_id")
        encoded: list[tuple[str, str]] = []
        for i, (event_id, payload) in enumerate(events):
            check_id(event_id, "event_id")
            encoded.append((event_id, dumps_json(payload, root=f"events[{i}].payload").decode()))
        out: list[AppendStreamResult] = []
        if not encoded:
            return out
        with self._tx() as db:
            now = now_ms()
            created = ms_dt(now)
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM durable_stream WHERE run_id = ?", (run_id,)
            ).fetchone()
            for event_id, data in encoded:
                cur = db.execute(
                    "INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, event_id) DO NOTHING",
                    (run_id, seq, event_id, data, now),
                )
                if cur.rowcount == 1:
                    out.append(
                        AppendStreamResult(
                            True,
                            StreamEventRecord(run_id, seq, event_id, loads_json(data), created),
                        )
                    )
                    seq += 1
                    continue
                row = db.execute(
                    "SELECT run_id, seq, event_id, payload, created_at_ms FROM durable_stream "
                    "WHERE run_id = ? AND event_id = ?",
                    (run_id, event_id),
                ).fetchone()
                out.append(AppendStreamResult(False, _stream_record(row)))
        return out

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        check_id(run_id, "run_id")
        check_after_seq(after_seq)
        check_limit(limit, optional=True)
        rows = self._db.execute(
            "SELECT run_id, seq, event_id, payload, created_at_ms FROM durable_stream "
            "WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, -1 if after_seq is None else after_seq, -1 if limit is None else limit),
        ).fetchall()
        return [_stream_record(r) for r in rows]

    async def close(self) -> None:
        self._db.close()
