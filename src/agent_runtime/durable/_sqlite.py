"""`SQLiteDurableRunStore`: the embedded default store, one file, many processes on one host.

WAL mode; every write is one transaction: a single statement where one suffices (creating or
claiming a run, ending it, renewing a lease: SQLite commits a lone statement atomically), else
`BEGIN IMMEDIATE` around the fence (lease holder) and the write, so a begin+complete costs one
fsync in `durability="full"`. Statements run on the calling thread: each is short, and a
thread hop would cost more than the statement itself. Waiting for another process's write
lock is bounded by `busy_timeout_ms`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Literal

import orjson

from .._sqlite import SQLiteTransaction, connect_sqlite, split_statements
from ..errors import ConfigurationError, DurableValueError, StoreUnavailableError
from ..jsoncanon import loads_json
from ._base import StoreBase, decode_all
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
    StepRecord,
    StreamEventRecord,
    accepted_batch,
    appended,
    ms_dt,
    new_run,
    new_step,
    new_stream_event,
    now_ms,
)
from ._restart import restart_statements
from ._retention import sqlite_prune, sqlite_usage
from ._sql import (
    RUN_COLUMNS,
    SQLITE,
    STEP_COLUMNS,
    completed_steps,
    run_record,
    step_record,
    stream_records,
)
from ._sqlite_schema import SQLITE_MIGRATIONS
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

__all__ = ["SQLiteDurableRunStore"]

_RESTART, _DROP_STEPS, _DROP_EVENTS = restart_statements("?", "?")

Durability = Literal["normal", "full"]
Q = SQLITE

# a new run is inserted already claimed (epoch 1); an existing one is claimed when it is
# free, ours or expired, has our manifest and is not completed
_CREATE = """
INSERT INTO durable_runs (run_id, manifest_hash, manifest, project_id, scenario_id, status,
    created_at_ms, updated_at_ms, lease_holder, lease_expires_at_ms, lease_epoch)
VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?6, ?7, ?8, 1)
ON CONFLICT (run_id) DO NOTHING
"""
_CLAIM = f"""
UPDATE durable_runs SET lease_holder = ?1, lease_expires_at_ms = ?2,
    lease_epoch = lease_epoch + 1, status = 'running', updated_at_ms = ?3
WHERE run_id = ?4 AND manifest_hash = ?5 AND status != 'completed'
    AND (lease_holder IS NULL OR lease_holder = ?1 OR lease_expires_at_ms <= ?3)
