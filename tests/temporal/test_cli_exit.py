"""Once the Temporal SDK's native bridge is loaded the CLI ends without interpreter
finalization (its Tokio threads can abort a finished command there), yet exits as any other
command: the same status, every byte of stdout and stderr, and the exit handlers run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, os, sys
if sys.argv[2] == "bridge":
    import temporalio.bridge.temporal_sdk_bridge
from agent_runtime.cli import main

class Probe:  # says so when the interpreter finalizes it
    def __del__(self, write=os.write):
        write(2, b"[finalized]")

probe = Probe()
marker = sys.argv[1]
atexit.register(lambda: open(marker, "w").write("ran"))
sys.argv = ["agent-runtime", *sys.argv[3:]]
main()
"""


def _cli(marker: Path, *args: str, bridge: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(marker), "bridge" if bridge else "-", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_done_command_keeps_its_output_and_exit_handlers(tmp_path: Path) -> None:
    done = _cli(tmp_path / "done", "runs", "ls", "--store", "memory:", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "done").read_text() == "ran"
    assert "[finalized]" not in done.stderr

    helped = _cli(tmp_path / "help", "--help")
    assert helped.returncode == 0
    assert "Run durable tasks and chat turns on Temporal" in helped.stdout


def test_a_failed_command_keeps_its_status_and_message(tmp_path: Path) -> None:
    bad = _cli(tmp_path / "bad", "temporal", "emit", "run-1", "k", "x{")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: payload is not JSON")
    assert (tmp_path / "bad").read_text() == "ran"

    unknown = _cli(tmp_path / "unknown", "no-such-command")
    assert unknown.returncode == 2
    assert "No such command" in unknown.stderr


def test_without_the_bridge_the_interpreter_finalizes_as_usual(tmp_path: Path) -> None:
    done = _cli(tmp_path / "done", "runs", "ls", "--store", "memory:", "--json", bridge=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "done").read_text() == "ran"
    assert "[finalized]" in done.stderr
