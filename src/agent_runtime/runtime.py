"""The task runner: readiness gate, backend stream, result and summary.

`run_agent_task_stream` yields `run.started`, `readiness`, then (when ready) the backend's events
verbatim, and always ends with `run.finished` carrying the `AgentTaskRunResult`. It never raises
for backend failures: they end the run `failed` with a typed `error` event. Cancellation through
`AgentTaskContext.cancel()` interrupts the backend where it waits (closing its HTTP response)
and ends the run `cancelled`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends._protocol import AgentExecutionBackend
from .errors import AgentRuntimeError, BackendTransportError, ConfigurationError
from .knowledge import (
    AgentKnowledgeProvider,
    KnowledgeReadinessDecision,
    KnowledgeReadinessReport,
    decide_knowledge_readiness,
)
from .types import (
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    AgentRuntimeEvent,
    AgentTaskContext,
    AgentTaskRunResult,
    AgentTaskRunSummary,
    AgentTaskSpec,
    AgentTaskStatus,
    DoneEvent,
    ErrorEvent,
    MessageEvent,
    ModelPrice,
    ReadinessEvent,
    RunFinishedEvent,
    RunStartedEvent,
    RuntimeStreamEvent,
    StatusEvent,
    TextDeltaEvent,
    TokenUsage,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)

__all__ = [
    "AgentTaskRunOptions",
    "estimate_cost_usd",
    "run_agent_task",
    "run_agent_task_stream",
    "summarize_agent_task_run",
]

_STREAM_TYPES: frozenset[type] = frozenset(
    (
        TextDeltaEvent,
        MessageEvent,
        ToolCallEvent,
        ToolResultEvent,
        UsageEvent,
        StatusEvent,
        ErrorEvent,
        DoneEvent,
    )
)


@dataclass(frozen=True, slots=True)
class AgentTaskRunOptions:
    """How to run a task.

    `messages` replaces the default conversation (system prompt + the task's intent);
    `knowledge_report` (or `knowledge_provider`, asked when no report is given) feeds the
    readiness gate; `pricing` maps model ids to prices so the result carries a cost.
    """

    run_id: str | None = None
    model: str | None = None
    messages: Sequence[AgentMessage] | None = None
    session_id: str | None = None
    knowledge_report: KnowledgeReadinessReport | None = None
    knowledge_provider: AgentKnowledgeProvider | None = None
    pricing: Mapping[str, ModelPrice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.run_id is not None and (not isinstance(self.run_id, str) or not self.run_id):
            raise ConfigurationError("run_id must be a non-empty string")
        if self.messages is not None:
            msgs = tuple(self.messages)
            if not all(isinstance(m, AgentMessage) for m in msgs):
                raise ConfigurationError("messages must be AgentMessage instances")
            object.__setattr__(self, "messages", msgs)
        if self.knowledge_report is not None and not isinstance(
            self.knowledge_report, KnowledgeReadinessReport
        ):
            raise ConfigurationError("knowledge_report must be a KnowledgeReadinessReport")
        if self.knowledge_provider is not None and not callable(
            getattr(self.knowledge_provider, "assess", None)
        ):
            raise ConfigurationError("knowledge_provider must implement assess(task)")
        for model, price in dict(self.pricing).items():
            if not isinstance(model, str) or not isinstance(price, ModelPrice):
                raise ConfigurationError("pricing must map model ids to ModelPrice")


def estimate_cost_usd(
    usage: TokenUsage | None, model: str | None, pricing: Mapping[str, ModelPrice]
) -> float | None:
    """Cost in USD, or None when usage or the model's price is unknown (never a made-up 0)."""
    if usage is None or model is None:
        return None
    price = pricing.get(model)
    if price is None:
        return None
    return price.cost_usd(usage.input_tokens, usage.output_tokens)


class _CancelWatch:
    """Turns `context.cancelled` into a task cancellation, but only while the runner is awaiting
    the backend, so a consumer suspended elsewhere is never hit by a stray CancelledError."""

    __slots__ = ("fired", "in_backend", "owner", "sent", "task")

    def __init__(self, signal: asyncio.Event) -> None:
        self.fired = signal.is_set()
        self.in_backend = False
        self.sent = False
        self.owner: asyncio.Task[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        if not self.fired:
            self.task = asyncio.get_running_loop().create_task(self._watch(signal))

    async def _watch(self, signal: asyncio.Event) -> None:
        await signal.wait()
        self.fired = True
        if self.in_backend and self.owner is not None:
            self.sent = True
            self.owner.cancel()

    def absorb(self) -> bool:
        """After the backend await returned or raised: True if our cancel was delivered and is
        now withdrawn (the run ends `cancelled`); False if nothing of ours is pending."""
        if not self.sent:
            return False
        self.sent = False
        owner = self.owner
        return owner is None or owner.uncancel() == 0

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


def _error_from_exception(exc: BaseException) -> ErrorEvent:
    if isinstance(exc, BackendTransportError):
        return ErrorEvent(
            code=exc.code,
            message=exc.message,
            retryable=exc.retryable,
            status=exc.status,
            details={"attempts": exc.attempts},
        )
    if isinstance(exc, AgentRuntimeError):
        return ErrorEvent(code=exc.code, message=exc.message)
    return ErrorEvent(
        code="backend.error",
        message=f"{type(exc).__name__}: {exc}",
        details={"exception": type(exc).__name__},
    )


def _validate(spec: Any, backend: Any, options: Any, context: Any) -> None:
    if not isinstance(spec, AgentTaskSpec):
        raise ConfigurationError("spec must be an AgentTaskSpec")
    if not callable(getattr(backend, "stream", None)) or not isinstance(
        getattr(backend, "kind", None), str
    ):
        raise ConfigurationError("backend must implement AgentExecutionBackend (kind, stream)")
    if not isinstance(options, AgentTaskRunOptions):
        raise ConfigurationError("options must be AgentTaskRunOptions")
    if context is not None and not isinstance(context, AgentTaskContext):
        raise ConfigurationError("context must be an AgentTaskContext")


def _messages(spec: AgentTaskSpec, options: AgentTaskRunOptions) -> tuple[AgentMessage, ...]:
    if options.messages is not None:
        return tuple(options.messages)
    out: list[AgentMessage] = []
    if spec.system_prompt:
        out.append(AgentMessage(role="system", content=spec.system_prompt))
    out.append(AgentMessage(role="user", content=spec.intent))
    return tuple(out)


async def run_agent_task_stream(
    spec: AgentTaskSpec,
    backend: AgentExecutionBackend,
    options: AgentTaskRunOptions | None = None,
    *,
    context: AgentTaskContext | None = None,
) -> AsyncGenerator[AgentRuntimeEvent, None]:
    """Run `spec` on `backend`, yielding every event; the last one is `run.finished`."""
    options = options if options is not None else AgentTaskRunOptions()
    _validate(spec, backend, options, context)
    t0 = time.perf_counter()
    started_at_ms = time.time_ns() // 1_000_000
    run_id = options.run_id or (context.run_id if context else None) or uuid.uuid4().hex
    model = options.model or spec.model
    session_id = options.session_id or (context.session_id if context else None)
    kind = backend.kind
    count = 1
    yield RunStartedEvent(
        run_id=run_id, task_id=spec.id, backend=kind, model=model, started_at_ms=started_at_ms
    )

    def finish(status: AgentTaskStatus, **kw: Any) -> RunFinishedEvent:
        result = AgentTaskRunResult(
            run_id=run_id,
            task_id=spec.id,
            status=status,
            backend=kind,
            started_at_ms=started_at_ms,
            duration_ms=(time.perf_counter() - t0) * 1000.0,
            model=kw.pop("model", model),
            event_count=count + 1,
            **kw,
        )
        return RunFinishedEvent(result=result)

    # 1. readiness gate: the backend is never called unless the task is ready.
    report = options.knowledge_report
    decision: KnowledgeReadinessDecision
    try:
        if report is None and spec.requirements and options.knowledge_provider is not None:
            report = await options.knowledge_provider.assess(spec)
            if not isinstance(report, KnowledgeReadinessReport):
                raise ConfigurationError("knowledge provider returned no KnowledgeReadinessReport")
        decision = decide_knowledge_readiness(report, spec.requirements)
    except Exception as exc:
        err = ErrorEvent(code="knowledge.provider_error", message=f"{type(exc).__name__}: {exc}")
        count += 1
        yield err
        yield finish("failed", error=err)
        return
    count += 1
    yield ReadinessEvent(decision=decision)
    if not decision.ready:
        yield finish("needs_input", readiness=decision)
        return
    if context is not None and context.is_cancelled:
        yield finish("cancelled", readiness=decision)
        return

    # 2. the backend stream.
    signal = context.cancelled if context is not None else asyncio.Event()
    side: list[RuntimeStreamEvent] = []
    bctx = AgentBackendContext(
        cancelled=signal, run_id=run_id, session_id=session_id, emit=side.append
    )
    binput = AgentBackendInput(
        task=spec,
        messages=_messages(spec, options),
        run_id=run_id,
        model=model,
        session_id=session_id,
    )
    deltas: list[str] = []
    messages: list[MessageEvent] = []
    tool_calls: list[ToolCallEvent] = []
    tool_results: list[ToolResultEvent] = []
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    error: ErrorEvent | None = None
    first_ms: float | None = None
    seen_model = model
    cancelled = False
    watch = _CancelWatch(signal) if context is not None else None
    iterator = backend.stream(binput, bctx).__aiter__()
    try:
        while True:
            if watch is not None:
                if watch.fired or signal.is_set():
                    cancelled = True
                    break
                watch.owner = asyncio.current_task()
                watch.in_backend = True
            try:
                event = await iterator.__anext__()
            except StopAsyncIteration:
                break
            except asyncio.CancelledError:
                if watch is not None:
                    watch.in_backend = False
                    if watch.absorb():
                        cancelled = True
                        break
                raise
            except Exception as exc:
                if watch is not None:
                    watch.in_backend = False
                    if watch.absorb():
                        cancelled = True
                        break
                error = _error_from_exception(exc)
                count += 1
                yield error
                break
            if watch is not None:
                watch.in_backend = False
                if watch.absorb():
                    cancelled = True
                    break
            batch: tuple[RuntimeStreamEvent, ...] = (event,)
            if side:
                batch = (*side, event)
                side.clear()
            for ev in batch:
                if type(ev) not in _STREAM_TYPES:
                    error = ErrorEvent(
                        code="backend.invalid_event",
                        message=f"backend {kind!r} yielded {type(ev).__name__}, not an event",
                    )
                    count += 1
                    yield error
                    break
                if first_ms is None:
                    first_ms = (time.perf_counter() - t0) * 1000.0
                if ev.type == "text.delta":
                    if ev.index == 0:
                        deltas.append(ev.text)
                elif ev.type == "usage":
                    u = ev
                    total = u.total_tokens
                    if total is None:
                        total = u.input_tokens + u.output_tokens
                    if usage is None:
                        usage = TokenUsage(u.input_tokens, u.output_tokens, total)
                    else:
                        usage = TokenUsage(
                            usage.input_tokens + u.input_tokens,
                            usage.output_tokens + u.output_tokens,
                            usage.total_tokens + total,
                        )
                    if u.model:
                        seen_model = u.model
                elif ev.type == "message":
                    messages.append(ev)
                elif ev.type == "tool.call":
                    tool_calls.append(ev)
                elif ev.type == "tool.result":
                    tool_results.append(ev)
                elif ev.type == "done":
                    finish_reason = ev.finish_reason
                elif ev.type == "error" and error is None:
                    error = ev
                count += 1
                yield ev
            else:
                continue
            break  # an invalid event ended the run
    finally:
        if watch is not None:
            watch.stop()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
        if watch is not None and watch.absorb():
            cancelled = True

    status: AgentTaskStatus
    if cancelled:
        status = "cancelled"
    elif error is not None:
        status = "failed"
    else:
        status = "completed"
    text = "".join(deltas)
    if not deltas:
        text = "".join(m.content for m in messages if m.role == "assistant")
    pricing = options.pricing
    yield finish(
        status,
        model=seen_model,
        text=text,
        messages=tuple(messages),
        tool_calls=tuple(tool_calls),
        tool_results=tuple(tool_results),
        usage=usage,
        finish_reason=finish_reason,
        error=error,
        readiness=decision,
        time_to_first_event_ms=first_ms,
        cost_usd=estimate_cost_usd(usage, seen_model, pricing),
    )


async def run_agent_task(
    spec: AgentTaskSpec,
    backend: AgentExecutionBackend,
    options: AgentTaskRunOptions | None = None,
    *,
    context: AgentTaskContext | None = None,
    on_event: Callable[[AgentRuntimeEvent], None] | None = None,
) -> AgentTaskRunResult:
    """Run `spec` to the end and return its result (`on_event` sees every event on the way)."""
    result: AgentTaskRunResult | None = None
    stream = run_agent_task_stream(spec, backend, options, context=context)
    try:
        async for event in stream:
            if on_event is not None:
                on_event(event)
            if event.type == "run.finished":
                result = event.result
    finally:
        await stream.aclose()
    if result is None:  # pragma: no cover - the stream always ends with run.finished
        raise AgentRuntimeError("task stream ended without a result")
    return result


def summarize_agent_task_run(result: AgentTaskRunResult) -> AgentTaskRunSummary:
    """The accountable numbers of a run; token counts and cost are None when unknown."""
    if not isinstance(result, AgentTaskRunResult):
        raise ConfigurationError("result must be an AgentTaskRunResult")
    usage = result.usage
    return AgentTaskRunSummary(
        run_id=result.run_id,
        task_id=result.task_id,
        status=result.status,
        backend=result.backend,
        model=result.model,
        duration_ms=result.duration_ms,
        time_to_first_event_ms=result.time_to_first_event_ms,
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=usage.output_tokens if usage is not None else None,
        total_tokens=usage.total_tokens if usage is not None else None,
        cost_usd=result.cost_usd,
        tool_call_count=len(result.tool_calls),
        text_chars=len(result.text),
        finish_reason=result.finish_reason,
        error_code=result.error.code if result.error is not None else None,
        question_count=len(result.questions),
    )
