"""The service on a real uvicorn in a process of its own, over the scripted backend with a
1 s lease, for the crash tests: `python -m tests.dialects.serve_worker STORE_URL PORT DELAY`
(DELAY: seconds between the words of a `slow` answer). Prints `serving` once it accepts."""

from __future__ import annotations

import socket
import sys
import threading
import time

import uvicorn

from agent_runtime.server import ApiKeys, create_app, uvicorn_config

from .scripted import Scripted
from .servers import KEY


def main(store_url: str, port: int, delay: float) -> None:
    app = create_app(
        store_url=store_url,
        backend=Scripted(delay=delay).backend(),
        api_keys=ApiKeys.parse(f"{KEY}=acme:ann", source="test", separator=","),
        sweep_interval_ms=None,
        lease_ms=1000,
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("uvicorn did not start")
        time.sleep(0.01)
    print("serving", flush=True)
    thread.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
