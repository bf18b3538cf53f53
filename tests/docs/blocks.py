"""Code blocks of a Markdown page, and how the docs test runs them.

A fenced block's info string is its language then flags: ```python and ```sh blocks run
(```bash too), ```python no-run marks one that only illustrates, and ```sh model one that needs
a model endpoint (OPENAI_BASE_URL and friends; the test points them at llm-katan). An
```output (or ```text output) block right after a runnable one is what that block prints on
stdout; `...` in it stands for any text within a line. Blocks of one page run in order in one folder, as a reader
would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

RUNNABLE = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
FLAGS = {"no-run", "model", "output"}
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (1-based line of the fence), its language, flags and
    text, and the output it is documented to print (None: not checked)."""

    path: Path
    line: int
    language: str
    flags: frozenset[str]
    code: str
    expected: str | None = None

    @property
    def runs(self) -> bool:
        return self.language in RUNNABLE and "no-run" not in self.flags

    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def parse(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of a page, each runnable one with the `output` block that follows it."""
    lines = (path.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].split()
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        language = info[0].lower() if info else ""
        flags = frozenset(info[1:]) if info else frozenset()
        is_output = language == "output" or "output" in flags  # ```output or ```text output
        if is_output and blocks and blocks[-1].runs and blocks[-1].expected is None:
            prev = blocks[-1]
            blocks[-1] = Block(
                prev.path, prev.line, prev.language, prev.flags, prev.code, "\n".join(body)
            )
            continue
        blocks.append(Block(path, start + 1, language, flags, "\n".join(body) + "\n"))
    return blocks


def unknown_flags(block: Block) -> set[str]:
    """Flags a runnable block carries that this runner does not know (a typo such as
    `no_run` would otherwise run a block meant to be skipped, or skip a check)."""
    return set(block.flags) - FLAGS if block.language in RUNNABLE else set()


def matches(expected: str, actual: str) -> bool:
    """`actual` has the lines of `expected`, where `...` matches any text within a line."""
    want = expected.rstrip("\n").splitlines()
    got = actual.rstrip("\n").splitlines()
    if len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        pattern = ".*?".join(re.escape(part) for part in w.split("..."))
        if not re.fullmatch(pattern, g.rstrip()):
            return False
    return True


def environment(model_env: dict[str, str] | None) -> dict[str, str]:
    """The environment of a block: the project's venv first on PATH, no model endpoint (the
    echo backend) unless the block asks for one, no store or verbosity settings of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "100"
    return {**env, **(model_env or {})}


def run(block: Block, cwd: Path, model_env: dict[str, str] | None = None) -> str | None:
    """Run one block in `cwd`; None when it ran (and printed what it documents), else what
    went wrong, with its output."""
    env = environment(model_env if "model" in block.flags else None)
    if RUNNABLE[block.language] == "python":
        script = cwd / f"block_{block.path.stem}_{block.line}.py"
        script.write_text(block.code)
        cmd = [sys.executable, str(script)]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return f"{block.where()}: did not finish within 120 s"
    if done.returncode != 0:
        return (
            f"{block.where()}: exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
            f"\n--- stderr\n{done.stderr[-3000:]}"
        )
    if block.expected is not None and not matches(block.expected, done.stdout):
        return (
            f"{block.where()}: printed something else than its output block\n"
            f"--- expected\n{block.expected}\n--- got\n{done.stdout}"
        )
    return None
