"""Liveness and readiness, and the truth about a turn whose store write failed: `/healthz`
says the process runs; `/readyz` says whether the store takes a write and gives it back
(PostgreSQL unreachable, a full disk) and reports the backend. A turn cut off by a full disk
ends saying it was interrupted (its run is still open), and is completed once the disk has
room again. A cursor past any seq is a 422 on every store."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import create_app
from tests.conftest import require
from tests.katan import free_port
from tests.server.conftest import serving


def test_healthz_and_readyz_are_json(echo_server: str) -> None:
    live = httpx2.get(f"{echo_server}/healthz")
    assert live.status_code == 200 and live.json() == {"status": "ok", "backend": "echo"}
    ready = httpx2.get(f"{echo_server}/readyz")
    assert ready.status_code == 200 and ready.headers["content-type"] == "application/json"
    body = ready.json()
    assert body["status"] == "ready" and body["store"]["ok"] is True
    assert body["store"]["free_bytes"] > 0
    assert body["backend"] == {"kind": "echo", "reachable": True}
    # the probe's write goes to one health run, however often it is asked
    for _ in range(3):
        assert httpx2.get(f"{echo_server}/readyz").status_code == 200


def test_readyz_with_postgresql_unreachable(tmp_path: Path) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    app = create_app(store_url=closed, backend=create_echo_backend(), sweep_interval_ms=None)
    with serving(app) as url:  # the process starts; it is live but not ready
        assert httpx2.get(f"{url}/healthz").status_code == 200
        ready = httpx2.get(f"{url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable" and body["store"]["ok"] is False
        assert "PostgreSQL" in body["store"]["error"] or "connect" in body["store"]["error"]
        turn = httpx2.post(
            f"{url}/api/chat", json={"session_id": "s", "turn_index": 0, "text": "x"}
        )
        assert turn.status_code == 503 and turn.json()["error"]["code"] == "store_unavailable"
        events = httpx2.get(f"{url}/api/runs/chat:s:0/events")
        assert events.status_code == 503


def _mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


class _Disk:
    """A disk worker process and its stdin commands."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        worker = [sys.executable, "-m", "tests.server.disk_worker", str(folder), str(self.port)]
        if _mount_works():
            mount = f"mount -t tmpfs -o size=4m tmpfs {folder}"
            command = [
                "unshare",
                "-rm",
                "sh",
                "-c",
                f'{mount} && exec "$@"',
                "sh",
                *worker,
                "tmpfs",
            ]
        else:
            command = [*worker, "fsize"]
        self.mode = command[-1]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self._line() == "ready"
        self.url = f"http://127.0.0.1:{self.port}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().strip()

    def command(self, what: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{what}\n".encode())
        self.proc.stdin.flush()
        expected = {"fill": "filled", "free": "freed"}[what]
        while (line := self._line()) != expected:
            assert line, "the disk worker exited"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[_Disk]:
    folder = tmp_path / "store"
    folder.mkdir()
    worker = _Disk(folder)
    try:
        yield worker
    finally:
        worker.close()


def test_readyz_with_a_full_disk(disk: _Disk) -> None:
    url = disk.url
    assert httpx2.get(f"{url}/readyz").status_code == 200
    disk.command("fill")
    ready = httpx2.get(f"{url}/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["store"]["ok"] is False and ready.json()["store"]["error"]
    assert httpx2.get(f"{url}/healthz").status_code == 200  # alive all the same
    disk.command("free")
    assert httpx2.get(f"{url}/readyz").status_code == 200


def _lines(body: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in body.splitlines() if x]


def test_a_turn_whose_store_write_fails_says_how_the_run_stands(disk: _Disk) -> None:
    url = disk.url
    body = {"session_id": "full", "turn_index": 0, "text": "go"}
    with (
        httpx2.Client(timeout=30) as client,
        client.stream("POST", f"{url}/api/chat", json=body) as response,
    ):
        lines = response.iter_lines()
        assert orjson.loads(next(lines))["type"] == "session.run.started"
        assert orjson.loads(next(lines))["type"] == "text_delta"
        disk.command("fill")  # the next writes of the turn's log fail
        rest = [orjson.loads(x) for x in lines if x]
    assert rest[-1]["type"] == "session.run.interrupted", rest[-3:]  # not "failed"
    assert rest[-1]["data"]["executionId"] == "chat:full:0"
    disk.command("free")
    deadline = time.monotonic() + 30
    while True:  # the orphan sweep finishes the turn once its lease lapsed and there is room
        closing = _lines(httpx2.get(f"{url}/api/runs/chat:full:0/events").text)[-1]["payload"]
        if closing["type"] == "session.run.completed":
            break
        assert time.monotonic() < deadline, closing
        time.sleep(0.2)
    assert closing["data"]["finalText"].startswith("w0 w1 ")


@pytest.mark.parametrize("kind", ["memory", "sqlite", "file", "postgres"])
def test_a_cursor_past_any_seq_is_422_on_every_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = {
        "memory": "memory:",
        "sqlite": f"sqlite:///{tmp_path}/runs.db",
        "file": f"file://{tmp_path}/files",
    }.get(kind) or request.getfixturevalue("pg_dsn")
    require(bool(url), "no store")
    app = create_app(store_url=url, backend=create_echo_backend(), sweep_interval_ms=None)
    with serving(app) as base:
        turn = httpx2.post(
            f"{base}/api/chat", json={"session_id": "c", "turn_index": 0, "text": "x"}
        )
        assert turn.status_code == 200
        events = f"{base}/api/runs/chat:c:0/events"
        for after in ("9223372036854775808", "18446744073709551616", "9" * 30):
            for params, headers in (({"after": after}, {}), ({}, {"last-event-id": after})):
                r = httpx2.get(events, params=params, headers=headers)
                assert r.status_code == 422, (after, r.text)
                assert r.json()["error"]["code"] == "invalid_argument"
        last = httpx2.get(events, params={"after": "9223372036854775807"})
        assert last.status_code == 200
        assert [orjson.loads(x)["payload"]["type"] for x in last.text.splitlines()] == [
            "session.run.completed"
        ]
