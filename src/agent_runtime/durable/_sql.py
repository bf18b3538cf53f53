"""What the SQLite and PostgreSQL stores share: column lists, row decoders, read statements.

Both schemas have the same tables and columns (times in epoch milliseconds, JSON as text), so
a row reads the same from either driver. Statements are written once and rendered for a
placeholder style (`?` for sqlite3, `%s` for psycopg); what differs (where "now" comes from,
the function calls of PostgreSQL) stays in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ..jsoncanon import loads_json
from ._records import (
    RunHandle,
    RunRecord,
    StepRecord,
    StreamEventRecord,
    completed_steps_of,
    new_run,
    new_step,
    new_stream_event,
)

__all__ = [
    "COMPLETED_COLUMNS",
    "RUN_COLUMNS",
    "STEP_COLUMNS",
    "STREAM_COLUMNS",
    "Statements",
    "completed_steps",
    "run_record",
    "step_record",
    "stream_records",
]

RUN_COLUMNS = (
    "run_id, manifest_hash, manifest, project_id, scenario_id, status, created_at_ms, "
    "updated_at_ms, lease_holder, lease_expires_at_ms, lease_epoch, outcome, step_count, handle"
)
STEP_COLUMNS = (
    "run_id, step_index, intent, kind, input_hash, status, attempts, result, error, "
    "started_at_ms, completed_at_ms"
)
# a completed step as resume reads it: the run and the status are known, the error is NULL
COMPLETED_COLUMNS = (
    "step_index, intent, kind, input_hash, attempts, result, started_at_ms, completed_at_ms"
)
STREAM_COLUMNS = "seq, event_id, payload, created_at_ms"

_fromtimestamp = datetime.fromtimestamp


def _dt(ms: int) -> datetime:
    return _fromtimestamp(ms / 1000, tz=UTC)


def run_record(row: Sequence[Any]) -> RunRecord:
    """A `RUN_COLUMNS` row as a `RunRecord`."""
    expires, outcome, handle = row[9], row[11], row[13]
    created = _dt(row[6])
    return new_run(
        row[0],
        row[1],
        row[3],
        row[4],
        row[5],
        created,
        created if row[7] == row[6] else _dt(row[7]),
        row[8],
        None if expires is None else _dt(expires),
        None if outcome is None else loads_json(outcome),
        row[12],
        None if handle is None else RunHandle.from_dict(loads_json(handle)),
        loads_json(row[2]),
        row[10],
    )


def step_record(row: Sequence[Any]) -> StepRecord:
    """A `STEP_COLUMNS` row as a `StepRecord`."""
    started_ms, completed_ms = row[9], row[10]
    started = None if started_ms is None else _dt(started_ms)
    return new_step(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        None if row[7] is None else loads_json(row[7]),
        None if row[8] is None else loads_json(row[8]),
        started,
        started
        if completed_ms == started_ms
        else None
        if completed_ms is None
        else _dt(completed_ms),
    )


def completed_steps(run_id: str, rows: Iterable[Sequence[Any]]) -> list[StepRecord]:
    """`COMPLETED_COLUMNS` rows as `StepRecord`s, built in bulk: resume hands every completed
    step to the task, so this is the replay path's cost."""
    return completed_steps_of(run_id, rows, orjson.loads)


def stream_records(run_id: str, rows: Iterable[Sequence[Any]]) -> list[StreamEventRecord]:
    """`STREAM_COLUMNS` rows as `StreamEventRecord`s, in bulk (a replay reads many)."""
    seen: dict[int, datetime] = {}
    out: list[StreamEventRecord] = []
    append = out.append
    for seq, event_id, payload, created_ms in rows:
        created = seen.get(created_ms)
        if created is None:
            created = seen[created_ms] = _dt(created_ms)
        append(new_stream_event(run_id, seq, event_id, loads_json(payload), created))
    return out


class Statements:
    """The statements both stores run, rendered for one placeholder style; `list_order`
    is how the dialect walks runs newest first."""

    def __init__(self, p: str, list_order: str) -> None:
        self.load_run = f"SELECT {RUN_COLUMNS} FROM durable_runs WHERE run_id = {p}"
        self.list_runs = f"SELECT {RUN_COLUMNS} FROM durable_runs ORDER BY {list_order} LIMIT {p}"
        self.list_runs_by_status = (
            f"SELECT {RUN_COLUMNS} FROM durable_runs WHERE status = {p} "
            f"ORDER BY {list_order} LIMIT {p}"
        )
        self.load_steps = (
            f"SELECT {STEP_COLUMNS} FROM durable_steps WHERE run_id = {p} ORDER BY step_index"
        )
        self.load_step = (
            f"SELECT {STEP_COLUMNS} FROM durable_steps WHERE run_id = {p} AND step_index = {p}"
        )
        self.completed_steps = (
            f"SELECT {COMPLETED_COLUMNS} FROM durable_steps "
            f"WHERE run_id = {p} AND status = 'completed' ORDER BY step_index"
        )
        self.load_event = (
            f"SELECT payload, created_at_ms FROM durable_events WHERE run_id = {p} AND key = {p}"
        )
        self.read_stream = (
            f"SELECT {STREAM_COLUMNS} FROM durable_stream "
            f"WHERE run_id = {p} AND seq > {p} ORDER BY seq LIMIT {p}"
        )
        self.stream_by_ids = (
            f"SELECT {STREAM_COLUMNS} FROM durable_stream WHERE run_id = {p} AND event_id = {p}"
        )
        self.insert_stream = (
            "INSERT INTO durable_stream (run_id, seq, event_id, payload, created_at_ms) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})"
        )
        self.lease_of = f"SELECT lease_holder, lease_epoch FROM durable_runs WHERE run_id = {p}"


SQLITE = Statements("?", "rowid DESC")
# the PostgreSQL listing order has an index (durable_runs_created)
POSTGRES = Statements("%s", "created_at_ms DESC, run_id DESC")
