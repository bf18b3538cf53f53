"""llm-katan, the independent OpenAI-compatible peer: start one on a free port, wait until it
answers, stop it. Shared by every test folder that talks to a real model server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.conftest import require

KATAN = Path(sys.executable).with_name("llm-katan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_katan(tmp: Path, *flags: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """Run `llm-katan --backend echo` serving model `name`; return the process and base URL.

    Readiness is polled on /health, which does not count as a generation request, so failure
    modes keyed on the request count (--rate-limit-after, --timeout-after) are not consumed.
    """
    require(KATAN.exists(), f"llm-katan is not installed at {KATAN}")
    port = free_port()
    log_path = tmp / "katan.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(KATAN),
                "--backend",
                "echo",
                "--model",
                "echo",
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--stats-file",
                str(tmp / "stats.json"),
                "--disable-dashboard",
                "--log-level",
                "warning",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"llm-katan exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{base}/health", timeout=1.0).status_code == 200:
                return proc, base
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_katan(proc)
            pytest.fail("llm-katan did not become ready within 30 s")
        time.sleep(0.05)


def stop_katan(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=10)


@contextmanager
def running_katan(tmp: Path, *flags: str, name: str) -> Iterator[str]:
    """`with running_katan(tmp, name=...) as base_url:` — stopped on exit."""
    proc, base = start_katan(tmp, *flags, name=name)
    try:
        yield base
    finally:
        stop_katan(proc)
