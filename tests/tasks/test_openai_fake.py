"""OpenAI-compatible backend against our fake server: what llm-katan cannot produce."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from agent_runtime import (
    AbortController,
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    BackendRetryPolicy,
    BackendTransportError,
    ModelPrice,
    ValidationError,
    create_openai_compatible_backend,
)
from agent_runtime.types import (
    LlmCallEvent,
    ReasoningDeltaEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from tests.backends.drive import TASK, context, drain

from .fake_openai import LEAKED_SECRET, FakeOpenAI

FAST = BackendRetryPolicy(initial_backoff_ms=1, max_backoff_ms=2)


async def _setup(serve: Any, model: str, *, suffix: str = "/v1", **kw: Any) -> Any:
    fake = FakeOpenAI()
    served = await serve(fake.app)
    kw.setdefault("retry", FAST)
    backend = create_openai_compatible_backend(
        api_key="key-123456", base_url=served.base_url + suffix, model=model, **kw
    )
    return fake, backend


def texts(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDeltaEvent))


async def test_request_url_headers_and_body(serve) -> None:
    fake, backend = await _setup(serve, "ok", suffix="/v1/")
    events = await drain(backend)
    await backend.aclose()
    assert fake.paths == ["/v1/chat/completions"]  # one trailing slash removed
    assert fake.headers[0]["authorization"] == "Bearer key-123456"
    assert fake.headers[0]["content-type"] == "application/json"
    assert fake.requests[0] == {
        "model": "ok",
        "stream": True,
        "messages": [{"role": "user", "content": "say hello"}],  # the task's intent
        "stream_options": {"include_usage": True},
    }
    assert [e.text for e in events if e.type == "text_delta"] == ["Hel", "lo ", "world"]
    assert all(e.task is TASK and e.session is not None and e.timestamp for e in events)


async def test_messages_then_message_then_intent(serve) -> None:
    fake, backend = await _setup(serve, "ok", kind="router")
    await drain(backend, message="explicit")
    msgs = (AgentMessage("system", "be brief"), AgentMessage("user", "hi"))
    await drain(backend, message="ignored", messages=msgs)
    await backend.aclose()
    assert fake.requests[0]["messages"] == [{"role": "user", "content": "explicit"}]
    assert fake.requests[1]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert backend.kind == "router"


async def test_usage_becomes_one_llm_call_priced_or_not(serve) -> None:
    _fake, priced = await _setup(serve, "ok", price=ModelPrice(2.0, 10.0))
    events = await drain(priced)
    await priced.aclose()
    calls = [e for e in events if isinstance(e, LlmCallEvent)]
    assert len(calls) == 1 and events[-1] is calls[0]
    call = calls[0]
    assert (call.model, call.tokens_in, call.tokens_out, call.finish_reason) == ("ok", 5, 3, "stop")
    assert call.cost_usd == pytest.approx((5 * 2.0 + 3 * 10.0) / 1e6)
    assert call.latency_ms is not None and call.latency_ms >= 0
    _fake, unpriced = await _setup(serve, "ok")
    call = (await drain(unpriced))[-1]
    await unpriced.aclose()
    assert isinstance(call, LlmCallEvent) and call.cost_usd is None
    assert "costUsd" not in call.to_dict()  # absent, never 0


async def test_no_usage_reported_means_no_llm_call(serve) -> None:
    _fake, backend = await _setup(serve, "reasoning")
    events = await drain(backend)
    await backend.aclose()
    assert not any(isinstance(e, LlmCallEvent) for e in events)


async def test_anthropic_usage_events_are_accumulated(serve) -> None:
    _fake, backend = await _setup(serve, "anthropic")
    events = await drain(backend)
    await backend.aclose()
    assert texts(events) == "Hi"  # `text`; the Anthropic content delta is not a known shape
    call = events[-1]
    assert isinstance(call, LlmCallEvent)
    assert (call.tokens_in, call.tokens_out, call.finish_reason) == (7, 5, "end_turn")


async def test_start_creates_a_session_with_the_requested_id(serve) -> None:
    _fake, backend = await _setup(serve, "ok", kind="tcloud")
    inp = AgentBackendInput(task=TASK)
    session = backend.start(inp, AgentBackendContext(task=TASK, requested_session_id="s-9"))
    assert (session.id, session.backend, session.status) == ("s-9", "tcloud", "active")
    assert uuid.UUID(backend.start(inp, AgentBackendContext(task=TASK)).id)
    assert not hasattr(backend, "resume") and not hasattr(backend, "stop")
    await backend.aclose()


async def test_a_non_json_payload_is_yielded_as_text(serve) -> None:
    fake, backend = await _setup(serve, "non-json")
    events = await drain(backend)
    await backend.aclose()
    assert [e.text for e in events] == ["fine ", "{not json", "after"]  # the original's quirk
    assert len(fake.requests) == 1


async def test_raw_vocabulary_payloads_go_through_the_common_mapping(serve) -> None:
    _fake, backend = await _setup(serve, "raw")
    events = await drain(backend)
    await backend.aclose()
    assert [type(e) for e in events] == [
        ToolCallEvent,
        ReasoningDeltaEvent,  # not its `text` as a text delta: the mapping knows this type
        TextDeltaEvent,
        TextDeltaEvent,
    ]
    assert (events[0].tool_name, events[0].tool_call_id, events[0].args) == (
        "search",
        "t1",
        {"q": 1},
    )
    assert events[1].text == "hmm"
    assert texts(events) == "plain done"  # 42, an unknown type and empty content: dropped


async def test_reasoning_content_becomes_reasoning_deltas(serve) -> None:
    _fake, backend = await _setup(serve, "reasoning")
    events = await drain(backend)
    await backend.aclose()
    assert [(e.type, e.text) for e in events] == [
        ("reasoning_delta", "Let me think. "),
        ("text_delta", "Answer."),
    ]


async def test_ndjson_and_whole_json_bodies(serve) -> None:
    _fake, nd = await _setup(serve, "ndjson")
    assert texts(await drain(nd)) == "ndjson tail"
    await nd.aclose()
    _fake, whole = await _setup(serve, "json")
    events = await drain(whole)
    await whole.aclose()
    assert texts(events) == "whole answer"
    assert isinstance(events[-1], LlmCallEvent) and events[-1].tokens_in == 2


async def test_cut_mid_stream_raises_and_is_not_retried(serve) -> None:
    fake, backend = await _setup(serve, "cut")
    got: list[Any] = []
    with pytest.raises(BackendTransportError) as info:
        async for e in backend.stream(AgentBackendInput(task=TASK), context()):
            got.append(e)
    await backend.aclose()
    assert texts(got) == "one two three "  # what arrived before the cut was delivered
    assert "cut" in info.value.message and info.value.status == 0
    assert info.value.backend == "tcloud" and info.value.code == "config"
    assert len(fake.requests) == 1  # never a silent retry once streaming began


async def test_inband_error_object_raises_with_the_secret_scrubbed(serve) -> None:
    _fake, backend = await _setup(serve, "inband-error")
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await backend.aclose()
    assert "model overloaded" in info.value.message
    assert LEAKED_SECRET not in info.value.message
    assert info.value.body is not None and "server_error" in info.value.body
    assert LEAKED_SECRET not in info.value.body and "[REDACTED:" in info.value.body


async def test_429_retry_after_is_honoured_then_succeeds(serve) -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    fake, backend = await _setup(serve, "retry-after", sleep=sleep)
    events = await drain(backend)
    await backend.aclose()
    assert texts(events) == "Hello world"
    assert len(fake.requests) == 2
    assert slept == [2.0]  # the server's Retry-After, not the computed 1 ms backoff


async def test_400_is_never_retried_and_its_body_is_scrubbed(serve) -> None:
    fake, backend = await _setup(serve, "bad-request")
    with pytest.raises(BackendTransportError) as info:
        await drain(backend)
    await backend.aclose()
    err = info.value
    assert err.message == "chat backend returned 400"
    assert (err.status, err.retryable, err.attempts) == (400, False, 1)
    assert err.body is not None and "invalid tool schema" in err.body
    assert LEAKED_SECRET not in err.body and "[REDACTED:" in err.body
    assert len(fake.requests) == 1


async def test_tool_call_fragments_are_assembled(serve) -> None:
    _fake, backend = await _setup(serve, "tools")
    events = await drain(backend)
    await backend.aclose()
    calls = [(e.tool_call_id, e.tool_name, e.args) for e in events if isinstance(e, ToolCallEvent)]
    assert calls == [
        ("call_a", "lookup", {"q": "x"}),
        ("call_b", "add", {"a": 1, "b": 2}),
        ("call_c", "broken", "{oops"),  # invalid JSON arguments stay the raw string
    ]


async def test_abort_during_the_request_is_raised_at_once(serve) -> None:
    fake, backend = await _setup(serve, "hang")
    ctrl = AbortController()

    async def abort_on_arrival() -> None:
        await fake.arrived.wait()
        ctrl.abort(RuntimeError("user pressed stop"))

    aborter = asyncio.create_task(abort_on_arrival())
    with pytest.raises(RuntimeError, match="user pressed stop"):
        await drain(backend, signal=ctrl.signal)
    await aborter
    await asyncio.wait_for(fake.disconnected.wait(), 10)  # the request was really dropped
    assert len(fake.requests) == 1  # an abort is not retried
    assert asyncio.current_task().cancelling() == 0  # no cancellation leaks to the caller
    await backend.aclose()


async def test_abort_during_the_backoff_sleep(serve) -> None:
    slow = BackendRetryPolicy(initial_backoff_ms=600_000, max_backoff_ms=600_000)
    fake, backend = await _setup(serve, "busy", retry=slow)
    ctrl = AbortController()

    async def abort_on_arrival() -> None:
        await fake.arrived.wait()
        await asyncio.sleep(0.05)  # let the backend reach its ten-minute backoff
        ctrl.abort()

    aborter = asyncio.create_task(abort_on_arrival())
    with pytest.raises(asyncio.CancelledError):
        await drain(backend, signal=ctrl.signal)
    await aborter
    assert len(fake.requests) == 1
    assert asyncio.current_task().cancelling() == 0
    await backend.aclose()


async def test_an_aborted_signal_sends_nothing(serve) -> None:
    fake, backend = await _setup(serve, "ok")
    ctrl = AbortController()
    ctrl.abort(ValueError("already"))
    with pytest.raises(ValueError, match="already"):
        await drain(backend, signal=ctrl.signal)
    assert fake.requests == []
    await backend.aclose()


async def test_abort_mid_stream_closes_the_response(serve) -> None:
    fake, backend = await _setup(serve, "slow")
    ctrl = AbortController()
    seen = 0
    with pytest.raises(asyncio.CancelledError):
        async for _event in backend.stream(
            AgentBackendInput(task=TASK), context(signal=ctrl.signal)
        ):
            seen += 1
            if seen == 3:
                asyncio.get_running_loop().call_soon(ctrl.abort)  # from outside the consumer
    await asyncio.wait_for(fake.disconnected.wait(), 10)
    assert fake.chunks_sent < 100
    assert asyncio.current_task().cancelling() == 0
    await backend.aclose()


async def test_closing_the_stream_early_releases_the_connection(serve) -> None:
    fake, backend = await _setup(serve, "slow")
    stream = backend.stream(AgentBackendInput(task=TASK), context())
    assert (await anext(stream)).text == "t0 "
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), 10)
    await backend.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x", "model": "m", "api_key": "k"},
        {"base_url": "http://", "model": "m", "api_key": "k"},
        {"base_url": 5, "model": "m", "api_key": "k"},
        {"base_url": "http://h", "model": " ", "api_key": "k"},
        {"base_url": "http://h", "model": "m", "api_key": None},
        {"base_url": "http://h", "model": "m", "api_key": "k\r\nX-A: b"},
        {"base_url": "http://h", "model": "m", "api_key": "k", "kind": ""},
        {"base_url": "http://h", "model": "m", "api_key": "k", "retry": {"max_attempts": 1}},
        {"base_url": "http://h", "model": "m", "api_key": "k", "price": 0.5},
        {"base_url": "http://h", "model": "m", "api_key": "k", "http_client": object()},
        {"base_url": "http://h", "model": "m", "api_key": "k", "extra_body": [1]},
        {"base_url": "http://h", "model": "m", "api_key": "k", "extra_body": {"x": float("nan")}},
        {"base_url": "http://h", "model": "m", "api_key": "k", "headers": {"x-a": "b\nc"}},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create_openai_compatible_backend(**kwargs)


def test_price_is_validated() -> None:
    with pytest.raises(ValidationError):
        ModelPrice(-1, 0)
    with pytest.raises(ValidationError):
        ModelPrice(float("inf"), 0)
    assert ModelPrice(1, 2).cost_usd(1_000_000, 500_000) == 2.0
