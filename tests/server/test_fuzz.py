"""Hypothesis over request bodies, headers, methods, paths and cursors against a real server:
every answer is a success or a typed JSON 4xx, never a 5xx or a traceback."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime.backends import create_echo_backend
from agent_runtime.server import ApiKeys, ServerSettings, create_app
from tests.server.conftest import serving

KEY = "fuzz-key-0123456789abcdef"


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # any int, unlike orjson (the server must cope)


HEADER_TEXT = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=60)
FIELDS = ["session_id", "turn_index", "text", "messages", "model", "tenant_id", "role", "x"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
SESSION = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,20}", fullmatch=True)
CHAT = st.fixed_dictionaries(
    {"session_id": SESSION | st.text(max_size=10), "turn_index": st.integers(-2, 2_000_000)},
    optional={
        "text": st.text(max_size=50),
        "model": st.sampled_from(["echo", "other", "", " echo "]) | st.text(max_size=10),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system", "tool"])},
                optional={"content": st.text(max_size=20) | st.integers()},
            ),
            max_size=4,
        ),
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(
        store_url=f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/runs.db",
        backend=create_echo_backend(),
        api_keys=ApiKeys.parse(f"{KEY}=t:u", source="test", separator=","),
        settings=ServerSettings(max_body_bytes=4096, body_timeout_s=2),
        sweep_interval_ms=None,
    )
    with serving(app) as url:
        yield url


def _check(response: httpx2.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert b"Traceback" not in response.content
    if response.status_code >= 400 and response.request.method != "HEAD":  # HEAD: no body
        error = response.json()["error"]
        assert set(error) >= {"type", "code", "message"}
        assert isinstance(error["code"], str) and error["message"]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"]),
    path=st.sampled_from(
        ["/api/chat", "/api/models", "/api/runs/chat:s:0/events", "/healthz", "/", "/api/x"]
    )
    | st.builds(lambda s: f"/api/runs/{s}/events", st.text(max_size=20))
    | st.text(alphabet=string.ascii_letters + "/:%.-_~", max_size=30).map(lambda p: "/" + p),
    body=st.one_of(CHAT.map(_dumps), JSON.map(_dumps), st.binary(max_size=200)),
    auth=st.sampled_from([f"Bearer {KEY}", None, "Bearer nope", f"Basic {KEY}"]) | HEADER_TEXT,
    content_type=st.sampled_from(["application/json", None, "text/plain"]) | HEADER_TEXT,
    extra=st.dictionaries(
        st.sampled_from(["origin", "accept", "last-event-id", "sec-fetch-site", "x-other"]),
        HEADER_TEXT,
        max_size=3,
    ),
    after=st.none() | HEADER_TEXT | st.integers().map(str),
)
def test_any_request_gets_a_typed_answer(
    server: str,
    method: str,
    path: str,
    body: bytes,
    auth: str | None,
    content_type: str | None,
    extra: dict[str, str],
    after: str | None,
) -> None:
    headers: dict[str, Any] = dict(extra)
    if auth is not None:
        headers["authorization"] = auth
    if content_type is not None:
        headers["content-type"] = content_type
    params = {"after": after} if after is not None else None
    try:
        response = httpx2.request(
            method, server + path, content=body, headers=headers, params=params, timeout=20
        )
    except (httpx2.InvalidURL, httpx2.LocalProtocolError):
        return  # the client refused to send it
    _check(response)
