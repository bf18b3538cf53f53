"""`agent-runtime chat` and `run` show a `waiting for the first token…` status line on a
terminal's stderr until the answer starts, then clear it; piped, or with `--json`, nothing of
it is printed. The terminal is a real pseudo-terminal; the model is llm-katan answering after a
delay, so the status is up while the command waits."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clirun import CLI, clean_env
from tests.katan import running_katan

MODEL = "katan-status"
STATUS = "waiting for the first token"


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("katan-slow")
    with running_katan(tmp, "--latency-ms", "600", name=MODEL) as base:
        yield clean_env(
            OPENAI_BASE_URL=f"{base}/v1", OPENAI_API_KEY="k", OPENAI_MODEL=MODEL, TERM="xterm"
        )


def _with_stderr_on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, str]:
    """Run the CLI with stdout piped and stderr on a pseudo-terminal; (stdout, terminal)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(CLI), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=follower
        )
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the follower side closed: the process is done with the terminal
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(leader)
    assert proc.returncode == 0, seen.decode(errors="replace")
    return out.decode(), seen.decode(errors="replace")


@pytest.mark.parametrize("command", ["chat", "run"])
def test_a_terminal_sees_the_status_until_the_first_token(
    slow_model: dict[str, str], tmp_path: Path, command: str
) -> None:
    out, terminal = _with_stderr_on_a_terminal([command, "hello"], tmp_path, slow_model)
    assert out.strip()  # the answer, on stdout
    assert STATUS in terminal
    assert "\x1b[2K" in terminal or "\r" in terminal  # the status line is cleared afterwards


def test_piped_or_json_output_has_no_status(slow_model: dict[str, str], tmp_path: Path) -> None:
    piped = subprocess.run(
        [str(CLI), "chat", "hello"], cwd=tmp_path, env=slow_model, capture_output=True, text=True
    )
    assert piped.returncode == 0 and STATUS not in piped.stderr
    _, terminal = _with_stderr_on_a_terminal(["chat", "hello", "--json"], tmp_path, slow_model)
    assert STATUS not in terminal
