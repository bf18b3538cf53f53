"""A real uvicorn server on a free 127.0.0.1 port, in a thread of the test process, with the
service's own connection guard (as `agent-runtime serve` runs it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import ConnectionGuard, create_app, uvicorn_config


@contextmanager
def serving(app: object, *, guard: ConnectionGuard | None = None) -> Iterator[str]:
    """Run `app` on uvicorn until the block exits; yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, guard=guard))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/runs.db"


@pytest.fixture
def echo_server(store_url: str) -> Iterator[str]:
    """The app with the echo backend on a fresh SQLite file (unauthenticated: loopback)."""
    with serving(
        create_app(store_url=store_url, backend=create_echo_backend(chunk_chars=4))
    ) as url:
        yield url
