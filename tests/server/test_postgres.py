"""Two server processes' worth of apps on one PostgreSQL store: a turn served by one is
replayed and tailed by the other."""

from __future__ import annotations

import httpx2
import orjson

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import create_app
from tests.server.conftest import serving


def test_two_servers_share_turns_through_postgres(pg_dsn: str) -> None:
    a = create_app(store_url=pg_dsn, backend=create_echo_backend(), sweep_interval_ms=None)
    b = create_app(store_url=pg_dsn, backend=create_echo_backend(), sweep_interval_ms=None)
    with serving(a) as url_a, serving(b) as url_b:
        body = {"session_id": "pg", "turn_index": 0, "text": "shared"}
        first = [
            orjson.loads(x) for x in httpx2.post(f"{url_a}/api/chat", json=body).text.splitlines()
        ]
        assert first[-1]["type"] == "session.run.completed"
        log = [
            orjson.loads(x)
            for x in httpx2.get(f"{url_b}/api/runs/chat:pg:0/events").text.splitlines()
        ]
        again = [
            orjson.loads(x) for x in httpx2.post(f"{url_b}/api/chat", json=body).text.splitlines()
        ]
    assert [r["payload"] for r in log[:-1]] == first[1:-1]
    assert log[-1]["payload"]["data"]["finalText"] == "echo: shared"
    assert again[1:] == [
        {"type": "result", "data": {"finalText": "echo: shared"}},
        {"type": "session.run.completed", "data": {"sessionId": "pg", "replayed": True}},
    ]
