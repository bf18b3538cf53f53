"""A `SandboxReconnectAdapter` over `sandbox_proc.py`: `start()` launches the sandbox process
in its own session (a worker's death does not stop it), `attach()` tails its output file."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from agent_runtime.chat import SubstrateEvent, SupervisedStart
from agent_runtime.durable import RunHandle

SANDBOX = Path(__file__).with_name("sandbox_proc.py")


class FileSandboxAdapter:
    def __init__(self, root: Path, n: int, delay_ms: int = 10, honour_cursor: bool = True):
        self.root = root
        self.n = n
        self.delay_ms = delay_ms
        self.honour_cursor = honour_cursor
        self.starts = 0
        self.attaches: list[str | None] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> SupervisedStart:
        self.starts += 1
        out = self.root / f"sandbox-{secrets.token_hex(4)}.jsonl"
        out.touch()
        proc = subprocess.Popen(
            [sys.executable, str(SANDBOX), str(out), str(self.n), str(self.delay_ms)],
            start_new_session=True,
        )
        self.procs.append(proc)
        handle = RunHandle("sandbox", sandbox_id=str(out), run_id=str(proc.pid), status="running")
        return SupervisedStart(handle, self._tail(out, None))

    def attach(
        self, handle: RunHandle, after_event_id: str | None
    ) -> AsyncIterator[SubstrateEvent]:
        self.attaches.append(after_event_id)
        assert handle.sandbox_id is not None
        return self._tail(Path(handle.sandbox_id), after_event_id if self.honour_cursor else None)

    async def _tail(self, path: Path, after: str | None) -> AsyncIterator[SubstrateEvent]:
        skipping = after is not None
        offset = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.splitlines():
                item = orjson.loads(line)
                if item.get("end"):
                    return
                if skipping:
                    skipping = item["id"] != after
                    continue
                yield SubstrateEvent(item["id"], item["payload"])
            assert loop.time() < deadline, "sandbox output did not end"
            await asyncio.sleep(0.005)
