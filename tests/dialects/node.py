"""The real chat clients from npm (`tests/js`), run with Node: installed once from the
lockfile (`npm ci`, which needs the registry only when `node_modules` is missing or stale),
each script given a JSON job and printing what its client assembled as one JSON line."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import require

JS_DIR = Path(__file__).resolve().parents[1] / "js"
_STAMP = JS_DIR / "node_modules" / ".package-lock.json"


def ensure_clients() -> str:
    """The `node` executable, with `tests/js/node_modules` installed from the lockfile
    (skipped locally, a failure under CI=true, when Node or npm is missing)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    require(node is not None, "Node.js is not installed (the dialect tests run its clients)")
    assert node is not None
    lock = JS_DIR / "package-lock.json"
    with (JS_DIR / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # xdist workers install once between them
        if not _STAMP.exists() or _STAMP.stat().st_mtime < lock.stat().st_mtime:
            require(npm is not None, "npm is not installed (needed once for tests/js)")
            assert npm is not None
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
                cwd=JS_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            require(done.returncode == 0, f"npm ci in tests/js failed: {done.stderr[-2000:]}")
    return node


def run_client(node: str, script: str, job: dict[str, Any], timeout: float = 60) -> Any:
    """Run `tests/js/<script>` on `job`; its printed JSON (stderr in the error if it fails)."""
    done = subprocess.run(
        [node, script, json.dumps(job)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"{script} failed ({done.returncode}): {done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
