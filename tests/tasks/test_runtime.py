"""The task runner with scripted backends: readiness gate, results, failures, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent_runtime import (
    AgentBackendContext,
    AgentBackendInput,
    AgentTaskContext,
    AgentTaskRunOptions,
    AgentTaskSpec,
    BackendTransportError,
    ConfigurationError,
    DoneEvent,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    MessageEvent,
    ModelPrice,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    create_echo_backend,
    create_iterable_backend,
    parse_event,
    run_agent_task,
    run_agent_task_stream,
    summarize_agent_task_run,
)


class CountingBackend:
    """Counts calls to `stream` and how far its stream was consumed."""

    kind = "counting"

    def __init__(self, events: list[RuntimeStreamEvent], delay: float = 0.0) -> None:
        self.events = events
        self.delay = delay
        self.calls = 0
        self.closed = False
        self.inputs: list[AgentBackendInput] = []

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        self.calls += 1
        self.inputs.append(input)
        try:
            for e in self.events:
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield e
        finally:
            self.closed = True


SCRIPT: list[RuntimeStreamEvent] = [
    TextDeltaEvent("Hi "),
    TextDeltaEvent("there"),
    ToolCallEvent(call_id="c1", name="search", arguments='{"q":"x"}'),
    ToolResultEvent(call_id="c1", output={"hits": 2}, name="search"),
    UsageEvent(input_tokens=10, output_tokens=20, model="m1"),
    UsageEvent(input_tokens=1, output_tokens=2, total_tokens=3),
    DoneEvent(finish_reason="stop"),
]

NEEDS_CITY = KnowledgeRequirement(key="city", description="the user's city", source="user")


async def test_completed_run_collects_everything() -> None:
    spec = AgentTaskSpec(id="t", intent="hello", system_prompt="be brief")
    backend = CountingBackend(SCRIPT)
    opts = AgentTaskRunOptions(run_id="run-1", pricing={"m1": ModelPrice(2.0, 4.0)})
    events = [e async for e in run_agent_task_stream(spec, backend, opts)]
    assert [e.type for e in events[:2]] == ["run.started", "readiness"]
    assert events[-1].type == "run.finished"
    assert events[2:-1] == SCRIPT  # backend events pass through verbatim, in order
    r = events[-1].result
    assert r.status == "completed" and r.run_id == "run-1" and r.text == "Hi there"
    assert r.model == "m1"
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 22, 33)
    assert r.cost_usd == pytest.approx((11 * 2.0 + 22 * 4.0) / 1e6)
    assert r.tool_calls == (SCRIPT[2],) and r.tool_results == (SCRIPT[3],)
    assert r.event_count == len(events)
    assert [m.role for m in backend.inputs[0].messages] == ["system", "user"]
    s = summarize_agent_task_run(r)
    assert (s.status, s.tool_call_count, s.text_chars, s.error_code) == ("completed", 1, 8, None)
    # the final event survives the wire
    assert parse_event(events[-1].to_json()) == events[-1]


async def test_not_ready_never_calls_backend() -> None:
    spec = AgentTaskSpec(id="t", intent="weather please", requirements=(NEEDS_CITY,))
    backend = CountingBackend(SCRIPT)
    result = await run_agent_task(spec, backend)
    assert backend.calls == 0
    assert result.status == "needs_input"
    assert [q.requirement_key for q in result.questions] == ["city"]
    assert result.usage is None and result.cost_usd is None


async def test_acquire_data_plan_is_returned_without_backend_call() -> None:
    req = KnowledgeRequirement(
        key="orders", description="recent orders", source="data", data_source="crm"
    )
    spec = AgentTaskSpec(id="t", intent="summarize orders", requirements=(req,))
    backend = CountingBackend(SCRIPT)
    result = await run_agent_task(spec, backend)
    assert backend.calls == 0
    assert result.status == "needs_input"
    assert result.readiness.outcome == "acquire_data"
    assert [s.source for s in result.acquisition_plan.steps] == ["crm"]


async def test_ready_report_lets_backend_run() -> None:
    spec = AgentTaskSpec(id="t", intent="weather please", requirements=(NEEDS_CITY,))
    backend = CountingBackend(SCRIPT)
    opts = AgentTaskRunOptions(knowledge_report=KnowledgeReadinessReport(available=("city",)))
    result = await run_agent_task(spec, backend, opts)
    assert backend.calls == 1 and result.status == "completed"


async def test_knowledge_provider_is_consulted() -> None:
    class Provider:
        def __init__(self) -> None:
            self.asked: list[str] = []

        async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
            self.asked.append(task.id)
            return KnowledgeReadinessReport(available=("city",))

    provider = Provider()
    spec = AgentTaskSpec(id="t9", intent="weather", requirements=(NEEDS_CITY,))
    backend = CountingBackend(SCRIPT)
    result = await run_agent_task(spec, backend, AgentTaskRunOptions(knowledge_provider=provider))
    assert provider.asked == ["t9"] and result.status == "completed"


async def test_failing_provider_fails_run_without_backend() -> None:
    class Broken:
        async def assess(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
            raise OSError("profile store down")

    spec = AgentTaskSpec(id="t", intent="weather", requirements=(NEEDS_CITY,))
    backend = CountingBackend(SCRIPT)
    result = await run_agent_task(spec, backend, AgentTaskRunOptions(knowledge_provider=Broken()))
    assert backend.calls == 0
    assert result.status == "failed" and result.error.code == "knowledge.provider_error"


async def test_backend_transport_error_ends_failed() -> None:
    def factory(inp: AgentBackendInput, ctx: AgentBackendContext):
        async def gen():
            yield TextDeltaEvent("partial")
            raise BackendTransportError("boom", status=503, retryable=True, attempts=3)

        return gen()

    result = await run_agent_task(
        AgentTaskSpec(id="t", intent="x"), create_iterable_backend(factory)
    )
    assert result.status == "failed"
    assert result.error.code == "backend.transport"
    assert (result.error.status, result.error.retryable) == (503, True)
    assert result.error.details == {"attempts": 3}
    assert result.text == "partial"


async def test_backend_bug_and_bad_event_end_failed_not_crash() -> None:
    def buggy(inp, ctx):
        raise KeyError("oops")

    r1 = await run_agent_task(AgentTaskSpec(id="t", intent="x"), create_iterable_backend(buggy))
    assert r1.status == "failed" and r1.error.code == "backend.error"
    r2 = await run_agent_task(
        AgentTaskSpec(id="t", intent="x"), create_iterable_backend([{"type": "text.delta"}])
    )
    assert r2.status == "failed" and r2.error.code == "backend.invalid_event"


async def test_cancel_before_start_never_calls_backend() -> None:
    ctx = AgentTaskContext()
    ctx.cancel()
    backend = CountingBackend(SCRIPT)
    result = await run_agent_task(AgentTaskSpec(id="t", intent="x"), backend, context=ctx)
    assert result.status == "cancelled" and backend.calls == 0


async def test_cancel_while_backend_waits_closes_its_stream() -> None:
    backend = CountingBackend([TextDeltaEvent(f"{i} ") for i in range(1000)], delay=0.01)
    ctx = AgentTaskContext()
    asyncio.get_running_loop().call_later(0.1, ctx.cancel)
    result = await run_agent_task(AgentTaskSpec(id="t", intent="x"), backend, context=ctx)
    assert result.status == "cancelled"
    assert backend.closed
    assert 0 < len(result.text.split()) < 1000
    assert asyncio.current_task().cancelling() == 0


async def test_outside_cancellation_is_not_swallowed() -> None:
    backend = CountingBackend([TextDeltaEvent("x")] * 1000, delay=0.01)
    ctx = AgentTaskContext()
    task = asyncio.create_task(
        run_agent_task(AgentTaskSpec(id="t", intent="x"), backend, context=ctx)
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.closed


async def test_consumer_breaking_early_closes_backend() -> None:
    backend = CountingBackend([TextDeltaEvent("x")] * 100)
    stream = run_agent_task_stream(AgentTaskSpec(id="t", intent="x"), backend)
    async for event in stream:
        if event.type == "text.delta":
            break
    await stream.aclose()
    assert backend.closed


async def test_assistant_messages_give_text_when_no_deltas() -> None:
    backend = create_iterable_backend(
        [MessageEvent(role="assistant", content="whole answer"), DoneEvent("stop")]
    )
    result = await run_agent_task(AgentTaskSpec(id="t", intent="x"), backend)
    assert result.text == "whole answer" and len(result.messages) == 1


async def test_echo_backend_echoes_prompt() -> None:
    result = await run_agent_task(AgentTaskSpec(id="t", intent="ping pong"), create_echo_backend())
    assert result.text == "echo: ping pong" and result.backend == "echo"
    assert result.cost_usd is None and result.usage is None


async def test_bad_input_is_refused_typed() -> None:
    with pytest.raises(ConfigurationError):
        AgentTaskSpec(id="", intent="x")
    with pytest.raises(ConfigurationError):
        AgentTaskSpec(id="t", intent="x", metadata={"n": float("nan")})
    with pytest.raises(ConfigurationError):
        [e async for e in run_agent_task_stream("not a spec", create_echo_backend())]  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        AgentTaskRunOptions(pricing={"m": 1.0})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        ModelPrice(input_per_million=-1, output_per_million=0)