RETURNING {RUN_COLUMNS}
"""

_INSERT_STEP = (
    f"INSERT INTO durable_steps ({STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"
)

# the step-transition rule (`_steps.next_step`) for a recorded position: the WHERE leaves a
# completed step or another intent alone (then nothing is returned and the caller explains)
_UPSERT_STEP = f"""
INSERT INTO durable_steps ({STEP_COLUMNS})
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
RETURNING {STEP_COLUMNS}
"""

# touches no indexed column: a step commit costs one row update plus the step insert
_FENCE = "UPDATE durable_runs SET step_count = MAX(step_count, ?) WHERE run_id = ?"
_FENCE_HOLDER = _FENCE + " AND lease_holder = ?"
_FENCE_EPOCH = _FENCE_HOLDER + " AND lease_epoch = ?"

_END = (
    "UPDATE durable_runs SET status = ?, outcome = ?, lease_holder = NULL, "
    "lease_expires_at_ms = NULL, updated_at_ms = ? WHERE run_id = ?"
)
_END_RETURNING = {
    "any": f"{_END} RETURNING {RUN_COLUMNS}",
    "holder": f"{_END} AND lease_holder = ? RETURNING {RUN_COLUMNS}",
    "epoch": f"{_END} AND lease_holder = ? AND lease_epoch = ? RETURNING {RUN_COLUMNS}",
}

_NEXT_SEQ = "SELECT COALESCE(MAX(seq) + 1, 0) FROM durable_stream WHERE run_id = ?"
_INSERT_NEW_EVENT = f"{Q.insert_stream} ON CONFLICT (run_id, event_id) DO NOTHING"
# the rows of this batch (seq from its first on) when one of its ids proved already logged
_TAKE_BACK = "DELETE FROM durable_stream WHERE run_id = ? AND seq >= ?"
# the ids of a batch already logged: CROSS JOIN keeps the batch outside, so each id is one
# probe of the (run_id, event_id) index whatever the log's length
_LOGGED = (
    "SELECT s.seq, s.event_id, s.payload, s.created_at_ms "
    "FROM json_each(?2) AS j CROSS JOIN durable_stream AS s "
    "ON s.run_id = ?1 AND s.event_id = j.value"
)


def dumps_ids(ids: list[str]) -> str:
    """A list of checked ids as a JSON array, for `json_each`."""
    return orjson.dumps(ids).decode()


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
                for statement in split_statements(m.sql):
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
        return SQLiteTransaction(self._db, self._label)

    @property
    def _label(self) -> str:
        return f"SQLite store {self.path}"

    def _one(self, sql: str, params: Sequence[object]) -> list[Any]:
        """Run one statement as its own transaction (autocommit) and return its rows; a
        database error becomes `StoreUnavailableError`, as inside `_tx`."""
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self._label}: {exc}") from exc

    def _changed(self, sql: str, params: Sequence[object]) -> int:
        """Run one writing statement as its own transaction; how many rows it changed."""
        try:
            return self._db.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self._label}: {exc}") from exc

    def _missing_or_lost(
        self, run_id: str, worker_id: str | None, lease_epoch: int | None
    ) -> Exception:
        """Why a fenced write changed nothing: no such run, or another claim is current."""
        rows = self._one(Q.lease_of, (run_id,))
        if not rows:
            return not_found(run_id)
        return lease_lost(run_id, worker_id, lease_epoch, rows[0][0], rows[0][1])

    # -- runs and leases ---------------------------------------------------------------------

    async def _claim(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int
    ) -> StartOrResumeResult:
        # a new run: one statement creates it claimed; an existing one: one statement claims
        # it. Either commits on its own; the completed steps are read after the claim (a
        # former holder's writes after it are fenced), and a refused claim is explained
        # inside one transaction
        mhash = manifest.digest
        now = now_ms()
        expires = now + lease_ms
        params = (
            run_id,
            mhash,
            manifest.encoded,
            manifest.project_id,
            manifest.scenario_id,
            now,
            worker_id,
            expires,
        )
        if self._changed(_CREATE, params) == 1:
            return self._created(run_id, manifest, worker_id, now, expires)
        rows = self._one(_CLAIM, (worker_id, expires, now, run_id, mhash))
        if rows:
            row = rows[0]
            steps = (
                completed_steps(run_id, self._one(Q.completed_steps, (run_id,))) if row[12] else []
            )
            record = run_record(row)
            return StartOrResumeResult(record, steps, record.lease_expires_at)
        with self._tx() as db:
            now = now_ms()
            expires = now + lease_ms
            params = (*params[:5], now, worker_id, expires)
            if db.execute(_CREATE, params).rowcount == 1:  # removed meanwhile
                return self._created(run_id, manifest, worker_id, now, expires)
            row = db.execute(_CLAIM, (worker_id, expires, now, run_id, mhash)).fetchone()
            if row is None:
                row = db.execute(Q.load_run, (run_id,)).fetchone()
                if row[1] != mhash:
                    raise mismatch(run_id)
                if row[5] != "completed":
                    raise lease_held(run_id, row[8], row[9])
            # every step write raises step_count in its transaction: 0 means no step to read
            steps = (
                completed_steps(run_id, db.execute(Q.completed_steps, (run_id,))) if row[12] else []
            )
        record = run_record(row)
        claimed = record.status != "completed"
        return StartOrResumeResult(record, steps, record.lease_expires_at if claimed else None)

    @staticmethod
    def _created(
        run_id: str, manifest: DurableRunManifest, worker_id: str, now: int, expires: int
    ) -> StartOrResumeResult:
        """The record of a run `_CREATE` just inserted: what was written, nothing to read."""
        at = ms_dt(now)
        record = new_run(
            run_id,
            manifest.digest,
            manifest.project_id,
            manifest.scenario_id,
            "running",
            at,
            at,
            worker_id,
            ms_dt(expires),
            None,
            0,
            None,
            loads_json(manifest.encoded),
            1,
        )
        return StartOrResumeResult(record, [], record.lease_expires_at)

    async def _renew(
        self, run_id: str, worker_id: str, lease_ms: int, lease_epoch: int | None
    ) -> bool:
        return (
            self._changed(
                "UPDATE durable_runs SET lease_expires_at_ms = ? "
                "WHERE run_id = ? AND lease_holder = ? AND (? IS NULL OR lease_epoch = ?)",
                (now_ms() + lease_ms, run_id, worker_id, lease_epoch, lease_epoch),
            )
            == 1
        )

    async def _end(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: str,
        lease_epoch: int | None,
    ) -> RunRecord:
        params: tuple[object, ...] = (status, outcome, now_ms(), run_id)
        if worker_id is None:
            sql = _END_RETURNING["any"]
        elif lease_epoch is None:
            sql, params = _END_RETURNING["holder"], (*params, worker_id)
        else:
            sql, params = _END_RETURNING["epoch"], (*params, worker_id, lease_epoch)
        rows = self._one(sql, params)  # fenced and committed in one statement
        if not rows:
            raise self._missing_or_lost(run_id, worker_id, lease_epoch)
        return run_record(rows[0])

    async def _load_run(self, run_id: str) -> RunRecord | None:
        rows = self._one(Q.load_run, (run_id,))
        return run_record(rows[0]) if rows else None

    async def _list_runs(self, limit: int, status: RunStatus | None) -> list[RunRecord]:
        if status is None:
            rows = self._one(Q.list_runs, (limit,))
        else:
            rows = self._one(Q.list_runs_by_status, (status, limit))
        return [run_record(r) for r in rows]

    async def _set_handle(self, run_id: str, handle: RunHandle | None, encoded: str | None) -> None:
        changed = self._changed(
            "UPDATE durable_runs SET handle = ?, updated_at_ms = ? WHERE run_id = ?",
            (encoded, now_ms(), run_id),
        )
        if changed != 1:
            raise not_found(run_id)

    # -- steps -------------------------------------------------------------------------------

    async def _load_steps(self, run_id: str) -> list[StepRecord]:
        return [step_record(r) for r in self._one(Q.load_steps, (run_id,))]

    async def _load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        rows = self._one(Q.load_step, (run_id, step_index))
        return step_record(rows[0]) if rows else None

    async def _write_step(self, write: StepWrite) -> StepRecord:
        run_id, index, worker = write.run_id, write.step_index, write.worker_id
        now = now_ms()
        completed_at = None if write.status == "running" else now
        with self._tx() as db:
            if worker is None:
                cur = db.execute(_FENCE, (index + 1, run_id))
            elif write.lease_epoch is None:
                cur = db.execute(_FENCE_HOLDER, (index + 1, run_id, worker))
            else:
                cur = db.execute(_FENCE_EPOCH, (index + 1, run_id, worker, write.lease_epoch))
            if cur.rowcount != 1:
                raise self._missing_or_lost(run_id, worker, write.lease_epoch)
            intent, kind = write.intent, write.kind
            params = [
                run_id,
                index,
                intent,
                kind,
                write.input_hash,
                write.status,
                write.result,
                write.error,
                now,
                completed_at,
            ]
            if intent is not None:
                # common case: the first write of this position, a plain INSERT as any
                # hand-rolled loop would do; a recorded position takes the upsert below
                try:
                    db.execute(_INSERT_STEP, params)
                except sqlite3.IntegrityError:
                    pass
                else:
                    started = ms_dt(now)
                    return new_step(
                        run_id,
                        index,
                        intent,
                        kind,
                        write.input_hash,
                        write.status,
                        1,
                        None if write.result is None else loads_json(write.result),
                        None if write.error is None else loads_json(write.error),
                        started,
                        None if completed_at is None else started,
                    )
            else:
                prev = db.execute(
                    "SELECT intent, kind FROM durable_steps WHERE run_id = ? AND step_index = ?",
                    (run_id, index),
                ).fetchone()
                if prev is None:
                    raise step_not_begun(run_id, index)
                intent, kind = prev
                params[2], params[3] = intent, kind
            row = db.execute(_UPSERT_STEP, params).fetchone()
            if row is None:
                (recorded,) = db.execute(
                    "SELECT intent FROM durable_steps WHERE run_id = ? AND step_index = ?",
                    (run_id, index),
                ).fetchone()
                if recorded != intent:
                    raise diverged(run_id, index, recorded, intent)
                raise step_completed(run_id, index)
        return step_record(row)

    # -- events ------------------------------------------------------------------------------

    async def _emit(self, run_id: str, key: str, payload: str) -> EmitEventResult:
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM durable_runs WHERE run_id = ?", (run_id,)).fetchone()
                is None
            ):
                raise not_found(run_id)
            now = now_ms()
            cur = db.execute(
                "INSERT INTO durable_events (run_id, key, payload, created_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, key) DO NOTHING",
                (run_id, key, payload, now),
            )
            if cur.rowcount == 1:
                return EmitEventResult(
                    True, EventRecord(run_id, key, loads_json(payload), ms_dt(now))
                )
            row = db.execute(Q.load_event, (run_id, key)).fetchone()
        return EmitEventResult(False, EventRecord(run_id, key, loads_json(row[0]), ms_dt(row[1])))

    async def _load_event(self, run_id: str, key: str) -> EventRecord | None:
        rows = self._one(Q.load_event, (run_id, key))
        if not rows:
            return None
        return EventRecord(run_id, key, loads_json(rows[0][0]), ms_dt(rows[0][1]))

    # -- stream log --------------------------------------------------------------------------

    async def _append(
        self, run_id: str, event_ids: list[str], payloads: list[str]
    ) -> list[AppendStreamResult]:
        # the write lock is held from BEGIN IMMEDIATE: no other appender runs meanwhile
        with self._tx() as db:
            now = now_ms()
            created = ms_dt(now)
            (seq,) = db.execute(_NEXT_SEQ, (run_id,)).fetchone()
            n = len(event_ids)
            # optimistic: every id new, one row each with seq in batch order; an id logged
            # already (or earlier in the batch) is skipped by the unique index, and then this
            # batch's rows are taken back
            rows = zip(repeat(run_id), range(seq, seq + n), event_ids, payloads, repeat(now))
            if db.executemany(_INSERT_NEW_EVENT, rows).rowcount == n:
                return accepted_batch(run_id, seq, event_ids, decode_all(payloads), created)
            db.execute(_TAKE_BACK, (run_id, seq))
            # some ids are logged already (a retried batch) or repeat within the batch
            logged = {
                r[1]: (r[0], r[2], r[3])
                for r in db.execute(_LOGGED, (run_id, dumps_ids(event_ids)))
            }
            new_rows: list[tuple[str, int, str, str, int]] = []
            out: list[AppendStreamResult] = []
            for event_id, payload in zip(event_ids, payloads, strict=True):
                prior = logged.get(event_id)
                if prior is None:
                    logged[event_id] = (seq, payload, now)
                    new_rows.append((run_id, seq, event_id, payload, now))
                    rec = new_stream_event(run_id, seq, event_id, loads_json(payload), created)
                    out.append(appended(True, rec))
                    seq += 1
                else:
                    at = created if prior[2] == now else ms_dt(prior[2])
                    rec = new_stream_event(run_id, prior[0], event_id, loads_json(prior[1]), at)
                    out.append(appended(False, rec))
            if new_rows:
                db.executemany(Q.insert_stream, new_rows)
        return out

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        rows = self._one(Q.read_stream, (run_id, after_seq, -1 if limit is None else limit))
        return stream_records(run_id, rows)

    async def _stream_length(self, run_id: str) -> int:
        return int(self._one(_NEXT_SEQ, (run_id,))[0][0])

    # -- retention: a connection of its own in a worker thread (a prune may delete much) ------

    async def _prune(self, prefix: str, age_ms: int, at_ms: int | None, dry_run: bool) -> list[str]:
        self._file_only()
        cutoff = (now_ms() if at_ms is None else at_ms) - age_ms
        return await asyncio.to_thread(sqlite_prune, self.path, prefix, cutoff, dry_run)

    async def _usage(self, prefix: str) -> int:
        self._file_only()
        return await asyncio.to_thread(sqlite_usage, self.path, prefix)

    def _file_only(self) -> None:
        if self.path == ":memory:":
            raise ConfigurationError("retention and quotas need a SQLite file, not :memory:")

    async def close(self) -> None:
        self._db.close()

    # -- restarting a failed run -------------------------------------------------------------

    async def _restart_failed(
        self, run_id: str, manifest: DurableRunManifest, entry: tuple[str, str] | None
    ) -> RunRecord | None:
        params = (
            manifest.digest,
            manifest.encoded,
            manifest.project_id,
            manifest.scenario_id,
            now_ms(),
            run_id,
        )
        with self._tx() as db:
            row = db.execute(_RESTART, params).fetchone()
            if row is None:
                return None
            db.execute(_DROP_STEPS, (run_id,))
            db.execute(_DROP_EVENTS, (run_id,))
            if entry is not None:
                (seq,) = db.execute(_NEXT_SEQ, (run_id,)).fetchone()
                db.execute(_INSERT_NEW_EVENT, (run_id, seq, entry[0], entry[1], now_ms()))
        return run_record(row)
