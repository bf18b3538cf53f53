"""The chat service on a store whose disk the test can fill, in a process of its own.

Usage: python -m tests.server.disk_worker DIR PORT MODE, MODE `tmpfs` (DIR is a small tmpfs
mounted for this process) or `fsize` (no mount possible: "full" is a file-size limit at the
files' current size). Prints `ready`, then obeys stdin lines: `fill` (answers `filled`) and
`free` (answers `freed`). Turns stream slowly (a delta every 50 ms, 40 of them) on a 1 s lease
with a fast orphan sweep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from agent_runtime.backends import create_iterable_backend
from agent_runtime.server import ServerSettings, create_app, uvicorn_config
from agent_runtime.server._serve import bind_socket
from agent_runtime.types import AgentBackendContext, AgentBackendInput, TextDeltaEvent


def _slow(_inp: AgentBackendInput, _ctx: AgentBackendContext) -> AsyncIterator[TextDeltaEvent]:
    async def gen() -> AsyncIterator[TextDeltaEvent]:
        for i in range(40):
            await asyncio.sleep(0.05)
            yield TextDeltaEvent(text=f"w{i} ")

    return gen()


def _commands(folder: Path, mode: str) -> None:
    filler = folder / "filler"
    for line in sys.stdin:
        command = line.strip()
        if command == "fill":
            if mode == "tmpfs":
                with filler.open("wb") as f, contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
            else:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                biggest = max(p.stat().st_size for p in folder.iterdir())
                resource.setrlimit(resource.RLIMIT_FSIZE, (biggest, resource.RLIM_INFINITY))
            print("filled", flush=True)
        elif command == "free":
            if mode == "tmpfs":
                filler.unlink(missing_ok=True)
            else:
                resource.setrlimit(
                    resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
                )
            print("freed", flush=True)


class _Server(uvicorn.Server):
    async def startup(self, sockets: object = None) -> None:
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        print("ready", flush=True)


def main(folder: str, port: int, mode: str) -> None:
    app = create_app(
        store_url=f"sqlite:///{folder}/runs.db",
        backend=create_iterable_backend(kind="slow", stream=_slow),
        settings=ServerSettings(min_free_bytes=256 * 1024, quota_bytes=None),
        sweep_interval_ms=200,
        lease_ms=1000,
    )
    threading.Thread(target=_commands, args=(Path(folder), mode), daemon=True).start()
    sock = bind_socket("127.0.0.1", port)
    os.environ.pop("AGENT_RUNTIME_API_KEYS", None)
    _Server(uvicorn_config(app)).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
