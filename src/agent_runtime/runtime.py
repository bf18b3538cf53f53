"""The task runner: readiness gate, backend stream, result and summary.

`run_agent_task_stream` yields `run.started`, `readiness`, then (when ready) the backend's events
verbatim, and always ends with `run.finished` carrying the `AgentTaskRunResult`. It never raises
for backend failures: they end the run `failed` with a typed `error` event. Cancellation through
`AgentTaskContext.cancel()` interrupts the backend where it waits (closing its HTTP response)
and ends the run `cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
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
        for name in ("model", "session_id"):
            if not isinstance(getattr(self, name), str | None):
                raise ConfigurationError(f"{name} must be a string or None")
        if self.messages is not None:
            if not isinstance(self.messages, Iterable) or isinstance(self.messages, str):
                raise ConfigurationError("messages must be AgentMessage instances")
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
        if not isinstance(self.pricing, Mapping):
            raise ConfigurationError("pricing must map model ids to ModelPrice")
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
    """Turns `context.cancelled` into a task cancellation, delivered only while the runner's
    generator is suspended inside the backend await (`ag_running`), so a consumer suspended
    elsewhere is never hit by a stray CancelledError and the hot loop sets no flags."""

    __slots__ = ("gen", "owner", "sent", "task")

    def __init__(self) -> None:
        self.gen: AsyncGenerator[Any, None] | None = None
        self.owner: asyncio.Task[Any] | None = None
        self.sent = False
        self.task: asyncio.Task[None] | None = None

    def start(self, signal: asyncio.Event) -> None:
        self.task = asyncio.get_running_loop().create_task(self._watch(signal))

    async def _watch(self, signal: asyncio.Event) -> None:
        await signal.wait()
        gen, owner = self.gen, self.owner
        running = getattr(gen, "ag_running", False)
        if (
            running
            and owner is not None
            and owner is not asyncio.current_task()
            and not owner.done()
        ):
            self.sent = True
            owner.cancel()

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


class _Collector:
    """Accumulates what a run produced from the backend's events."""

    __slots__ = (
        "cost",
        "deltas",
        "error",
        "finish_reason",
        "messages",
        "model",
        "pricing",
        "tool_calls",
        "tool_results",
        "usage",
    )

    def __init__(self, model: str | None, pricing: Mapping[str, ModelPrice]) -> None:
        self.deltas: list[str] = []
        self.messages: list[MessageEvent] = []
        self.tool_calls: list[ToolCallEvent] = []
        self.tool_results: list[ToolResultEvent] = []
        self.usage: TokenUsage | None = None
        self.finish_reason: str | None = None
        self.error: ErrorEvent | None = None
        self.model = model
        self.pricing = pricing
        self.cost: float | None = 0.0  # None once a usage event's model has no price

    def add(self, ev: RuntimeStreamEvent) -> None:
        if ev.type == "text.delta":
            if ev.index == 0:
                self.deltas.append(ev.text)
        elif ev.type == "usage":
            total = ev.total_tokens
            if total is None:
                total = ev.input_tokens + ev.output_tokens
            u = self.usage
            if u is None:
                self.usage = TokenUsage(ev.input_tokens, ev.output_tokens, total)
            else:
                self.usage = TokenUsage(
                    u.input_tokens + ev.input_tokens,
                    u.output_tokens + ev.output_tokens,
                    u.total_tokens + total,
                )
            if ev.model:
                self.model = ev.model
            if self.cost is not None:
                # each call is priced at its own model (a usage without one: the last model seen)
                price = self.pricing.get(self.model) if self.model is not None else None
                self.cost = (
                    None
                    if price is None
                    else self.cost + price.cost_usd(ev.input_tokens, ev.output_tokens)
                )
        elif ev.type == "message":
            self.messages.append(ev)
        elif ev.type == "tool.call":
            self.tool_calls.append(ev)
        elif ev.type == "tool.result":
            self.tool_results.append(ev)
        elif ev.type == "done":
            self.finish_reason = ev.finish_reason
        elif ev.type == "error" and self.error is None:
            self.error = ev

    @property
    def text(self) -> str:
        if self.deltas:
            return "".join(self.deltas)
        return "".join(m.content for m in self.messages if m.role == "assistant")

    @property
    def cost_usd(self) -> float | None:
        """The summed per-call cost; None without usage or when any call's price is unknown."""
        return self.cost if self.usage is not None else None

    def take(self, side: list[RuntimeStreamEvent]) -> list[RuntimeStreamEvent]:
        """Collect and hand out the events a backend pushed through `context.emit`."""
        pushed = [ev for ev in side if type(ev) in _STREAM_TYPES]
        side.clear()
        for ev in pushed:
            self.add(ev)
        return pushed


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


_CANCELLED: Any = object()


