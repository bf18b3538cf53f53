"""Crash test with real processes: SIGKILL a worker mid-run, resume in a fresh process."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent_runtime.durable import SQLiteDurableRunStore

CHILD = Path(__file__).with_name("crash_child.py")
STEPS = 200
CYCLES = 24
LEASE_MS = 600

pytestmark = pytest.mark.slow


def one_cycle(db: Path, tmp: Path, n: int, kill_at: int) -> dict[str, int]:
    delay = random.Random(n).uniform(0, 0.004)  # land the kill anywhere in the step cycle
    run_id = f"crash-{n}"
    effects = tmp / f"effects-{n}.log"
    args = [sys.executable, str(CHILD), str(db), run_id, str(effects), str(LEASE_MS)]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip().isdigit() and int(line) >= kill_at:
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL, "child finished before it could be killed"
    with sqlite3.connect(db) as conn:
        committed = conn.execute(
            "SELECT COUNT(*) FROM durable_steps WHERE run_id = ? AND status = 'completed'",
            (run_id,),
        ).fetchone()[0]
    before = Counter(int(x) for x in effects.read_text().split())
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert (
        resumed.stdout.strip()
        .splitlines()[-1]
        .startswith(f"done {sum(i * i for i in range(STEPS))} replayed={committed}")
    )
    counts = Counter(int(x) for x in effects.read_text().split())
    # every step ran; committed steps ran exactly once; only the step in flight at the kill
    # (position `committed`) may have run twice
    assert set(counts) == set(range(STEPS))
    for i in range(committed):
        assert counts[i] == 1, f"committed step {i} ran {counts[i]} times"
    rerun = [i for i, c in counts.items() if c > 1]
    assert set(rerun) <= {committed}
    assert all(c <= 2 for c in counts.values())
    return {
        "kill_at": kill_at,
        "committed": committed,
        "ran_before_kill": sum(before.values()),
        "reran": len(rerun),
    }


def test_sigkill_at_random_steps_then_resume(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    asyncio.run(SQLiteDurableRunStore(db).close())  # create the schema once
    rng = random.Random()
    points = sorted(rng.sample(range(1, STEPS - 5), CYCLES))
    with ThreadPoolExecutor(max_workers=4) as pool:
        figures = list(pool.map(lambda a: one_cycle(db, tmp_path, *a), enumerate(points)))
    print(f"\ncrash test: {CYCLES} SIGKILLs on a {STEPS}-step SQLite run")
    print(f"{'kill at':>8} {'committed':>10} {'ran':>6} {'re-ran':>7}")
    for f in figures:
        print(f"{f['kill_at']:>8} {f['committed']:>10} {f['ran_before_kill']:>6} {f['reran']:>7}")
    print(
        f"committed steps re-run: 0; in-flight steps re-run: {sum(f['reran'] for f in figures)}"
        f" of {CYCLES} kills"
    )
    with sqlite3.connect(db) as conn:
        statuses = conn.execute(
            "SELECT status, COUNT(*) FROM durable_runs GROUP BY status"
        ).fetchall()
    assert statuses == [("completed", CYCLES)]
