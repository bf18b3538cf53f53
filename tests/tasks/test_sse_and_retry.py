"""SSE and chat-chunk decoding under arbitrary chunking, and the retry policy's schedule."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime import BackendRetryPolicy, ValidationError
from agent_runtime.backends import DEFAULT_RETRY_STATUSES, parse_retry_after
from agent_runtime.backends._chat_chunks import ChatChunkSplitter
from agent_runtime.backends._sse_decode import SSEDecoder, SSEMessage

line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=20,
)
messages = st.builds(
    SSEMessage,
    data=st.lists(line_text, min_size=1, max_size=3).map("\n".join),
    event=st.sampled_from(["message", "delta", "done"]),
    id=st.none() | line_text,
)


def _encode(m: SSEMessage, eol: str) -> str:
    out = []
    if m.event != "message":
        out.append(f"event: {m.event}")
    if m.id is not None:
        out.append(f"id: {m.id}")
    out.extend(f"data: {line}" for line in m.data.split("\n"))
    out.append(": a comment")
    return eol.join(out) + eol + eol


def _cut(wire: bytes, rnd: random.Random) -> list[bytes]:
    cuts = sorted(rnd.sample(range(len(wire) + 1), min(len(wire) + 1, rnd.randint(0, 8))))
    parts, prev = [], 0
    for c in [*cuts, len(wire)]:
        parts.append(wire[prev:c])
        prev = c
    return parts


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, max_size=5), st.sampled_from(["\n", "\r\n", "\r"]), st.randoms())
def test_decoder_is_chunking_independent(msgs, eol, rnd) -> None:
    wire = "".join(_encode(m, eol) for m in msgs).encode()
    dec = SSEDecoder()
    got: list[SSEMessage] = []
    for part in _cut(wire, rnd):
        got += dec.feed(part)
    assert got == msgs
    assert not dec.has_partial


def test_incomplete_final_event_is_not_dispatched() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b") == [SSEMessage(data="a")]
    assert dec.has_partial
    assert dec.flush() == []


# --- chat chunks (ORIGINAL §7.5 parsing) -----------------------------------------------------

payloads = st.lists(
    st.dictionaries(st.sampled_from(["text", "n", "é"]), st.text(max_size=6) | st.integers()),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(payloads, st.sampled_from(["\n", "\r\n"]), st.booleans(), st.randoms())
def test_chat_chunks_sse_or_ndjson_under_any_chunking(objs, eol, ndjson, rnd) -> None:
    texts = [json.dumps(o, ensure_ascii=False) for o in objs]
    if ndjson:
        wire = "".join(t + eol for t in texts)
    else:
        wire = "".join(f"event: x{eol}id: 1{eol}: ping{eol}data: {t}{eol}{eol}" for t in texts)
    splitter = ChatChunkSplitter()
    got: list[str] = []
    for part in _cut(wire.encode(), rnd):
        got += splitter.feed(part)
    rest, unterminated = splitter.finish()
    assert got + rest == texts
    assert not unterminated
    assert splitter.saw_data is (not ndjson and bool(objs))


def test_chat_chunks_join_data_lines_and_keep_a_bare_line_as_its_own_chunk() -> None:
    s = ChatChunkSplitter()
    got = s.feed(b'data: {"a":\ndata: 1}\n\n{"b": 2}\n  \ndata: [DONE]\n\n')
    assert got == ['{"a":\n1}', '{"b": 2}', "[DONE]"]


def test_chat_chunks_flush_the_remainder_and_say_whether_it_was_cut() -> None:
    s = ChatChunkSplitter()
    assert s.feed(b'data: {"x":1}\n\ndata: {"y"') == ['{"x":1}']
    assert s.finish() == (['{"y"'], True)
    s = ChatChunkSplitter()
    assert s.feed(b'{"ndjson": true}') == []
    assert s.finish() == (['{"ndjson": true}'], False)


# --- the retry policy (ORIGINAL §7.5) --------------------------------------------------------


def test_policy_defaults_are_the_originals() -> None:
    p = BackendRetryPolicy()
    assert (p.max_attempts, p.initial_backoff_ms, p.max_backoff_ms, p.jitter) == (
        5,
        1000,
        30000,
        0.25,
    )
    assert p.retry_statuses == frozenset({408, 425, 429, 500, 502, 503, 504})
    assert p.retry_statuses == DEFAULT_RETRY_STATUSES
    assert p.request_timeout_ms == 120000


class _FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.value


@pytest.mark.parametrize(
    ("n", "base"), [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (5, 16000), (6, 30000), (40, 30000)]
)
def test_delay_is_capped_doubling_plus_jitter_rounded(n: int, base: int) -> None:
    p = BackendRetryPolicy()
    assert p.delay_ms(n, rng=_FixedRng(0.5)) == base  # no spread
    assert p.delay_ms(n, rng=_FixedRng(0.0)) == round(base * 0.75)  # -jitter x base
    assert p.delay_ms(n, rng=_FixedRng(1.0)) == round(base * 1.25)  # +jitter, even above max
    rng = random.Random(7)
    for _ in range(50):
        d = p.delay_ms(n, rng=rng)
        assert isinstance(d, int) and base * 0.75 <= d <= base * 1.25


def test_delay_is_floored_at_zero_and_a_late_retry_stays_capped() -> None:
    p = BackendRetryPolicy(initial_backoff_ms=0.4, jitter=1)
    assert p.delay_ms(1, rng=_FixedRng(0.0)) == 0
    late = BackendRetryPolicy(max_attempts=5000)
    for n in (1024, 1100, 5000):
        assert 0.75 * 30000 <= late.delay_ms(n) <= 1.25 * 30000


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    p = BackendRetryPolicy(max_retry_after_ms=60000)
    assert p.delay_ms(3, retry_after_ms=2000) == 2000
    assert p.delay_ms(1, retry_after_ms=600000) == 60000
    assert p.delay_ms(1, retry_after_ms=0) == 0


def test_status_classes() -> None:
    p = BackendRetryPolicy()
    for s in (400, 401, 403, 404, 409, 422, 501):
        assert not p.is_retryable_status(s)
    for s in (408, 425, 429, 500, 502, 503, 504):
        assert p.is_retryable_status(s)
    assert BackendRetryPolicy(retry_statuses=[418]).is_retryable_status(418)


def test_retry_after_parsing_in_milliseconds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3000.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30000.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 2.0},
        {"max_attempts": True},
        {"initial_backoff_ms": -1},
        {"max_backoff_ms": float("inf")},
        {"request_timeout_ms": float("nan")},
        {"jitter": 2},
        {"jitter": "0.1"},
        {"retry_statuses": "429"},
        {"retry_statuses": [99]},
        {"retry_statuses": [429.0]},
        {"max_retry_after_ms": -5},
    ],
)
def test_bad_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BackendRetryPolicy(**kwargs)
