"""An observable server: `agent-runtime serve` binds before it says where it serves, logs one
structured line per request (text or JSON) and one line per failure with its error code, and
answers unknown routes, wrong methods and oversized bodies with the JSON error shape."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from agent_runtime.errors import StoreUnavailableError
from agent_runtime.server import LineFormatter
from tests.katan import free_port

CLI = Path(sys.executable).with_name("agent-runtime")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("access")
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), "--log-format", "json", "--max-body", "2KB"],
            cwd=tmp, env=_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        try:
            yield url, log
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def _records(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _wait_for(log: Path, predicate: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        for record in _records(log):
            if predicate(record):
                return record
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_json_access_log_lines(served: tuple[str, Path]) -> None:
    url, log = served
    first = _records(log)[0]
    assert first["message"] == f"serving on {url}"  # said once bound, with the real address
    assert first["auth"].startswith("unauthenticated")
    turn = httpx2.post(f"{url}/api/chat", json={"session_id": "al", "turn_index": 0, "text": "x"})
    assert turn.status_code == 200
    record = _wait_for(log, lambda r: r.get("path") == "/api/chat" and r.get("status") == 200)
    assert record["message"] == "request" and record["method"] == "POST"
    assert record["execution_id"] == "chat:al:0" and record["tenant"] == "local"
    assert isinstance(record["duration_ms"], float) and record["level"] == "info"
    httpx2.get(f"{url}/nowhere")
    missing = _wait_for(log, lambda r: r.get("path") == "/nowhere")
    assert missing["status"] == 404 and missing["code"] == "not_found"


def test_json_error_bodies_for_404_405_413(served: tuple[str, Path]) -> None:
    url, _ = served
    cases = [
        (httpx2.get(f"{url}/no/such/route"), 404, "not_found"),
        (httpx2.get(f"{url}/api/no/such/route"), 404, "not_found"),
        (httpx2.get(f"{url}/missing.png"), 404, "not_found"),
        (httpx2.get(f"{url}/api/chat"), 405, "method_not_allowed"),
        (httpx2.put(f"{url}/healthz"), 405, "method_not_allowed"),
        (
            httpx2.post(
                f"{url}/api/chat",
                json={"session_id": "big", "turn_index": 0, "text": "a" * 20_000},
            ),
            413,
            "body_too_large",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.url
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == code and error["type"] and error["message"]
    assert cases[3][0].headers["allow"] == "POST"


def test_serve_binds_first_then_says_where(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        out = subprocess.run(
            [str(CLI), "serve", "--port", str(port)],
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        taken.close()
    assert out.returncode == 1
    assert "cannot bind" in out.stderr and "serving on" not in out.stderr
    assert "code=bind_failed" in out.stderr and "Traceback" not in out.stderr


def test_serve_refuses_an_unauthenticated_public_bind(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(CLI), "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "refusing to serve 0.0.0.0" in out.stderr
    assert "serving on" not in out.stderr


def test_serve_with_keys_may_bind_any_address(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("serve-test-key-0123456789=t:u\n")
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "serve", "--host", "0.0.0.0", "--port", str(port), "--api-keys-file",
         str(keys)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"serving on http://0.0.0.0:{port}" in line and "1 API keys" in line
        r = httpx2.get(
            f"http://127.0.0.1:{port}/api/models",
            headers={"authorization": "Bearer serve-test-key-0123456789"},
        )
        assert r.status_code == 200
        assert httpx2.get(f"http://127.0.0.1:{port}/api/models").status_code == 401
        chat = [str(CLI), "chat", "hi", "--url", f"http://127.0.0.1:{port}"]
        keyed = {**_env(), "AGENT_RUNTIME_API_KEY": "serve-test-key-0123456789"}
        ok = subprocess.run(chat, env=keyed, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and ok.stdout.strip() == "echo: hi", ok.stderr
        refused = subprocess.run(chat, env=_env(), capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "401" in refused.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _record(msg: str, *args: Any, exc: BaseException | None = None, **fields: Any) -> Any:
    record = logging.LogRecord("agent_runtime.server", logging.WARNING, "x", 1, msg, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, None)
    if fields:
        record.fields = fields
    return record


def test_log_lines_are_one_line_scrubbed_with_the_error_code() -> None:
    text, as_json = LineFormatter("text"), LineFormatter("json")
    error = StoreUnavailableError("cannot reach postgresql://app:hunter2secret@db:5432/x\nretry")
    line = text.format(_record("store lost: %s", error, exc=error))
    assert "\n" not in line and "hunter2secret" not in line
    assert "code=store_unavailable" in line and "error=StoreUnavailableError" in line
    doc = orjson.loads(as_json.format(_record("request", path="/api/chat", status=200)))
    assert doc["message"] == "request" and doc["path"] == "/api/chat" and doc["status"] == 200
    keyed = as_json.format(_record("x", api_key="sk-proj-abcdefghijklmnopqrstuvwxyz0123"))
    assert "abcdefghijklmnop" not in keyed


def test_a_traceback_logged_as_text_is_cut_to_its_exception() -> None:
    """Starlette logs a failed start-up as the formatted traceback: one line, the exception."""
    try:
        raise RuntimeError("cannot open postgresql://app:hunter2secret@db/x")
    except RuntimeError:
        import traceback

        formatted = traceback.format_exc()
    line = LineFormatter("text").format(_record(formatted))
    assert "\n" not in line and "Traceback" not in line and "hunter2secret" not in line
    assert "cannot open postgresql://" in line and "error=RuntimeError" in line
