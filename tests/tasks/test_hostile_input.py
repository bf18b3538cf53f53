"""Hostile event input and extreme retry schedules end in typed errors or capped delays."""

from __future__ import annotations

from typing import Any

import pytest

from agent_runtime import BackendRetryPolicy, EventParseError, parse_event


@pytest.mark.parametrize(
    "data",
    [
        {"type": "text.delta", "text": "a", 1: 2, "b": 3},  # mixed key types
        '{"type":"tool.result","call_id":"c","output":' + "[" * 1000 + "]" * 1000 + "}",
        '{"type":"error","code":"c","message":"m","details":{"a":' + "[" * 1000 + "]" * 1000 + "}}",
    ],
    ids=["mixed-keys", "deep-output", "deep-details"],
)
def test_parse_event_refuses_hostile_input_typed(data: Any) -> None:
    with pytest.raises(EventParseError):
        parse_event(data)


def test_backoff_for_a_late_retry_stays_capped() -> None:
    policy = BackendRetryPolicy(max_retries=5000)
    for n in (1024, 1100, 5000):
        assert 0.75 * 8.0 <= policy.delay_s(n) <= 8.0