async def _assess(
    provider: AgentKnowledgeProvider, spec: AgentTaskSpec, context: AgentTaskContext | None
) -> Any:
    """The provider's report, or `_CANCELLED` when the context is cancelled first (the
    provider's call is then cancelled and awaited, so a slow provider cannot hold a cancel)."""
    if context is None:
        return await provider.assess(spec)
    if context.is_cancelled:
        return _CANCELLED
    job = asyncio.ensure_future(provider.assess(spec))
    stop = asyncio.ensure_future(context.cancelled.wait())
    try:
        await asyncio.wait((job, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not job.done():
            job.cancel()
            await asyncio.wait((job,))
    if context.is_cancelled:
        if not job.cancelled():
            job.exception()  # retrieved: a provider failure is moot once the run is cancelled
        return _CANCELLED
    return job.result()


def run_agent_task_stream(
    spec: AgentTaskSpec,
    backend: AgentExecutionBackend,
    options: AgentTaskRunOptions | None = None,
    *,
    context: AgentTaskContext | None = None,
) -> AsyncGenerator[AgentRuntimeEvent, None]:
    """Run `spec` on `backend`, yielding every event; the last one is `run.finished`.

    Arguments are validated here, before iteration starts (`ConfigurationError`).
    """
    options = options if options is not None else AgentTaskRunOptions()
    _validate(spec, backend, options, context)
    watch = _CancelWatch() if context is not None else None
    gen = _run(spec, backend, options, context, watch)
    if watch is not None:
        watch.gen = gen
    return gen


async def _run(
    spec: AgentTaskSpec,
    backend: AgentExecutionBackend,
    options: AgentTaskRunOptions,
    context: AgentTaskContext | None,
    watch: _CancelWatch | None,
) -> AsyncGenerator[AgentRuntimeEvent, None]:
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
            assessed = await _assess(options.knowledge_provider, spec, context)
            if assessed is _CANCELLED:
                yield finish("cancelled")
                return
            if not isinstance(assessed, KnowledgeReadinessReport):
                raise ConfigurationError("knowledge provider returned no KnowledgeReadinessReport")
            report = assessed
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
    acc = _Collector(model, options.pricing)
    deltas = acc.deltas
    first_ms: float | None = None
    cancelled = False
    if watch is not None:
        # The task consuming the stream; a cancel is delivered to it only while this generator
        # is suspended inside the backend (see _CancelWatch). Consume a cancellable stream from
        # one task: resumed from another task, cancellation takes effect at the next event.
        watch.owner = asyncio.current_task()
        watch.start(signal)
    iterator = backend.stream(binput, bctx)
    try:
        try:
            async for event in iterator:
                if watch is not None and watch.sent and watch.absorb():
                    cancelled = True
                    break
                if side:  # events a backend pushed through `context.emit` come first
                    for ev in acc.take(side):
                        count += 1
                        yield ev
                cls = type(event)
                if cls is TextDeltaEvent:
                    if event.index == 0:  # type: ignore[union-attr]
                        deltas.append(event.text)  # type: ignore[union-attr]
                elif cls in _STREAM_TYPES:
                    acc.add(event)
                else:
                    acc.error = ErrorEvent(
                        code="backend.invalid_event",
                        message=f"backend {kind!r} yielded {cls.__name__}, not an event",
                    )
                    count += 1
                    yield acc.error
                    break
                if first_ms is None:
                    first_ms = (time.perf_counter() - t0) * 1000.0
                count += 1
                yield event
                if watch is not None and signal.is_set():
                    cancelled = True
                    break
        except asyncio.CancelledError:
            if watch is None or not watch.absorb():
                raise
            cancelled = True
        except Exception as exc:
            if watch is not None and watch.absorb():
                cancelled = True
            else:
                for ev in acc.take(side):  # pushed before the failure
                    count += 1
                    yield ev
                acc.error = _error_from_exception(exc)
                count += 1
                yield acc.error
    finally:
        if watch is not None:
            watch.stop()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            # Only reachable once the run has already ended (cancelled, invalid event) or its
            # consumer left: a failing cleanup must not replace how the run ended.
            with contextlib.suppress(Exception):
                await aclose()
        if watch is not None and watch.absorb():
            cancelled = True
    if side:  # pushed after the backend's last event (or while closing): nothing is lost
        for ev in acc.take(side):
            count += 1
            yield ev

    status: AgentTaskStatus
    if cancelled:
        status = "cancelled"
    elif acc.error is not None:
        status = "failed"
    else:
        status = "completed"
    yield finish(
        status,
        model=acc.model,
        text=acc.text,
        messages=tuple(acc.messages),
        tool_calls=tuple(acc.tool_calls),
        tool_results=tuple(acc.tool_results),
        usage=acc.usage,
        finish_reason=acc.finish_reason,
        error=acc.error,
        readiness=decision,
        time_to_first_event_ms=first_ms,
        cost_usd=acc.cost_usd,
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
