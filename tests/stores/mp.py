"""Helpers of the multi-process store tests: spawn workers, start them together, read results."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("proc_worker.py")


def spawn(args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker {proc.pid} failed ({proc.returncode}):\n{err}"
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def release_together(
    sync_dir: Path, procs: list[subprocess.Popen[str]], timeout: float = 30
) -> None:
    """Wait until every worker is ready, then let them all go at once."""
    deadline = time.monotonic() + timeout
    while len(list(sync_dir.glob("ready-*"))) < len(procs):
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"worker {p.pid} exited early: {p.communicate()[1]}")
        assert time.monotonic() < deadline, "workers did not get ready"
        time.sleep(0.01)
    (sync_dir / "go").touch()


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "postgres":
        dsn: str = request.getfixturevalue("pg_dsn")
        return dsn
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    return f"file://{tmp_path}/files"
