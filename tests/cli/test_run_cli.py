"""`agent-runtime run`: one task through `run_agent_task_stream` on the configured backend, as
a real subprocess — the echo backend (no OPENAI_BASE_URL), llm-katan, and llm-katan refusing
the key (a failing backend)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.katan import running_katan

CLI = Path(sys.executable).with_name("agent-runtime")
MODEL = "katan-run"
SUMMARY = re.compile(
    r"^(?P<status>\w+) · tokens (?P<tin>\S+) in / (?P<tout>\S+) out · cost (?P<cost>\S+)"
    r" · (?P<secs>\d+\.\d\d) s$"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "run", *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_katan(tmp_path_factory.mktemp("katan"), name=MODEL) as base:
        yield f"{base}/v1"


@pytest.fixture(scope="module")
def refusing_katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llm-katan that accepts only another API key: every request is a 401."""
    tmp = tmp_path_factory.mktemp("katan-keys")
    flags = ("--validate-keys", "--api-keys", "openai=the-right-key")
    with running_katan(tmp, *flags, name=MODEL) as base:
        yield f"{base}/v1"


def _openai(base_url: str, key: str = "test-key") -> dict[str, str]:
    return _env(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=key, OPENAI_MODEL=MODEL)


def test_echo_prints_the_answer_then_one_summary_line(tmp_path: Path) -> None:
    out = run("summarise the logs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "echo: summarise the logs\n"
    summary = out.stderr.strip().splitlines()
    assert len(summary) == 1, out.stderr
    m = SUMMARY.match(summary[0])
    assert m is not None, summary
    # the echo backend calls no model: tokens and cost are unknown, never a made-up 0
    assert m["status"] == "completed" and (m["tin"], m["tout"], m["cost"]) == ("-", "-", "-")


def test_model_text_is_never_rich_markup(tmp_path: Path) -> None:
    out = run("[bold red]loud[/bold red] :smile:", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "echo: [bold red]loud[/bold red] :smile:\n"


def test_json_prints_every_event_as_its_wire_form(tmp_path: Path) -> None:
    out = run("summarise the logs", "--json", "--id", "t-7", "--domain", "ops", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no summary line in --json mode
    got = events(out.stdout)
    types = [e["type"] for e in got]
    assert types[:5] == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "session_created",
        "backend_start",
    ]
    assert types[-3:] == ["backend_end", "task_end", "final"]
    assert set(types[5:-3]) == {"text_delta"}
    task = got[0]["task"]
    assert task["id"] == "t-7" and task["domain"] == "ops"
    assert task["intent"] == "Carry out the task given on the command line."  # never user text
    assert all(e["task"] == task and "timestamp" in e for e in got)
    final = got[-1]
    assert final["status"] == "completed" and final["reason"] == "backend completed"
    assert final["text"] == "echo: summarise the logs"
    assert "".join(e["text"] for e in got if e["type"] == "text_delta") == final["text"]
    assert got[2]["decision"]["status"] == "ready"


def test_katan_summary_counts_the_reported_tokens(katan: str, tmp_path: Path) -> None:
    out = run("what is a durable run?", cwd=tmp_path, env=_openai(katan))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    m = SUMMARY.match(out.stderr.strip())
    assert m is not None, out.stderr
    assert m["status"] == "completed"
    assert int(m["tin"]) > 0 and int(m["tout"]) > 0
    assert m["cost"] == "-"  # the model has no price: unknown, not $0


def test_katan_json_has_one_llm_call_with_usage(katan: str, tmp_path: Path) -> None:
    out = run("what is a durable run?", "--json", cwd=tmp_path, env=_openai(katan))
    assert out.returncode == 0, out.stderr
    got = events(out.stdout)
    calls = [e for e in got if e["type"] == "llm_call"]
    assert len(calls) == 1 and calls[0]["tokensOut"] > 0 and "costUsd" not in calls[0]
    assert got[-1]["type"] == "final" and got[-1]["status"] == "completed"


def test_a_failing_backend_exits_non_zero_with_a_failed_summary(
    refusing_katan: str, tmp_path: Path
) -> None:
    out = run("hello", cwd=tmp_path, env=_openai(refusing_katan, key="the-wrong-key"))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert "401" in lines[0] and "the-wrong-key" not in out.stderr
    m = SUMMARY.match(lines[-1])
    assert m is not None, out.stderr
    assert m["status"] == "failed" and (m["tin"], m["cost"]) == ("-", "-")


def test_a_failing_backend_in_json_mode_ends_with_a_failed_final(
    refusing_katan: str, tmp_path: Path
) -> None:
    out = run("hello", "--json", cwd=tmp_path, env=_openai(refusing_katan, key="wrong"))
    assert out.returncode == 1
    got = events(out.stdout)
    assert [e["type"] for e in got[-3:]] == ["backend_error", "task_end", "final"]
    error, final = got[-3], got[-1]
    assert error["recoverable"] is True and error["error"]["kind"] == "transport"
    assert error["error"]["status"] == 401
    assert final["status"] == "failed" and final["error"]["status"] == 401
    assert "backend_end" not in [e["type"] for e in got]


def test_a_bad_endpoint_setting_is_a_usage_error(tmp_path: Path) -> None:
    out = run("hello", cwd=tmp_path, env=_env(OPENAI_BASE_URL="not a url"))
    assert out.returncode == 2
    assert "OPENAI_BASE_URL" in out.stderr and "Traceback" not in out.stderr


def test_ctrl_c_aborts_the_task(tmp_path: Path) -> None:
    """SIGINT while the backend waits for the model: the run ends `aborted`, not a traceback."""
    with running_katan(tmp_path, "--latency-ms", "30000", name=MODEL) as base:
        proc = subprocess.Popen(
            [str(CLI), "run", "hello", "--json"],
            cwd=tmp_path,
            env=_openai(f"{base}/v1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:
                seen.append(orjson.loads(line))
                if seen[-1]["type"] == "backend_start":
                    break
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    got = seen + events(rest)
    assert proc.returncode == 1, err
    assert [e["type"] for e in got[-3:]] == ["backend_error", "task_end", "final"]
    assert got[-3]["recoverable"] is False
    assert got[-1]["status"] == "aborted"
    assert "Traceback" not in err


def test_model_option_asks_for_that_model(katan: str, tmp_path: Path) -> None:
    out = run("hello", "--json", "--model", "katan-other", cwd=tmp_path, env=_openai(katan))
    assert out.returncode == 0, out.stderr
    calls = [e for e in events(out.stdout) if e["type"] == "llm_call"]
    assert [c["model"] for c in calls] == ["katan-other"]
    default = run("hello", "--json", cwd=tmp_path, env=_openai(katan))
    assert [e["model"] for e in events(default.stdout) if e["type"] == "llm_call"] == [MODEL]
