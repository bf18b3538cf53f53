"""Conversation histories shared by several processes: concurrent appends keep every message in
each writer's order, concurrent `advance_metadata` calls keep the highest floor, and two
tenants racing to create one session id end with a single owner."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ConversationOwnerError
from agent_runtime.history import PostgresConversationHistory, SQLiteConversationHistory

PROCESSES = 4
APPENDS = 25


def _open(kind: str, target: str) -> Any:
    if kind == "sqlite":
        return SQLiteConversationHistory(target)
    return PostgresConversationHistory(target, max_size=1)


def _writer(kind: str, target: str, worker: int, tenant: str, start: Any, out: Any) -> None:
    async def main() -> tuple[int, int]:
        store = _open(kind, target)
        written = refused = 0
        try:
            start.wait(30)
            for i in range(APPENDS):
                try:
                    await store.append_messages("shared", [{"w": worker, "i": i}], tenant_id=tenant)
                    await store.advance_metadata(
                        "shared", at_least={"top": worker * APPENDS + i}, tenant_id=tenant
                    )
                    written += 1
                except ConversationOwnerError:
                    refused += 1
        finally:
            await store.close()
        return written, refused

    out.put((worker, tenant, *asyncio.run(main())))


def _race(kind: str, target: str, tenants: list[str]) -> list[tuple[int, str, int, int]]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, target, w, tenants[w], start, out))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return sorted(results)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "sessions.db")
    return "postgres", request.getfixturevalue("pg_dsn")


async def _messages(kind: str, target: str, tenant: str) -> list[dict[str, Any]]:
    store = _open(kind, target)
    try:
        session = await store.load("shared", tenant_id=tenant)
    finally:
        await store.close()
    assert session is not None and session.message_count == len(session.messages)
    tops = {m["w"] * APPENDS + m["i"] for m in session.messages}
    assert session.metadata == {"top": max(tops)}, "a raise is never undone by another's"
    return list(session.messages)


async def test_appends_from_several_processes_lose_nothing(target: tuple[str, str]) -> None:
    kind, where = target
    results = _race(kind, where, ["t"] * PROCESSES)
    assert [r[2:] for r in results] == [(APPENDS, 0)] * PROCESSES
    messages = await _messages(kind, where, "t")
    assert len(messages) == PROCESSES * APPENDS
    for w in range(PROCESSES):
        assert [m["i"] for m in messages if m["w"] == w] == list(range(APPENDS))


async def test_two_tenants_racing_to_create_one_session_get_one_owner(
    target: tuple[str, str],
) -> None:
    kind, where = target
    results = _race(kind, where, ["a", "b"] * (PROCESSES // 2))
    winners = {tenant for _, tenant, written, _ in results if written}
    assert len(winners) == 1, results
    (owner,) = winners
    for _, tenant, written, refused in results:
        assert (written, refused) == ((APPENDS, 0) if tenant == owner else (0, APPENDS))
    messages = await _messages(kind, where, owner)
    assert len(messages) == APPENDS * PROCESSES // 2
