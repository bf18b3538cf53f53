"""`agent-runtime runs ls|show|tail` and `migrate` against real SQLite, PostgreSQL and file
stores, through the installed console script."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.durable import (
    DURABLE_SCHEMA_VERSION,
    DurableContext,
    DurableRunManifest,
    open_store,
    run_durable,
)
from agent_runtime.durable._filesystem import FILESYSTEM_FORMAT_VERSION

CLI = [sys.executable, "-m", "agent_runtime.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


async def populate(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t", "intent": "answer"}, {"q": 1})

        async def task(ctx: DurableContext) -> str:
            await ctx.step("fetch", lambda: {"rows": 3})
            await store.append_stream_events(
                ctx.run_id, [(f"ev-{i}", {"text": f"chunk {i}"}) for i in range(3)]
            )
            return str(await ctx.step("summarize", lambda: "done", kind="llm"))

        await run_durable(run_id="run-done", manifest=manifest, store=store, task_fn=task)
        await store.start_or_resume("run-live", manifest, "worker-7", lease_ms=60_000)
        await store.complete_step("run-live", 0, 1, intent="first", worker_id="worker-7")
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres", "file"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/runs.db"
    elif request.param == "file":
        url = f"file://{tmp_path}/files"
    else:
        url = request.getfixturevalue("pg_dsn")
    asyncio.run(populate(url))
    return url


def test_ls_json(store_url: str) -> None:
    res = cli("runs", "ls", "--store", store_url, "--json")
    assert res.returncode == 0, res.stderr
    runs = {r["runId"]: r for r in json.loads(res.stdout)}
    assert set(runs) == {"run-done", "run-live"}
    assert runs["run-done"]["status"] == "completed" and runs["run-done"]["streamLength"] == 3
    assert runs["run-live"]["leaseHolderId"] == "worker-7"
    assert runs["run-live"]["leaseExpiresAt"] is not None
    only = json.loads(
        cli("runs", "ls", "--store", store_url, "--json", "--status", "running").stdout
    )
    assert [r["runId"] for r in only] == ["run-live"]


def test_show_json_and_human(store_url: str) -> None:
    res = cli("runs", "show", "run-done", "--store", store_url, "--json")
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = json.loads(res.stdout)
    assert data["run"]["status"] == "completed" and data["run"]["outcome"] == "done"
    assert [(s["intent"], s["status"], s["attempts"]) for s in data["steps"]] == [
        ("fetch", "completed", 1),
        ("summarize", "completed", 1),
    ]
    assert data["streamLength"] == 3
    human = cli("runs", "show", "run-live", "--store", store_url)
    assert human.returncode == 0, human.stderr
    assert "worker-7" in human.stdout and "first" in human.stdout and "running" in human.stdout


def test_tail_from_cursor(store_url: str) -> None:
    res = cli("runs", "tail", "run-done", "--store", store_url, "--json", "--after", "0")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(e["seq"], e["eventId"], e["payload"]) for e in lines] == [
        (1, "ev-1", {"text": "chunk 1"}),
        (2, "ev-2", {"text": "chunk 2"}),
    ]
    assert set(lines[0]) == {"runId", "seq", "eventId", "payload", "appendedAt"}
    human = cli("runs", "tail", "run-done", "--store", store_url, "--follow")
    assert human.returncode == 0 and "chunk 0" in human.stdout and "chunk 2" in human.stdout


def test_unknown_run_and_bad_url_are_clear_errors(store_url: str, tmp_path: Path) -> None:
    missing = cli("runs", "show", "nope", "--store", store_url)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad = cli("runs", "ls", "--store", "mongodb://x")
    assert bad.returncode == 2 and "unknown store URL scheme" in bad.stderr
    status = cli("runs", "ls", "--store", store_url, "--status", "sleeping")
    assert status.returncode == 2 and "status must be one of" in status.stderr


def test_migrate_json(store_url: str) -> None:
    res = cli("migrate", "--store", store_url, "--json")
    assert res.returncode == 0, res.stderr
    # SQL stores report their migration count; the file store its on-disk format version
    expected = (
        FILESYSTEM_FORMAT_VERSION if store_url.startswith("file:") else DURABLE_SCHEMA_VERSION
    )
    assert json.loads(res.stdout)["schema_version"] == expected


def test_default_store_is_sqlite_under_cwd(tmp_path: Path) -> None:
    res = cli("migrate", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / ".agent-runtime" / "runs.db").is_file()
    assert json.loads(cli("runs", "ls", "--json", cwd=tmp_path).stdout) == []
