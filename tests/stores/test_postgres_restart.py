"""PostgreSQL stopped and started while a worker process is stepping through a run: the run
resumes after reconnect with no lost and no duplicated step.

Restarting the server breaks every other test talking to it, so this file is marked `serial`
and `make test` runs it alone, after the parallel suite.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent_runtime.durable import open_store

from ..conftest import require
from .mp import result, spawn

pytestmark = [pytest.mark.serial, pytest.mark.slow]

CLUSTER = Path("/etc/postgresql")


def _cluster() -> tuple[str, str]:
    versions = sorted(p.name for p in CLUSTER.iterdir()) if CLUSTER.is_dir() else []
    require(
        bool(versions) and shutil.which("pg_ctlcluster") is not None,
        "pg_ctlcluster and a cluster under /etc/postgresql are needed to restart PostgreSQL",
    )
    return versions[-1], "main"


def _pg_ctl(action: str) -> None:
    version, name = _cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _wait_ready(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
    ).returncode:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


def test_run_survives_postgres_restart(pg_dsn: str, tmp_path: Path) -> None:
    _cluster()
    fx = tmp_path / "fx"
    fx.mkdir()
    steps = 30
    worker = spawn(
        {
            "mode": "run",
            "url": pg_dsn,
            "run_id": "restart",
            "fx": str(fx),
            "steps": steps,
            "step_ms": 60,
            "lease_ms": 15_000,
            "name": "w",
        }
    )
    try:
        deadline = time.monotonic() + 20
        progress = fx / f"progress-{worker.pid}"
        while not (progress.exists() and progress.read_text() and int(progress.read_text()) >= 5):
            assert time.monotonic() < deadline and worker.poll() is None, "worker made no progress"
            time.sleep(0.01)
        _pg_ctl("stop")  # fast shutdown: every connection of the worker is cut
        stopped_at = int(progress.read_text())
        time.sleep(1.0)  # the worker keeps stepping into a dead server meanwhile
        _pg_ctl("start")
        _wait_ready()
        out = result(worker, timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode:
            _pg_ctl("start")
        _wait_ready()

    assert out["outcome"] == "drove" and out["executed"] == steps
    assert out["retries"] > 0, "the outage should have been noticed and retried"
    assert stopped_at < steps - 1, "the run finished before the server went down"

    async def check() -> None:
        store = await open_store(pg_dsn)
        try:
            run = await store.load_run("restart")
            got = await store.load_steps("restart")
        finally:
            await store.close()
        assert run is not None and run.status == "completed" and run.outcome == steps
        assert [(s.step_index, s.status, s.attempts) for s in got] == [
            (i, "completed", 1) for i in range(steps)
        ]

    asyncio.run(check())
    ran = sorted(int(p.name.split("-")[1]) for p in fx.glob("step-*"))
    assert ran == list(range(steps))
    assert list(fx.glob("dup-*")) == []
