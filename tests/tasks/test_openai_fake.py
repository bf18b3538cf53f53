"""OpenAI-compatible backend against our fake server: faults llm-katan cannot inject."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime import (
    AgentTaskContext,
    AgentTaskSpec,
    BackendRetryPolicy,
    BackendTransportError,
    create_openai_compatible_backend,
    run_agent_task,
    run_agent_task_stream,
)
from agent_runtime.backends import STREAM_INTERRUPTED

from .fake_openai import FakeOpenAI

SPEC = AgentTaskSpec(id="t1", intent="say hello")
FAST = BackendRetryPolicy(max_retries=2, initial_delay_s=0.01, max_delay_s=0.02)


async def _setup(serve, model: str, **kw):
    fake = FakeOpenAI()
    served = await serve(fake.app)
    backend = create_openai_compatible_backend(served.base_url, "k", model, retry=FAST, **kw)
    return fake, backend


async def test_ok_stream_assembles_text_usage_and_finish(serve) -> None:
    fake, backend = await _setup(serve, "ok")
    events = [e async for e in run_agent_task_stream(SPEC, backend)]
    await backend.aclose()
    deltas = [e.text for e in events if e.type == "text.delta"]
    assert deltas == ["Hel", "lo ", "world"]
    result = events[-1].result
    assert result.status == "completed"
    assert result.text == "Hello world"
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 3)
    body = fake.requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "say hello"}]


async def test_cut_mid_stream_fails_typed_and_is_not_retried(serve) -> None:
    fake, backend = await _setup(serve, "cut")
    events = [e async for e in run_agent_task_stream(SPEC, backend)]
    await backend.aclose()
    result = events[-1].result
    assert result.status == "failed"
    assert result.error is not None and result.error.code == STREAM_INTERRUPTED
    assert result.text == "one two three "  # what arrived before the cut is kept
    assert len(fake.requests) == 1  # never a silent retry once streaming began
    assert [e.type for e in events].count("error") == 1


async def test_malformed_chunk_fails_typed(serve) -> None:
    fake, backend = await _setup(serve, "malformed")
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "failed"
    assert result.error.code == STREAM_INTERRUPTED
    assert "malformed" in result.error.message
    assert result.text == "fine "
    assert len(fake.requests) == 1


async def test_inband_error_object_becomes_error_event(serve) -> None:
    _fake, backend = await _setup(serve, "inband-error")
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "failed"
    assert result.error.code == "backend.upstream_error"
    assert result.error.message == "model overloaded"
    assert result.error.details == {"type": "server_error", "code": 529}


async def test_429_retry_after_is_honoured_then_succeeds(serve) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    fake, backend = await _setup(serve, "retry-after", sleep=sleep)
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "completed" and result.text == "Hello world"
    assert len(fake.requests) == 2
    assert slept == [2.0]  # the server's Retry-After, not the computed backoff


async def test_retry_after_is_capped() -> None:
    policy = BackendRetryPolicy(max_retry_after_s=60)
    assert policy.delay_s(1, retry_after_s=600) == 60


async def test_400_is_never_retried(serve) -> None:
    fake, backend = await _setup(serve, "bad-request")
    stream = backend.stream
    from agent_runtime import AgentBackendContext, AgentBackendInput, AgentMessage

    inp = AgentBackendInput(task=SPEC, messages=(AgentMessage("user", "x"),), run_id="r")
    ctx = AgentBackendContext(cancelled=asyncio.Event(), run_id="r")
    with pytest.raises(BackendTransportError) as info:
        async for _ in stream(inp, ctx):
            pass
    await backend.aclose()
    assert info.value.status == 400 and info.value.retryable is False
    assert info.value.attempts == 1 and "bad tool schema" in info.value.message
    assert len(fake.requests) == 1


async def test_tool_call_fragments_are_assembled(serve) -> None:
    _fake, backend = await _setup(serve, "tools")
    result = await run_agent_task(SPEC, backend)
    await backend.aclose()
    assert result.status == "completed" and result.finish_reason == "tool_calls"
    calls = [(c.call_id, c.name, c.parsed_arguments()) for c in result.tool_calls]
    assert calls == [("call_a", "lookup", {"q": "x"}), ("call_b", "add", {"a": 1, "b": 2})]


async def test_cancel_mid_stream_closes_the_http_response(serve) -> None:
    fake, backend = await _setup(serve, "slow")
    ctx = AgentTaskContext()
    seen = 0
    last = None
    async for event in run_agent_task_stream(SPEC, backend, context=ctx):
        last = event
        if event.type == "text.delta":
            seen += 1
            if seen == 3:
                ctx.cancel()
    assert last is not None and last.type == "run.finished"
    assert last.result.status == "cancelled"
    assert last.result.error is None
    # the server sees the client go away long before its 10 s stream would end
    await asyncio.wait_for(fake.disconnected.wait(), 5)
    assert fake.chunks_sent < 100
    await backend.aclose()


async def test_cancel_from_another_task_while_backend_waits(serve) -> None:
    fake, backend = await _setup(serve, "slow")
    ctx = AgentTaskContext()

    async def cancel_soon() -> None:
        await asyncio.sleep(0.15)
        ctx.cancel()

    canceller = asyncio.create_task(cancel_soon())
    result = await run_agent_task(SPEC, backend, context=ctx)
    await canceller
    assert result.status == "cancelled"
    assert len(result.text) > 0
    await asyncio.wait_for(fake.disconnected.wait(), 5)
    # the consumer task itself was not left cancelled
    assert asyncio.current_task().cancelling() == 0
    await backend.aclose()


async def test_several_models_listed_by_the_fake_router(serve) -> None:
    from agent_runtime.models import get_models

    fake = FakeOpenAI()
    served = await serve(fake.app)
    models = await get_models(served.base_url, "k")
    assert [m.id for m in models] == ["a", "b", "c"]
