"""TurnLogCursor over generated turn logs: a client that reconnects at any record it got sees
exactly what an uninterrupted reader sees, and ends with the last attempt's text."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime.chat import (
    TurnLogCursor,
    parse_turn_event_id,
    restarted_event,
    turn_event_id,
    turn_restart_id,
)
from agent_runtime.durable import DurableRunManifest, InMemoryDurableRunStore, StreamEventRecord

MANIFEST = DurableRunManifest("p", {"id": "turn", "intent": "t"}, {})


@st.composite
def turn_logs(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Attempts of a turn, each a few deltas after its restart marker, with late writes of
    earlier attempts (a fenced worker's) sprinkled after later markers."""
    items: list[tuple[str, Any]] = []
    attempts = draw(st.integers(1, 4))
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            items.append((turn_restart_id(attempt), restarted_event(attempt)))
            for stale in draw(st.lists(st.integers(1, attempt - 1), max_size=2)):
                position = 100 + len(items)  # a position the earlier attempt had not logged
                text = {"type": "text_delta", "text": "late "}
                items.append((turn_event_id(position, stale), text))
        for position in range(draw(st.integers(0, 4))):
            text = {"type": "text_delta", "text": f"a{attempt}p{position} "}
            items.append((turn_event_id(position, attempt), text))
    return items


def shown(payloads: list[Any]) -> str:
    text = ""
    for p in payloads:
        text = "" if p["type"] == "session.run.restarted" else text + p["text"]
    return text


def admitted(cursor: TurnLogCursor, log: list[StreamEventRecord]) -> list[StreamEventRecord]:
    return [r for r in log if cursor.admit(r)]


@settings(max_examples=60, deadline=None)
@given(turn_logs(), st.integers(0, 1000))
def test_a_reconnect_at_any_received_record_loses_and_repeats_nothing(
    items: list[tuple[str, Any]], pick: int
) -> None:
    async def scenario() -> None:
        store = InMemoryDurableRunStore()
        await store.start_or_resume("r", MANIFEST, "w")
        await store.append_stream_events("r", items)
        log = await store.read_stream_events("r")
        whole = admitted(TurnLogCursor(), log)
        last = max((parse_turn_event_id(e).attempt for e, _ in items), default=1)
        expected = "".join(
            p["text"]
            for e, p in items
            if parse_turn_event_id(e) == (last, False) and "late" not in p["text"]
        )
        assert shown([r.payload for r in whole]) == expected
        assert all("late" not in r.payload.get("text", "") for r in whole)
        if not whole:
            return
        # the client got the uninterrupted stream up to one of its records, then reconnected
        cut = pick % len(whole)
        cursor = await TurnLogCursor.resume(store, "r", whole[cut].seq)
        rest = admitted(cursor, log)
        assert [r.seq for r in whole[: cut + 1] + rest] == [r.seq for r in whole]

    asyncio.run(scenario())


def _by_the_grammar(event_id: str) -> tuple[int, bool]:
    """`turn:{position}`, `turn:{attempt}:{position}`, `turn:{attempt}:restart`; else (1, no)."""
    import re

    match = re.fullmatch(r"turn:(?:([1-9][0-9]*):)?(?:([0-9]+)|(restart))", event_id)
    if match is None:
        return (1, False)
    return (int(match.group(1) or 1), match.group(3) is not None)


@given(
    st.one_of(
        st.text(max_size=12),
        st.builds(lambda s: "turn:" + s, st.text(alphabet="0123456789:²٣restartx", max_size=8)),
    )
)
def test_parsing_an_event_id_follows_the_grammar(event_id: str) -> None:
    assert tuple(parse_turn_event_id(event_id)) == _by_the_grammar(event_id)


def test_parsed_event_ids() -> None:
    assert parse_turn_event_id("turn:12") == (1, False)
    assert parse_turn_event_id("turn:2:5") == (2, False)
    assert parse_turn_event_id("turn:3:restart") == (3, True)
    assert parse_turn_event_id("turn:²") == (1, False)  # not a position: another log's id
    assert parse_turn_event_id("substrate-7") == (1, False)


@given(st.integers(0, 50), st.integers(0, 20), st.integers(1, 4))
def test_event_ids_in_bulk_are_the_ids_one_by_one(start: int, count: int, attempt: int) -> None:
    from agent_runtime.chat._turn_log import turn_event_ids

    ids = turn_event_ids(start, start + count, attempt)
    assert ids == [turn_event_id(p, attempt) for p in range(start, start + count)]
    assert all(parse_turn_event_id(i) == (attempt, False) for i in ids)
