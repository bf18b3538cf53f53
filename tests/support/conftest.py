"""Fixtures for the support tests: a real llm-katan echo server on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import require

KATAN = Path(sys.executable).with_name("llm-katan")
KATAN_MODEL = "katan-chat"
KATAN_KEY = "katan-valid-key-0123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llm_katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an llm-katan `--backend echo` server serving model `katan-chat`."""
    yield from start_katan(tmp_path_factory)


@pytest.fixture(scope="module")
def llm_katan_keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `llm_katan`, but only the API key `KATAN_KEY` is accepted."""
    yield from start_katan(tmp_path_factory, "--validate-keys", "--api-keys", f"openai={KATAN_KEY}")


def start_katan(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[str]:
    """Run llm-katan (echo backend) on a free port until the generator is closed."""
    require(KATAN.exists(), f"llm-katan is not installed at {KATAN}")
    port = _free_port()
    tmp = tmp_path_factory.mktemp("katan")
    log = (tmp / "katan.log").open("wb")
    proc = subprocess.Popen(
        [
            str(KATAN),
            "--backend",
            "echo",
            "--model",
            "echo",
            "--name",
            KATAN_MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stats-file",
            str(tmp / "stats.json"),
            "--disable-dashboard",
            "--log-level",
            "warning",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llm-katan exited: {(tmp / 'katan.log').read_text()[-2000:]}")
            try:
                r = httpx2.get(f"{base}/health")
                if r.status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llm-katan did not become ready within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
