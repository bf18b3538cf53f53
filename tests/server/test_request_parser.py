"""`parse_chat_request` on arbitrary input: a ChatRequest or a typed error, nothing else."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.server import ChatRequest, RequestJSONError, parse_chat_request

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "tool", 1]),
            "content": json_values,
        }
    ),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "session_id": st.one_of(st.text(max_size=20), json_values),
        "turn_index": st.one_of(st.integers(-5, 2_000_000), json_values),
        "text": st.one_of(st.text(max_size=30), json_values),
        "messages": st.one_of(messages, json_values),
        "model": st.one_of(st.text(max_size=20), json_values),
        "tenant_id": st.text(max_size=10),
    },
)


def _check(raw: bytes) -> None:
    try:
        parsed = parse_chat_request(raw)
    except InvalidArgumentError as exc:
        assert exc.path and exc.message
        return
    assert isinstance(parsed, ChatRequest)
    assert parsed.messages[-1].role == "user" and parsed.prompt.strip()
    orjson.dumps(parsed.to_input())


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_json_objects_parse_or_fail_typed(body: dict[str, Any]) -> None:
    _check(json.dumps(body).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_fail_typed(raw: bytes) -> None:
    try:
        parse_chat_request(raw)
    except InvalidArgumentError:
        return


def test_not_an_object_is_request_json_error() -> None:
    for raw in (b"", b"[]", b"1", b"{", b'"x"'):
        try:
            parse_chat_request(raw)
        except RequestJSONError:
            continue
        raise AssertionError(raw)
