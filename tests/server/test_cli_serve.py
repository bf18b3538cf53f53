"""`agent-runtime serve|chat|run|models` as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest

from tests.katan import free_port

CLI = Path(sys.executable).with_name("agent-runtime")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"serve exited: {(tmp_path / 'serve.log').read_text()}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("serve did not answer /healthz within 30 s")
        time.sleep(0.05)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def test_serve_chat_and_models_against_the_server(served: str, tmp_path: Path) -> None:
    out = cli("chat", "hello server", "--url", served, "--session", "cli1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "echo: hello server"
    models = cli("models", "--url", served, "--json", cwd=tmp_path)
    assert models.returncode == 0 and orjson.loads(models.stdout) == ["echo"]
    # the default store is the SQLite file under ./.agent-runtime/ of the server's directory
    assert (tmp_path / ".agent-runtime" / "runs.db").exists()
    listed = cli("runs", "ls", "--json", cwd=tmp_path)
    # the durable run id names the tenant and user (here the unauthenticated local ones)
    assert "chat:local:local:cli1:0" in [r["runId"] for r in orjson.loads(listed.stdout)]


def test_chat_run_and_models_in_process(tmp_path: Path) -> None:
    out = cli("chat", "hi there", "--json", "--session", "local", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    events = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["type"] == "session.run.started"
    assert events[-1]["type"] == "session.run.completed"
    run = cli("run", "summarise the logs", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    task_events = [orjson.loads(line) for line in run.stdout.splitlines()]
    assert task_events[-1]["type"] == "final"
    assert task_events[-1]["status"] == "completed"
    deltas = "".join(e["text"] for e in task_events if e["type"] == "text_delta")
    assert deltas == "echo: summarise the logs"
    assert cli("models", cwd=tmp_path).stdout.strip() == "echo"


def test_chat_against_a_missing_server_fails_cleanly(tmp_path: Path) -> None:
    out = cli("chat", "x", "--url", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert out.returncode == 1 and "cannot reach" in out.stderr
    assert "Traceback" not in out.stderr


def test_openai_env_selects_the_endpoint(tmp_path: Path) -> None:
    from tests.katan import running_katan

    with running_katan(tmp_path, name="katan-cli") as base:
        env = {
            **_env(),
            "OPENAI_BASE_URL": f"{base}/v1",
            "OPENAI_API_KEY": "test-key",
            "OPENAI_MODEL": "katan-cli",
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(CLI), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )

        models = run("models", "--json")
        turn = run("chat", "what is durable?", "--json")
        other = run("chat", "and now?", "--json", "--model", "katan-other")
    assert models.returncode == 0, models.stderr
    assert "katan-cli" in orjson.loads(models.stdout)
    assert turn.returncode == 0, turn.stderr
    events = [orjson.loads(line) for line in turn.stdout.splitlines()]
    assert events[-1]["type"] == "session.run.completed"
    assert "".join(e["text"] for e in events if e["type"] == "text_delta").strip()
    assert [e["model"] for e in events if e["type"] == "llm_call"] == ["katan-cli"]
    assert other.returncode == 0, other.stderr
    asked = [orjson.loads(line) for line in other.stdout.splitlines()]
    assert [e["model"] for e in asked if e["type"] == "llm_call"] == ["katan-other"]


def test_serve_on_a_sqlite_file_it_cannot_create_says_so_in_one_line(tmp_path: Path) -> None:
    """The file's folder cannot exist (under a regular file): the server still binds, answers
    /readyz 503, and the log names the file and the reason on one line, no traceback."""
    (tmp_path / "a-file").write_text("")
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--store", f"sqlite:///{tmp_path}/a-file/x.db"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                ready = httpx2.get(f"{url}/readyz", timeout=1)
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.05)
        assert ready.status_code == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert "Traceback" not in out
    assert f"cannot open SQLite file {tmp_path}/a-file/x.db" in out
