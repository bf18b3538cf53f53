"""Fixtures for task tests: llm-katan processes and in-process Starlette/uvicorn fake servers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette

from tests.katan import start_katan, stop_katan

KATAN_MODEL = "katan-echo"
KATAN_KEY = "test-key"


def _start_katan(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    return start_katan(tmp, *extra, name=KATAN_MODEL)


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a healthy llm-katan echo server (model `katan-echo`)."""
    proc, base = _start_katan(tmp_path_factory.mktemp("katan"), [])
    try:
        yield base
    finally:
        stop_katan(proc)


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
            stop_katan(p)


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
