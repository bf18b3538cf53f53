"""OpenAI-compatible backend against a real llm-katan echo server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from agent_runtime import (
    AgentMessage,
    BackendRetryPolicy,
    BackendTransportError,
    ModelPrice,
    create_openai_compatible_backend,
)
from agent_runtime.types import LlmCallEvent, TextDeltaEvent
from tests.backends.drive import drain
from tests.katan import free_port

from .conftest import KATAN_KEY, KATAN_MODEL


def counting_client() -> tuple[httpx2.AsyncClient, list[str]]:
    """A real client that records every request it sends (to count attempts)."""
    sent: list[str] = []

    async def on_request(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    return httpx2.AsyncClient(event_hooks={"request": [on_request]}), sent


async def test_stream_arrives_as_text_deltas_then_one_llm_call(katan: str) -> None:
    price = ModelPrice(input_per_million=1.0, output_per_million=2.0)
    backend = create_openai_compatible_backend(
        api_key=KATAN_KEY, base_url=f"{katan}/v1", model=KATAN_MODEL, price=price
    )
    msgs = (AgentMessage("user", "hello from the runtime tests"),)
    events = await drain(backend, messages=msgs)
    await backend.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDeltaEvent)]
    assert len(deltas) > 3  # llm-katan streams 4-character pieces
    assert "User: hello from the runtime tests" in "".join(deltas)
    calls = [e for e in events if isinstance(e, LlmCallEvent)]
    assert len(calls) == 1 and events[-1] is calls[0]
    call = calls[0]
    assert call.model == KATAN_MODEL and call.finish_reason == "stop"
    assert call.tokens_in == 5  # llm-katan counts words
    assert call.tokens_out is not None and call.tokens_out > 0
    assert call.cost_usd == pytest.approx((call.tokens_in * 1.0 + call.tokens_out * 2.0) / 1e6)
    assert call.latency_ms is not None and call.latency_ms > 0


async def test_no_price_no_cost(katan: str) -> None:
    backend = create_openai_compatible_backend(
        api_key=KATAN_KEY, base_url=f"{katan}/v1/", model=KATAN_MODEL
    )
    call = (await drain(backend))[-1]
    await backend.aclose()
    assert isinstance(call, LlmCallEvent) and call.tokens_in is not None
    assert call.cost_usd is None and "costUsd" not in call.to_dict()


@pytest.mark.parametrize(
    ("flags", "status"),
    [
        (("--error-rate", "1.0"), 500),
        (("--rate-limit-after", "1"), 429),
        (("--timeout-after", "1"), 504),
    ],
    ids=["error-rate", "rate-limit", "timeout"],
)
async def test_failures_are_retried_five_times_by_default(
    katan_factory: Callable[..., str], flags: tuple[str, ...], status: int
) -> None:
    base = katan_factory(*flags)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    client, sent = counting_client()
    backend = create_openai_compatible_backend(
        api_key=KATAN_KEY,
        base_url=f"{base}/v1",
        model=KATAN_MODEL,
        http_client=client,
        sleep=sleep,
    )
    if status != 500:
        await drain(backend)  # the first request succeeds; the failure mode starts after it
        sent.clear()
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await client.aclose()
    err = info.value
    assert err.message == f"chat backend returned {status}"
    assert (err.status, err.retryable, err.attempts) == (status, True, 5)
    assert err.backend == "tcloud" and err.code == "config"
    assert err.body is not None and "error" in err.body
    assert len(sent) == 5  # the default policy: five attempts in all
    # four backoffs of 1000 ms doubling, each within the ±25 % jitter
    assert len(slept) == 4
    for n, s in enumerate(slept):
        assert 0.75 * 2**n <= s <= 1.25 * 2**n


async def test_max_attempts_one_disables_retries(katan_factory: Callable[..., str]) -> None:
    base = katan_factory("--error-rate", "1.0")
    client, sent = counting_client()
    backend = create_openai_compatible_backend(
        api_key=KATAN_KEY,
        base_url=f"{base}/v1",
        model=KATAN_MODEL,
        http_client=client,
        retry=BackendRetryPolicy(max_attempts=1),
    )
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await client.aclose()
    assert info.value.attempts == 1 and len(sent) == 1


async def test_rejected_key_is_not_retried_nor_echoed(katan_factory: Callable[..., str]) -> None:
    base = katan_factory("--validate-keys", "--api-keys", "openai=the-right-key-123")
    wrong = "wrong-key-a1b2c3d4e5f6"
    client, sent = counting_client()
    backend = create_openai_compatible_backend(
        api_key=wrong, base_url=f"{base}/v1", model=KATAN_MODEL, http_client=client
    )
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await client.aclose()
    err: Any = info.value
    assert err.status in (401, 403) and err.retryable is False and len(sent) == 1
    # the server echoes the rejected key in its error body; it must not reach our error
    assert err.body is not None and "invalid API key" in err.body
    assert wrong not in err.body and "[REDACTED:" in err.body
    assert wrong not in str(err.to_dict())


async def test_unreachable_after_n_attempts() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    backend = create_openai_compatible_backend(
        api_key="k",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        model="m",
        retry=BackendRetryPolicy(max_attempts=3),
        sleep=sleep,
    )
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await backend.aclose()
    err = info.value
    assert err.message.startswith("chat backend unreachable after 3 attempts: ")
    assert (err.status, err.attempts, len(slept)) == (0, 3, 2)
