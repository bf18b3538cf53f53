"""A slow-connection flood under a low file-descriptor limit: 300 connections that send their
headers a byte a second, kept open (re-opened when dropped), against a server allowed 256
descriptors. The server drops slow connections (header deadline, then shedding the oldest at
its connection cap) and a legitimate probe keeps being served throughout."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2

from tests.katan import free_port

FD_LIMIT = 256
FLOOD = 300


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


class _Flood:
    """Slowloris: each connection sends a partial request, then a byte a second."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socks: list[socket.socket | None] = [None] * FLOOD
        self.dropped = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.setblocking(False)
            sock.send(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
            self.socks[i] = sock
        except OSError:
            self.socks[i] = None

    def _run(self) -> None:
        for i in range(FLOOD):
            self._open(i)
        while not self.stop.is_set():
            for i, sock in enumerate(self.socks):
                if sock is None:
                    self._open(i)
                    continue
                try:
                    if sock.recv(4096) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    self.dropped += 1
                    sock.close()
                    self._open(i)
                    continue
                try:
                    sock.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    self.dropped += 1
                    sock.close()
                    self._open(i)
            self.stop.wait(1.0)
        for sock in self.socks:
            if sock is not None:
                sock.close()


def test_a_probe_keeps_succeeding_under_a_slow_connection_flood(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.server.flood_worker", str(port),
         f"sqlite:///{tmp_path}/runs.db", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_fds,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        url = f"http://127.0.0.1:{port}"
        flood = _Flood(port)
        flood.thread.start()
        time.sleep(1.0)  # the flood is open: more connections than the server has descriptors
        statuses = []
        failures = []
        with httpx2.Client(timeout=10) as client:
            for _ in range(25):
                statuses.append(
                    client.get(f"{url}/healthz", headers={"connection": "close"}).status_code
                )
                chat = client.post(
                    f"{url}/api/chat",
                    json={"session_id": f"p{len(statuses)}", "turn_index": 0, "text": "ok"},
                    headers={"connection": "close"},
                )
                statuses.append(chat.status_code)
                if chat.status_code != 200:
                    failures.append(chat.text[:500])
                time.sleep(0.2)
        flood.stop.set()
        flood.thread.join(timeout=30)
        assert statuses == [200] * len(statuses), failures
        assert flood.dropped > FLOOD - FD_LIMIT  # the server dropped slow connections
        assert proc.poll() is None  # and is still serving
    finally:
        proc.kill()
        proc.wait(timeout=10)
