"""The stores import the `postgres` extra only when a PostgreSQL store is opened."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import asyncio, sys
import agent_runtime.durable as d

async def main():
    for url in ("memory:", "sqlite:///:memory:", f"file://{sys.argv[1]}/files"):
        store = await d.open_store(url)
        m = d.DurableRunManifest("p", {"id": "t"}, 1)
        await store.start_or_resume("r", m, "w")
        await store.append_stream_events("r", [("e", 1)])
        await store.close()
    print(sorted({n.split(".")[0] for n in sys.modules} & {"psycopg", "psycopg_pool"}))

asyncio.run(main())
"""


def test_no_postgres_driver_until_a_postgres_store_opens(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
