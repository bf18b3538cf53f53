"""The statements of `restart_failed_run` that the SQLite and PostgreSQL stores share.

A failed run restarts in place: the run row takes the new manifest and is `running` with a
free lease (the epoch is kept: the next claim counts on from it), its steps and keyed events
go, and its stream log stays (the caller appends where the new attempt starts). The row update
is conditional on `status = 'failed'`, so of two restarts racing only one changes anything.
"""

from __future__ import annotations

from ._sql import RUN_COLUMNS

__all__ = ["restart_statements"]


def restart_statements(placeholder: str, now: str) -> tuple[str, str, str]:
    """The row update (params: manifest hash, manifest, project, scenario, then the time
    when `now` is a placeholder, then the run id; returns `RUN_COLUMNS`), then the step and
    event deletes (param: the run id). `now` is the SQL of the current epoch milliseconds."""
    p = placeholder
    update = (
        f"UPDATE durable_runs SET manifest_hash = {p}, manifest = {p}, project_id = {p}, "
        f"scenario_id = {p}, status = 'running', outcome = NULL, handle = NULL, "
        f"lease_holder = NULL, lease_expires_at_ms = NULL, step_count = 0, updated_at_ms = {now} "
        f"WHERE run_id = {p} AND status = 'failed' RETURNING {RUN_COLUMNS}"
    )
    steps = f"DELETE FROM durable_steps WHERE run_id = {p}"
    events = f"DELETE FROM durable_events WHERE run_id = {p}"
    return update, steps, events
