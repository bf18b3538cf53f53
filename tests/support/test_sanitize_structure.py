"""Sanitizers against secrets hidden by structure: JSON tool arguments, compound variable
names, quoted passphrases, header name/value pairs and containers under secret-named keys."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_runtime.eval import ControlDecision, ControlStep
from agent_runtime.sanitize import (
    RuntimeTelemetryOptions,
    sanitize_control_step,
    sanitize_json,
    sanitize_runtime_stream_event,
    sanitize_text,
)
from agent_runtime.sse import runtime_stream_server_sent_event
from agent_runtime.trace import to_agent_eval_trace
from agent_runtime.types import ToolCallEvent

MARKER = re.compile(r"\[REDACTED:[0-9a-f]{8}\]")
PAYLOADS = RuntimeTelemetryOptions(include_control_payloads=True)


def _sse_data(frame: str) -> str:
    return "\n".join(
        line.removeprefix("data: ") for line in frame.splitlines() if line.startswith("data: ")
    )


def _call(args: Any) -> ToolCallEvent:
    return ToolCallEvent(tool_name="http", tool_call_id="c1", args=args)


ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"password": 'abcd"efgh'}, "efgh"),
    ({"headers": {"Cookie": "session=abcdef123456"}}, "abcdef123456"),
    ({"secret": "tiny"}, "tiny"),
    ({"body": orjson.dumps({"password": "hunter22"}).decode()}, "hunter22"),
    ({"env": {"DB_PASSWORD": "hunter22"}}, "hunter22"),
    ({"headers": [["Authorization", "Basic dXNlcjpwYXNzd29yZA=="]]}, "dXNlcjpwYXNzd29yZA"),
]


@pytest.mark.parametrize(("arguments", "secret"), ARGUMENTS)
def test_opted_in_tool_arguments_are_scrubbed_by_structure(
    arguments: dict[str, Any], secret: str
) -> None:
    for args in (arguments, orjson.dumps(arguments).decode()):
        clean = sanitize_runtime_stream_event(_call(args), PAYLOADS)
        assert secret not in orjson.dumps(clean).decode()
        frame = runtime_stream_server_sent_event(_call(args), include_control_payloads=True)
        assert secret not in frame
        assert orjson.loads(_sse_data(frame))["args"] is not None
    trace = to_agent_eval_trace(_call(arguments), run_id="r")
    assert trace is not None and secret not in str(trace)


def test_opted_in_control_actions_and_results_are_scrubbed() -> None:
    step = ControlStep(
        index=0,
        decision=ControlDecision.continue_({"headers": {"Cookie": "sid=abcdef123456"}}),
        evals_before=(),
        evals_after=(),
        started_at="2026-01-01T00:00:00.000Z",
        ended_at="2026-01-01T00:00:00.000Z",
        duration_ms=1.0,
        action_ok=True,
        result="connected with postgres://u:hunter22@db/x",
    )
    clean = sanitize_control_step(step, PAYLOADS)
    text = orjson.dumps(clean).decode()
    assert "abcdef123456" not in text and "hunter22" not in text
    assert (
        MARKER.search(clean["action"]["headers"]["Cookie"]) and "postgres://u:" in clean["result"]
    )


def test_arguments_without_secrets_keep_the_models_raw_text() -> None:
    raw = '{ "city" : "Lisbon",  "days": 3 }'
    assert sanitize_runtime_stream_event(_call({"arguments": raw}), PAYLOADS)["args"] == {
        "arguments": raw
    }
    assert sanitize_runtime_stream_event(_call(raw), PAYLOADS)["args"] == raw
    broken = '{"password": "hunter22", "city": '
    assert "hunter22" not in sanitize_runtime_stream_event(_call(broken), PAYLOADS)["args"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("DB_PASSWORD=hunter22", "hunter22"),
        ("MYSQL_ROOT_PASSWORD=hunter22 docker run", "hunter22"),
        ("PGPASSWORD=hunter22 psql -h db", "hunter22"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("OPENAI_API_KEY=abcd1234xyz", "abcd1234xyz"),
        ('export ANTHROPIC_API_KEY="abc123def456"', "abc123def456"),
        ("password = 'correct horse battery staple'", "battery staple"),
        ('password: "pa,ss;word"', "pa,ss;word"),
        ('{"password": "abcd\\"efgh"}', "efgh"),
    ],
)
def test_compound_names_and_quoted_values(text: str, secret: str) -> None:
    out = sanitize_text(text)
    assert secret not in out and MARKER.search(out)
    assert sanitize_text(out) == out


@pytest.mark.parametrize(
    "text",
    [
        "export DB_PASSWORD=${DB_PASSWORD}",
        'api_key: "${OPENAI_API_KEY}"',
        "password: '<your password>'",
        "Set MYSQL_ROOT_PASSWORD in the compose file.",
        "The secretary: Jane",
        "passwords: see the vault",
    ],
)
def test_references_and_prose_stay(text: str) -> None:
    assert sanitize_text(text) == text


def test_header_pairs_and_containers_under_secret_keys() -> None:
    value = {
        "har": [{"name": "Authorization", "value": "Basic dXNlcjpwYXNzd29yZA=="}],
        "raw_headers": [["Cookie", "sid=abcdef123456"], ["Accept", "application/json"]],
        "set-cookie": ["sid=abcdef123456; HttpOnly", "csrf=zyxwvu987654"],
        "password": {"value": "hunter22", "_note": "x"},
        "client_secret": 12345678,
        "db_password": "hunter22",
        "openai_api_key": "abcd1234",
        "other": {"name": "Accept", "value": "text/html"},
        "is_secret": True,
        "token_count": 3,
    }
    out = sanitize_json(value)
    text = orjson.dumps(out).decode()
    for secret in ("dXNlcjpwYXNzd29yZA", "abcdef123456", "zyxwvu987654", "hunter22", "12345678"):
        assert secret not in text, secret
    assert "abcd1234" not in text
    assert out["raw_headers"][1] == ["Accept", "application/json"]
    assert out["other"] == {"name": "Accept", "value": "text/html"}
    assert out["is_secret"] is True and out["token_count"] == 3
    assert "_note" not in out["password"]
    assert sanitize_json(out) == out


@given(
    st.sampled_from(["DB_", "MYSQL_ROOT_", "PG", "prod-", "openai_", "X_"]),
    st.sampled_from(["PASSWORD", "password", "API_KEY", "SECRET", "client_secret"]),
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#%&*+-./?@^_|~", min_size=6, max_size=30
    ).filter(  # placeholders, not secrets
        lambda v: v not in ("undefined", "required", "optional", "redacted", "changeme")
    ),
)
def test_prefixed_assignments_never_survive(prefix: str, name: str, value: str) -> None:
    for text in (f"{prefix}{name}={value}", f'"{prefix}{name}": "{value}"'):
        out = sanitize_text(text)
        assert value not in out.replace(prefix + name, "")
    args = orjson.dumps({f"{prefix}{name}": value}).decode()
    call = sanitize_runtime_stream_event(_call({"arguments": args}), PAYLOADS)
    assert value not in call["args"]["arguments"]
    call = sanitize_runtime_stream_event(_call({f"{prefix}{name}": value}), PAYLOADS)
    assert value not in orjson.dumps(call).decode()
