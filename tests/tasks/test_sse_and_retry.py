"""SSE decoding under arbitrary chunking, and the retry policy's schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime import BackendRetryPolicy, ConfigurationError
from agent_runtime.backends import parse_retry_after
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


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, max_size=5), st.sampled_from(["\n", "\r\n", "\r"]), st.randoms())
def test_decoder_is_chunking_independent(msgs, eol, rnd) -> None:
    wire = "".join(_encode(m, eol) for m in msgs).encode()
    cuts = sorted(rnd.sample(range(len(wire) + 1), min(len(wire) + 1, rnd.randint(0, 8))))
    dec = SSEDecoder()
    got: list[SSEMessage] = []
    prev = 0
    for c in [*cuts, len(wire)]:
        got += dec.feed(wire[prev:c])
        prev = c
    assert got == msgs
    assert not dec.has_partial


def test_incomplete_final_event_is_not_dispatched() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b") == [SSEMessage(data="a")]
    assert dec.has_partial
    assert dec.flush() == []


def test_backoff_schedule_with_jitter_bounds() -> None:
    p = BackendRetryPolicy()
    rng = random.Random(7)
    for n, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        for _ in range(50):
            d = p.delay_s(n, rng=rng)
            assert base * 0.75 <= d <= min(base * 1.25, 8.0)


def test_status_classes() -> None:
    for s in (400, 401, 403, 404, 422):
        assert not BackendRetryPolicy.is_retryable_status(s)
    for s in (408, 409, 429, 500, 502, 503, 504):
        assert BackendRetryPolicy.is_retryable_status(s)


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after(None) is None
    assert BackendRetryPolicy().delay_s(1, retry_after_s=90) == 60.0


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        BackendRetryPolicy(max_retries=-1)
    with pytest.raises(ConfigurationError):
        BackendRetryPolicy(jitter=2)
