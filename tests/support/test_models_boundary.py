"""`get_models` at its boundary: wrong keys against a key-checking llm-katan, malformed URLs
and keys, a router that never answers. Every failure is typed and bounded in time."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent_runtime.errors import (
    BackendTransportError,
    ConfigurationError,
    InvalidArgumentError,
)
from agent_runtime.models import get_models

from .conftest import KATAN_KEY, KATAN_MODEL

WRONG_KEY = "sk-proj-wrongkey-" + "W1x2" * 8


async def test_wrong_key_is_a_typed_401_that_does_not_echo_the_key(llm_katan_keyed: str) -> None:
    assert [m.id for m in await get_models(llm_katan_keyed, KATAN_KEY)] == [KATAN_MODEL]
    for key in (WRONG_KEY, "plain-wrong-key-123"):
        with pytest.raises(BackendTransportError) as info:
            await get_models(llm_katan_keyed, key)
        assert info.value.status == 401 and info.value.retryable is False
        assert key not in str(info.value), "the router echoes the key; the error must not"
        assert "401" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": 123}, InvalidArgumentError),
        ({"base_url": "http://[::1"}, ConfigurationError),
        ({"base_url": "http://127.0.0.1:99999"}, ConfigurationError),
        ({"base_url": "http://127.0.0.1:9", "api_key": "sk-abc\u201d"}, InvalidArgumentError),
        ({"base_url": "http://127.0.0.1:9", "api_key": "a\x00b"}, InvalidArgumentError),
        ({"base_url": "http://127.0.0.1:9", "timeout": -1}, InvalidArgumentError),
        ({"base_url": "http://127.0.0.1:9", "timeout": float("nan")}, InvalidArgumentError),
    ],
)
async def test_malformed_arguments_are_typed(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        await get_models(**kwargs)


def test_credentials_in_the_url_stay_out_of_the_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendTransportError) as info:
        asyncio.run(get_models(f"http://admin:hunter22pw@127.0.0.1:{port}/v1", "k"))
    assert "hunter22pw" not in str(info.value)


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
        await get_models(silent_server, "k", timeout=0.5)
    assert info.value.retryable is True
    assert time.monotonic() - start < 5
