"""OpenAI-compatible backend against a real llm-katan echo server."""

from __future__ import annotations

import pytest

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    AgentTaskRunOptions,
    AgentTaskSpec,
    BackendRetryPolicy,
    BackendTransportError,
    ModelPrice,
    create_openai_compatible_backend,
    run_agent_task,
    run_agent_task_stream,
    summarize_agent_task_run,
)

from .conftest import KATAN_KEY, KATAN_MODEL

FAST = BackendRetryPolicy(max_retries=2, initial_delay_s=0.01, max_delay_s=0.02)
SPEC = AgentTaskSpec(id="katan-task", intent="hello from the runtime tests")


async def test_stream_arrives_as_deltas_and_assembles(katan: str) -> None:
    backend = create_openai_compatible_backend(katan, KATAN_KEY, KATAN_MODEL, retry=FAST)
    price = ModelPrice(input_per_million=1.0, output_per_million=2.0)
    opts = AgentTaskRunOptions(pricing={KATAN_MODEL: price})
    events = [e async for e in run_agent_task_stream(SPEC, backend, opts)]
    await backend.aclose()
    deltas = [e.text for e in events if e.type == "text.delta"]
    assert len(deltas) > 3  # llm-katan streams 4-character pieces
    result = events[-1].result
    assert result.status == "completed"
    assert result.text == "".join(deltas)
    assert "User: hello from the runtime tests" in result.text
    assert result.finish_reason == "stop"
    usage = result.usage
    assert usage is not None and usage.input_tokens == 5  # katan counts words
    assert usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    summary = summarize_agent_task_run(result)
    expected = (usage.input_tokens * 1.0 + usage.output_tokens * 2.0) / 1_000_000
    assert summary.cost_usd == pytest.approx(expected)
    assert summary.input_tokens == usage.input_tokens
    assert summary.time_to_first_event_ms is not None
    assert summary.duration_ms >= summary.time_to_first_event_ms


async def test_unknown_price_gives_none_cost(katan: str) -> None:
    backend = create_openai_compatible_backend(katan, KATAN_KEY, KATAN_MODEL, retry=FAST)
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "completed"
    assert result.usage is not None
    assert result.cost_usd is None
    assert summarize_agent_task_run(result).cost_usd is None


async def _drain(backend) -> None:
    inp = AgentBackendInput(task=SPEC, messages=(AgentMessage("user", "hi"),), run_id="r")
    import asyncio

    ctx = AgentBackendContext(cancelled=asyncio.Event(), run_id="r")
    async for _ in backend.stream(inp, ctx):
        pass


@pytest.mark.parametrize(
    ("flags", "status"),
    [
        (("--error-rate", "1.0"), 500),
        (("--rate-limit-after", "1"), 429),
        (("--timeout-after", "1"), 504),
    ],
    ids=["error-rate", "rate-limit", "timeout"],
)
async def test_failures_are_retried_then_surface_typed(katan_factory, flags, status) -> None:
    base = katan_factory(*flags)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    backend = create_openai_compatible_backend(
        base, KATAN_KEY, KATAN_MODEL, retry=FAST, sleep=sleep
    )
    if status != 500:
        await _drain(backend)  # the first request succeeds; the failure mode starts after it
    with pytest.raises(BackendTransportError) as info:
        await _drain(backend)
    err = info.value
    assert err.status == status
    assert err.retryable is True
    assert err.attempts == FAST.max_retries + 1
    assert len(slept) == FAST.max_retries  # one backoff before each retry
    # through the runner the same failure ends the run `failed` with the typed error
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "backend.transport"
    assert result.error.status == status
    assert result.error.details == {"attempts": 3}


async def test_rejected_key_is_not_echoed_into_the_error(katan_factory) -> None:
    base = katan_factory("--validate-keys", "--api-keys", "openai=the-right-key-123")
    wrong = "wrong-key-a1b2c3d4e5f6"
    backend = create_openai_compatible_backend(base, wrong, KATAN_MODEL, retry=FAST)
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "backend.transport"
    # the server echoes the rejected key in its error body; it must not reach our error
    assert "HTTP 401" in result.error.message or "HTTP 403" in result.error.message
    assert wrong not in result.error.message
    assert "[REDACTED:" in result.error.message
