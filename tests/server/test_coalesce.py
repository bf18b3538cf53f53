"""coalesce: chunks of one event-loop tick go out as one send, the bytes unchanged; over real
HTTP, a replay of a long log arrives in a few chunks of the chunked encoding."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx2
import orjson
import pytest

from agent_runtime.server._coalesce import coalesce


async def _lines(n: int, *, pause_every: int = 0, fail: bool = False) -> AsyncIterator[bytes]:
    for i in range(n):
        if pause_every and i and i % pause_every == 0:
            await asyncio.sleep(0.01)  # a real wait: what came before goes out first
        yield b'{"i":%d}\n' % i
    if fail:
        raise RuntimeError("the turn failed")


async def test_chunks_of_one_tick_are_joined_and_bytes_kept() -> None:
    expected = b"".join([b'{"i":%d}\n' % i for i in range(100)])
    out = [chunk async for chunk in coalesce(_lines(100))]
    assert b"".join(out) == expected
    assert len(out) == 1
    paused = [chunk async for chunk in coalesce(_lines(100, pause_every=25))]
    assert b"".join(paused) == expected
    assert len(paused) == 4


async def test_the_body_error_follows_what_it_said() -> None:
    got: list[bytes] = []
    with pytest.raises(RuntimeError, match="the turn failed"):
        async for chunk in coalesce(_lines(3, fail=True)):
            got.append(chunk)
    assert b"".join(got) == b'{"i":0}\n{"i":1}\n{"i":2}\n'


async def test_read_ahead_is_bounded_and_closing_closes_the_body() -> None:
    produced = 0
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield b"x" * 100
        finally:
            closed.set()

    stream = coalesce(body(), max_bytes=1000)
    first = await anext(stream)
    assert len(first) == 1000  # read ahead up to the limit, then the body waits
    for _ in range(10):
        await asyncio.sleep(0)
    assert produced <= 21
    await stream.aclose()
    assert closed.is_set()


def _chunks(base: str, path: str) -> list[bytes]:
    """The chunks of a chunked response, as the server framed them."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: {parts.netloc}\r\n\r\n".encode())
        reader = sock.makefile("rb")
        assert b" 200 " in reader.readline()
        while reader.readline() not in (b"\r\n", b""):
            pass
        chunks = []
        while (size := int(reader.readline().strip(), 16)) != 0:
            chunks.append(reader.read(size))
            reader.read(2)
        return chunks


def test_a_long_replay_is_sent_in_a_few_chunks(echo_server: str) -> None:
    text = "word " * 300  # the echo backend sends it back 4 characters a line
    reply = httpx2.post(
        f"{echo_server}/api/chat", json={"session_id": "long", "turn_index": 0, "text": text}
    )
    assert reply.status_code == 200
    path = "/api/runs/chat:long:0/events"
    chunks = _chunks(echo_server, path)
    records = [orjson.loads(line) for line in b"".join(chunks).splitlines()]
    deltas = [r for r in records if r.get("payload", {}).get("type") == "text_delta"]
    assert len(deltas) > 300
    assert len(chunks) < 10  # one per read of the log, not one per line
    body = httpx2.get(f"{echo_server}{path}").content
    assert body == b"".join(chunks)  # the same bytes however they were framed
