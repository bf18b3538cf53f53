"""Fixtures for task tests: llm-katan processes and in-process Starlette/uvicorn fake servers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette

from tests.conftest import require

KATAN = Path(sys.executable).with_name("llm-katan")
KATAN_MODEL = "katan-echo"
KATAN_KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_katan(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    require(KATAN.exists(), f"llm-katan is not installed at {KATAN}")
    port = _free_port()
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
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"llm-katan exited: {(tmp / 'katan.log').read_text()[-2000:]}")
        try:
            # /health does not count as a generation request, so failure modes keyed on the
            # request count (--rate-limit-after, --timeout-after) are not consumed here.
            if httpx2.get(f"{base}/health", timeout=1.0).status_code == 200:
                return proc, base
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llm-katan did not become ready within 30 s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a healthy llm-katan echo server (model `katan-echo`)."""
    proc, base = _start_katan(tmp_path_factory.mktemp("katan"), [])
    try:
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def katan_factory(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start llm-katan with extra flags (failure modes); every process is killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*flags: str) -> str:
        d = tmp_path / f"k{len(procs)}"
        d.mkdir()
        proc, base = _start_katan(d, list(flags))
        procs.append(proc)
        return base

    try:
        yield start
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


class ServedApp:
    """A Starlette app served by uvicorn on 127.0.0.1 inside the test's event loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self.server = server
        self.task = task
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def serve_app(app: Starlette) -> ServedApp:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.005)
    return ServedApp(server, task, port)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Starlette], object]]:
    """`await serve(app)` -> ServedApp; every server is stopped at teardown."""
    served: list[ServedApp] = []

    async def start(app: Starlette) -> ServedApp:
        s = await serve_app(app)
        served.append(s)
        return s

    try:
        yield start
    finally:
        for s in served:
            await s.stop()
