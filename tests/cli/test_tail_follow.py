"""`agent-runtime runs tail --follow` ends instead of polling forever when there is nothing
to follow: an unknown run id, or a store that disappears while it follows."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agent_runtime.durable import DurableRunManifest, open_store

CLI = [sys.executable, "-m", "agent_runtime.cli"]


async def _live_run(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t"}, {})
        await store.start_or_resume("live", manifest, "worker-1", lease_ms=60_000)
        await store.append_stream_event("live", "ev-0", {"text": "first"})
    finally:
        await store.close()


def test_follow_of_an_unknown_run_is_an_error(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/files"
    asyncio.run(_live_run(url))
    res = subprocess.run(
        [*CLI, "runs", "tail", "nope", "--store", url, "--follow", "--poll-ms", "20"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_follow_ends_when_the_store_goes_away(tmp_path: Path) -> None:
    root = tmp_path / "files"
    url = f"file://{root}"
    asyncio.run(_live_run(url))
    proc = subprocess.Popen(
        [*CLI, "runs", "tail", "live", "--store", url, "--follow", "--json", "--poll-ms", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert '"ev-0"' in first
        time.sleep(0.2)
        assert proc.poll() is None  # still following the live run
        shutil.rmtree(root)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and "does not exist" in err
