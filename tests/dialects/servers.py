"""The real service on uvicorn over the scripted backend, on SQLite or PostgreSQL, for the
dialect tests that need the server's own turns (retry, interrupts, tool calls, cancel)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.durable import RunRecord, StreamEventRecord, open_store
from agent_runtime.server import ApiKeys, BackendConfig, ServerSettings, TurnRunner, create_app
from tests.server.conftest import serving

from .scripted import Scripted

KEY = "key-dialects-retry-0123456789ab"
AUTH = {"authorization": f"Bearer {KEY}"}


@dataclass
class Server:
    """A running service: its URL, store URL, scripted backend and turn runner."""

    url: str
    store_url: str
    scripted: Scripted
    runners: list[TurnRunner] = field(default_factory=list)

    @property
    def runner(self) -> TurnRunner:
        return self.runners[0]

    def run_id(self, session: str, turn: int = 0) -> str:
        """The durable run id of a turn of KEY's principal (tenant acme, user ann)."""
        return f"chat:acme:ann:{session}:{turn}"

    def load(self, session: str, turn: int = 0) -> tuple[RunRecord | None, list[StreamEventRecord]]:
        """The turn's run and stream log, read through a store of its own."""

        async def read() -> Any:
            store = await open_store(self.store_url)
            try:
                run_id = self.run_id(session, turn)
                return await store.load_run(run_id), await store.read_stream_events(run_id)
            finally:
                await store.close()

        result: tuple[RunRecord | None, list[StreamEventRecord]] = asyncio.run(read())
        return result


@contextmanager
def scripted_server(
    store_url: str, scripted: Scripted | None = None, settings: ServerSettings | None = None
) -> Iterator[Server]:
    scripted = scripted or Scripted()
    runners: list[TurnRunner] = []

    def runner(*args: Any, **kwargs: Any) -> TurnRunner:
        made = TurnRunner(*args, **kwargs)
        runners.append(made)
        return made

    app = create_app(
        store_url=store_url,
        backend=BackendConfig(backend=scripted.backend(), model="scripted", runner=runner),
        api_keys=ApiKeys.parse(f"{KEY}=acme:ann", source="test", separator=","),
        sweep_interval_ms=None,
        settings=settings,
    )
    with serving(app) as url:
        yield Server(url, store_url, scripted, runners)
