"""`get_models` at its boundary: wrong keys against a key-checking llm-katan, malformed URLs
and keys, a router that never answers. Every failure is typed and bounded in time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent_runtime import BackendTransportError, ValidationError, get_models

from .conftest import KATAN_KEY, KATAN_MODEL

WRONG_KEY = "sk-proj-wrongkey-" + "W1x2" * 8


async def test_wrong_key_is_a_typed_401_that_does_not_echo_the_key(llm_katan_keyed: str) -> None:
    models = await get_models(llm_katan_keyed, api_key=KATAN_KEY)
    assert [m["id"] for m in models] == [KATAN_MODEL]
    for key in (WRONG_KEY, "plain-wrong-key-123"):
        with pytest.raises(BackendTransportError) as info:
            await get_models(llm_katan_keyed, api_key=key)
        assert info.value.status == 401 and info.value.retryable is False
        assert key not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"router_base_url": 123},
        {"router_base_url": "ftp://example.com"},
        {"router_base_url": "http://[::1"},
        {"router_base_url": "http://127.0.0.1:99999"},
        {"router_base_url": "http://127.0.0.1:9", "api_key": "sk-abc\u201d"},
        {"router_base_url": "http://127.0.0.1:9", "api_key": "a\x00b"},
        {"router_base_url": "http://127.0.0.1:9", "api_key": "a b"},
        {"router_base_url": "http://127.0.0.1:9", "timeout": -1},
        {"router_base_url": "http://127.0.0.1:9", "timeout": float("nan")},
    ],
)
async def test_malformed_arguments_are_validation_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        await get_models(**kwargs)


async def test_credentials_in_the_url_stay_out_of_the_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendTransportError) as info:
        await get_models(f"http://admin:hunter22pw@127.0.0.1:{port}/v1", api_key="k-secret-1")
    assert info.value.status == 0 and info.value.retryable is True
    assert "hunter22pw" not in str(info.value) and "k-secret-1" not in str(info.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


async def test_a_router_that_never_answers_times_out_typed(silent_server: str) -> None:
    start = time.monotonic()
    with pytest.raises(BackendTransportError) as info:
        await get_models(silent_server, timeout=0.5)
    assert info.value.retryable is True
    assert time.monotonic() - start < 5
