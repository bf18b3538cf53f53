"""Run the installed `agent-runtime` console script as a user would: a real subprocess with a
clean environment (no model endpoint, so the echo backend; no store or verbosity settings),
a terminal width of our choosing (`COLUMNS`), in a folder of our choosing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("agent-runtime")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def cli(
    *args: str,
    cwd: Path | None = None,
    columns: int = 200,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env={**(env or clean_env()), "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
