"""The examples in examples/ run as the README says, and say what happened: the agent task
answers then blocks, and the crash-and-resume demo (`make demo`) shows worker A killed while a
step is in flight, that step started again by worker B, and every committed step run once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.docs.blocks import environment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_agent_task_example_answers_then_blocks(tmp_path: Path) -> None:
    out = _run(str(EXAMPLES / "agent_task.py"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "echo: Summarize:" in out.stdout
    assert "[release-notes-1] completed: backend completed" in out.stdout
    assert "[release-notes-0] blocked:" in out.stdout


def test_crash_and_resume_says_the_in_flight_step_runs_again(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = _run(
        str(EXAMPLES / "crash_and_resume.py"), "--db", str(db), "--run-id", "demo-1", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    a = [line.strip() for line in lines if line.strip().startswith("[A]")]
    b = [line.strip() for line in lines if line.strip().startswith("[B]")]
    assert a == [
        "[A] step 0 plan: started",
        "[A] step 0 plan: committed",
        "[A] step 1 search: started",
        "[A] step 1 search: committed",
        "[A] step 2 read: started",
    ]
    assert any(
        "killed" in line and "step 2 read" in line and "before it committed" in line
        for line in lines
    )
    replayed = [line for line in b if "replayed from the store" in line]
    assert [line.split(":")[0] for line in replayed] == ["[B] step 0 plan", "[B] step 1 search"]
    started = [line for line in b if line.endswith(": started")]
    assert started == [
        f"[B] step {i} {name}: started"
        for i, name in enumerate(
            ["plan", "search", "read", "extract", "compare", "draft", "review", "publish"]
        )
        if i >= 2
    ]
    assert "[B] run demo-1 completed: 2 steps replayed, 6 executed" in b
    assert any("started twice: read" in line for line in b)
    assert f"runs show demo-1 --store sqlite:///{db}" in lines[-1]
