"""Runner edge cases: late side events, per-model cost, failing cleanup, cancellation while the
knowledge provider waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskContext,
    AgentTaskRunOptions,
    AgentTaskSpec,
    BackendTransportError,
    DoneEvent,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    ModelPrice,
    RuntimeStreamEvent,
    StatusEvent,
    TextDeltaEvent,
    UsageEvent,
    create_iterable_backend,
    run_agent_task,
    run_agent_task_stream,
    summarize_agent_task_run,
)

SPEC = AgentTaskSpec(id="t", intent="x")


class TailEmitter:
    """Pushes events through `context.emit` after its last yielded event, then returns."""

    kind = "tail-emitter"

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        yield TextDeltaEvent("answer")
        assert context.emit is not None
        context.emit(UsageEvent(input_tokens=3, output_tokens=4, model="m"))
        context.emit(StatusEvent("finished"))


async def test_events_emitted_after_the_last_yield_are_delivered() -> None:
    opts = AgentTaskRunOptions(pricing={"m": ModelPrice(1.0, 1.0)})
    events = [e async for e in run_agent_task_stream(SPEC, TailEmitter(), opts)]
    assert [e.type for e in events] == [
        "run.started",
        "readiness",
        "text.delta",
        "usage",
        "status",
        "run.finished",
    ]
    result = events[-1].result
    assert result.usage is not None and result.usage.total_tokens == 7
    assert result.cost_usd == pytest.approx(7 / 1e6)
    assert result.event_count == len(events)


async def test_events_emitted_before_a_failure_are_delivered() -> None:
    def factory(inp: AgentBackendInput, ctx: AgentBackendContext) -> Any:
        async def gen() -> AsyncIterator[RuntimeStreamEvent]:
            assert ctx.emit is not None
            ctx.emit(UsageEvent(input_tokens=2, output_tokens=0))
            raise BackendTransportError("down", status=503, retryable=True, attempts=3)
            yield TextDeltaEvent("never")  # pragma: no cover

        return gen()

    events = [e async for e in run_agent_task_stream(SPEC, create_iterable_backend(factory))]
    assert [e.type for e in events] == [
        "run.started",
        "readiness",
        "usage",
        "error",
        "run.finished",
    ]
    result = events[-1].result
    assert result.status == "failed" and result.usage is not None
    assert result.event_count == len(events)


async def test_cost_is_priced_per_model_of_each_usage_event() -> None:
    backend = create_iterable_backend(
        [
            UsageEvent(input_tokens=1_000_000, output_tokens=0, model="big"),
            UsageEvent(input_tokens=1_000_000, output_tokens=1_000_000, model="small"),
            UsageEvent(input_tokens=0, output_tokens=1_000_000),  # no model: the last one seen
            DoneEvent("stop"),
        ]
    )
    pricing = {"big": ModelPrice(10.0, 0.0), "small": ModelPrice(1.0, 2.0)}
    result = await run_agent_task(SPEC, backend, AgentTaskRunOptions(pricing=pricing))
    assert result.cost_usd == pytest.approx(10.0 + 1.0 + 2.0 + 2.0)
    assert summarize_agent_task_run(result).cost_usd == result.cost_usd
    # one model without a price makes the whole cost unknown, never a partial number
    partial = await run_agent_task(
        SPEC, backend, AgentTaskRunOptions(pricing={"small": ModelPrice(1.0, 2.0)})
    )
    assert partial.cost_usd is None
    assert partial.usage is not None and partial.usage.input_tokens == 2_000_000


async def test_usage_without_model_is_priced_at_the_requested_model() -> None:
    backend = create_iterable_backend([UsageEvent(input_tokens=500_000, output_tokens=0)])
    opts = AgentTaskRunOptions(model="req", pricing={"req": ModelPrice(2.0, 0.0)})
    result = await run_agent_task(SPEC, backend, opts)
    assert result.cost_usd == pytest.approx(1.0)


class CleanupRaises:
    """A backend whose cleanup raises when it is closed before its end."""

    kind = "cleanup-raises"

    def __init__(self) -> None:
        self.closed = False

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        try:
            for _ in range(1000):
                await asyncio.sleep(0.001)
                yield TextDeltaEvent("x")
        finally:
            self.closed = True
            raise BackendTransportError("cleanup failed", retryable=False, attempts=1)


async def test_backend_cleanup_failure_after_cancel_still_ends_the_run() -> None:
    backend = CleanupRaises()
    ctx = AgentTaskContext()
    seen = 0
    events = []
    async for event in run_agent_task_stream(SPEC, backend, context=ctx):
        events.append(event)
        seen += event.type == "text.delta"
        if seen == 3:
            ctx.cancel()
    assert backend.closed
    assert events[-1].type == "run.finished"
    assert events[-1].result.status == "cancelled"
    assert events[-1].result.event_count == len(events)


class SlowProvider:
    def __init__(self) -> None:
        self.cancelled = False

    async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return KnowledgeReadinessReport(available=("city",))  # pragma: no cover


async def test_cancel_while_the_knowledge_provider_waits_ends_promptly() -> None:
    req = KnowledgeRequirement(key="city", description="city", source="user")
    spec = AgentTaskSpec(id="t", intent="weather", requirements=(req,))
    provider = SlowProvider()
    backend = create_iterable_backend([TextDeltaEvent("never")])
    ctx = AgentTaskContext()
    asyncio.get_running_loop().call_later(0.05, ctx.cancel)
    t0 = time.monotonic()
    result = await asyncio.wait_for(
        run_agent_task(
            spec, backend, AgentTaskRunOptions(knowledge_provider=provider), context=ctx
        ),
        5,
    )
    assert time.monotonic() - t0 < 2
    assert result.status == "cancelled" and result.text == ""
    assert provider.cancelled
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_provider_with_a_context_still_decides_and_reports_failures() -> None:
    req = KnowledgeRequirement(key="city", description="city", source="user")
    spec = AgentTaskSpec(id="t", intent="weather", requirements=(req,))

    class Ready:
        async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
            await asyncio.sleep(0.01)
            return KnowledgeReadinessReport(available=("city",))

    class Broken:
        async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
            raise OSError("profile store down")

    backend = create_iterable_backend([TextDeltaEvent("sunny"), DoneEvent("stop")])
    ok = await run_agent_task(
        spec, backend, AgentTaskRunOptions(knowledge_provider=Ready()), context=AgentTaskContext()
    )
    assert ok.status == "completed" and ok.text == "sunny"
    bad = await run_agent_task(
        spec, backend, AgentTaskRunOptions(knowledge_provider=Broken()), context=AgentTaskContext()
    )
    assert bad.status == "failed" and bad.error is not None
    assert bad.error.code == "knowledge.provider_error"


async def test_outside_cancellation_during_the_provider_propagates_and_stops_it() -> None:
    req = KnowledgeRequirement(key="city", description="city", source="user")
    spec = AgentTaskSpec(id="t", intent="weather", requirements=(req,))
    provider = SlowProvider()
    task = asyncio.create_task(
        run_agent_task(
            spec,
            create_iterable_backend([]),
            AgentTaskRunOptions(knowledge_provider=provider),
            context=AgentTaskContext(),
        )
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.cancelled
