"""The chat service in a process of its own, for the slow-connection flood test (the test
sets this process's file-descriptor limit). Usage: python -m tests.server.flood_worker PORT
STORE_URL HEADER_TIMEOUT_S; prints `ready` once serving."""

from __future__ import annotations

import sys

import uvicorn

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import ConnectionGuard, create_app, uvicorn_config
from agent_runtime.server._serve import bind_socket


class _Server(uvicorn.Server):
    async def startup(self, sockets: object = None) -> None:
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        print("ready", flush=True)


def main(port: int, store_url: str, header_timeout_s: float) -> None:
    app = create_app(store_url=store_url, backend=create_echo_backend(), sweep_interval_ms=None)
    guard = ConnectionGuard(header_timeout_s=header_timeout_s)
    sock = bind_socket("127.0.0.1", port)
    _Server(uvicorn_config(app, guard=guard)).run(sockets=[sock])


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
