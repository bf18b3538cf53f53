"""Processes opening one new SQLite store file at the same moment all get it: switching the
file to WAL needs it to itself, and SQLite does not wait for that on its own."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

PROCESSES = 8
ROUNDS = 6


def _open(path: str, barrier: Any) -> str:
    from agent_runtime.durable import SQLiteDurableRunStore

    barrier.wait()
    try:
        SQLiteDurableRunStore(path)
    except Exception as exc:  # reported to the test, which names it
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def test_processes_opening_a_new_file_at_once_all_get_it(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(PROCESSES) as pool:
        for round_ in range(ROUNDS):
            barrier = manager.Barrier(PROCESSES)
            path = str(tmp_path / f"runs-{round_}.db")
            results = pool.starmap(_open, [(path, barrier)] * PROCESSES)
            assert results == ["ok"] * PROCESSES, results
