"""`run_agent_task_stream`: the backend streaming loop of ORIGINAL §4.4.

Readiness gate, preflight (questions, acquisition plans, refresh), session start or resume
through the backend, the backend's stream normalized (§7.4) and appended to the session store
before each event is yielded, then the success or failure tail. An `AbortSignal` interrupts a
backend blocked on its next event at no cost per event (see `_AbortWatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import AgentRuntimeError, BackendTransportError, SessionMismatchError, ValidationError
from .eval._readiness import (
    acquisition_plans_for_knowledge_gaps,
    check_minimum_score,
    score_knowledge_readiness,
    user_questions_for_knowledge_gaps,
)
from .eval._records import DataAcquisitionPlan, KnowledgeReadinessReport, UserQuestion
from .readiness import decide_knowledge_readiness
from .types import (
    _STREAM_CLASSES,
    AbortSignal,
    AcquisitionEndEvent,
    AcquisitionStartEvent,
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    AgentTaskSpec,
    BackendEndEvent,
    BackendErrorDetail,
    BackendErrorEvent,
    BackendStartEvent,
    FinalEvent,
    QuestionsEndEvent,
    QuestionsStartEvent,
    ReadinessEndEvent,
    ReadinessStartEvent,
    RuntimeSession,
    RuntimeStreamEvent,
    SessionCreatedEvent,
    SessionResumedEvent,
    TaskEndEvent,
    TaskStartEvent,
    TextDeltaEvent,
    _Event,
    now_iso,
)

__all__ = ["build_task_readiness", "run_agent_task_stream"]

_INPUT_KEYS = frozenset(("message", "messages", "inputs"))


async def _maybe(value: Any) -> Any:
    """`value`, awaited when it is awaitable (every optional method may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


def _message(exc: BaseException) -> str:
    """What the original's `error.message` would be."""
    if isinstance(exc, AgentRuntimeError):
        return exc.message
    text = str(exc)
    return text if text else type(exc).__name__


class _Aborted(Exception):
    """The caller's signal ended the stream (carries the abort reason's message)."""


def _abort_message(signal: AbortSignal) -> str:
    reason = signal.reason
    if isinstance(reason, BaseException):
        return _message(reason)
    return str(reason) if reason is not None else "aborted"


# --- normalization (§7.4) ----------------------------------------------------------------------

_new = object.__new__


def _filler(cls: type[_Event]) -> tuple[bool, Callable[..., Any]]:
    """(whether `cls` has a `session` field, `fill(event, task, session, timestamp)`): a copy
    of `event` whose falsy task, session and timestamp are replaced. Built once per class; the
    copy is made through the slot descriptors (no `__init__`, no `dataclasses.replace`)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    slots = {"task": 1, "session": 2, "timestamp": 3}
    plan = [(name, vars(cls)[name].__set__, slots.get(name, 0)) for name in names]

    def fill(event: Any, task: Any, session: Any, timestamp: str) -> Any:
        new = _new(cls)
        for name, set_value, slot in plan:
            value = getattr(event, name)
            if slot and not value:
                value = task if slot == 1 else session if slot == 2 else timestamp
            set_value(new, value)
        return new

    return "session" in names, fill


_FILL: dict[type, tuple[bool, Callable[..., Any]]] = {
    cls: _filler(cls) for cls in _STREAM_CLASSES.values()
}


_td_text = vars(TextDeltaEvent)["text"].__set__
_td_task = vars(TextDeltaEvent)["task"].__set__
_td_session = vars(TextDeltaEvent)["session"].__set__
_td_timestamp = vars(TextDeltaEvent)["timestamp"].__set__
_NEVER = AbortSignal()  # stands for "no signal" in the hot loop: never aborted


def _stamp(t: float) -> tuple[str, float]:
    """(`now_iso()` of epoch seconds `t`, the start of the next millisecond)."""
    ms = int(t * 1000)
    at = datetime.fromtimestamp(ms // 1000, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z", (ms + 1) / 1000


# --- cancellation ------------------------------------------------------------------------------


class _AbortWatch:
    """Turns an abort into a cancellation of the consuming task, delivered only while this
    run's generator is suspended inside the stream loop (`ag_running`: the backend's await or
    a store append), so a consumer suspended elsewhere is never hit by a stray
    `CancelledError` and the hot loop sets no flags. Consume a stream from one task."""

    __slots__ = ("gen", "owner", "remove", "sent")

    def __init__(self) -> None:
        self.gen: Any = None
        self.owner: asyncio.Task[Any] | None = None
        self.remove: Callable[[], None] | None = None
        self.sent = False

    def arm(self, signal: AbortSignal) -> None:
        self.owner = asyncio.current_task()
        self.remove = signal.add_listener(self._fire)

    def _fire(self) -> None:
        owner = self.owner
        if owner is None or owner.done() or not getattr(self.gen, "ag_running", False):
            return
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no running loop in this thread: never cancel across threads
            return
        if owner is current:
            return
        self.sent = True
        owner.cancel()

    def disarm(self) -> None:
        if self.remove is not None:
            self.remove()
            self.remove = None

    def absorb(self) -> bool:
        """After a `CancelledError`: True when it was ours and is now withdrawn."""
        if not self.sent:
            return False
        self.sent = False
        owner = self.owner
        return owner is None or owner.uncancel() == 0


# --- readiness and preflight (§4.1 steps 2 to 5) -----------------------------------------------


async def build_task_readiness(task: AgentTaskSpec, knowledge: Any) -> KnowledgeReadinessReport:
    """The provider's `build_readiness(task)`, else `score_knowledge_readiness` over the task's
    requirements with metadata `{domain, **task.metadata}`."""
    build = getattr(knowledge, "build_readiness", None) if knowledge is not None else None
    if build is not None:
        report = await _maybe(build(task))
    else:
        metadata: dict[str, Any] = {} if task.domain is None else {"domain": task.domain}
        metadata.update(task.metadata or {})
        report = score_knowledge_readiness(task.id, task.required_knowledge or (), metadata)
    return _report(report, "build_readiness")


def _report(value: Any, where: str) -> KnowledgeReadinessReport:
    if not isinstance(value, KnowledgeReadinessReport):
        raise ValidationError(f"{where} must return a KnowledgeReadinessReport")
    return value


@dataclasses.dataclass(slots=True)
class _Preflight:
    events: list[RuntimeStreamEvent]
    knowledge: KnowledgeReadinessReport
    refreshed: bool


async def _preflight(
    task: AgentTaskSpec, knowledge: Any, report: KnowledgeReadinessReport
) -> _Preflight:
    """Ask the questions and run the plans the provider can handle, then refresh; the events
    are buffered (the original yields them once the preflight is done)."""
    questions: tuple[UserQuestion, ...] = user_questions_for_knowledge_gaps(report.blocking_gaps)
    plans: tuple[DataAcquisitionPlan, ...] = acquisition_plans_for_knowledge_gaps(
        (*report.blocking_gaps, *report.non_blocking_gaps)
    )
    events: list[RuntimeStreamEvent] = []
    answers: Mapping[str, Any] = {}
    evidence: tuple[str, ...] = ()
    answer = getattr(knowledge, "answer_questions", None) if knowledge is not None else None
    if questions and answer is not None:
        events.append(QuestionsStartEvent(task, questions, now_iso()))
        got = await _maybe(answer(questions, task))
        if not isinstance(got, Mapping):
            raise ValidationError("answer_questions must return a mapping of answers")
        answers = dict(got)
        events.append(QuestionsEndEvent(task, questions, answers, now_iso()))
    execute = (
        getattr(knowledge, "execute_acquisition_plans", None) if knowledge is not None else None
    )
    if plans and execute is not None:
        events.append(AcquisitionStartEvent(task, plans, now_iso()))
        ids = await _maybe(execute(plans, task))
        if isinstance(ids, str | bytes | Mapping) or not hasattr(ids, "__iter__"):
            raise ValidationError("execute_acquisition_plans must return a list of evidence ids")
        evidence = tuple(ids)
        if not all(isinstance(i, str) for i in evidence):
            raise ValidationError("execute_acquisition_plans must return a list of evidence ids")
        events.append(AcquisitionEndEvent(task, plans, evidence, now_iso()))
    refresh = getattr(knowledge, "refresh_readiness", None) if knowledge is not None else None
    if refresh is not None and (answers or evidence):
        report = _report(
            await _maybe(
                refresh(
                    task=task,
                    previous=report,
                    user_answers=answers,
                    acquired_evidence_ids=evidence,
                )
            ),
            "refresh_readiness",
        )
        return _Preflight(events, report, True)
    return _Preflight(events, report, False)


# --- arguments ---------------------------------------------------------------------------------


def _backend_input(task: AgentTaskSpec, input: Any) -> AgentBackendInput:
    if input is None:
        return AgentBackendInput(task=task)
    if not isinstance(input, Mapping):
        raise ValidationError("input must be a mapping with message, messages and/or inputs")
    unknown = set(input) - _INPUT_KEYS
    if unknown:
        raise ValidationError(f"input: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    messages = input.get("messages")
    if messages is not None:
        if isinstance(messages, str | bytes | Mapping) or not hasattr(messages, "__iter__"):
            raise ValidationError("input.messages must be a list of messages")
        checked: list[AgentMessage] = []
        for i, m in enumerate(messages):
            if isinstance(m, Mapping):
                if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                    raise ValidationError(f"input.messages[{i}] needs a string role and content")
                m = AgentMessage(role=m["role"], content=m["content"], name=m.get("name"))
            elif not isinstance(m, AgentMessage):
                raise ValidationError(f"input.messages[{i}] must be an AgentMessage or mapping")
            checked.append(m)
        input = {**input, "messages": tuple(checked)}
    return AgentBackendInput(task=task, **input)


def _check_args(
    task: Any,
    backend: Any,
    knowledge: Any,
    session_store: Any,
    session_id: Any,
    resume: Any,
    signal: Any,
) -> None:
    if not isinstance(task, AgentTaskSpec):
        raise ValidationError("run_agent_task_stream: task must be an AgentTaskSpec")
    if not isinstance(getattr(backend, "kind", None), str) or not callable(
        getattr(backend, "stream", None)
    ):
        raise ValidationError("run_agent_task_stream: backend needs a string kind and stream()")
    for name in ("start", "resume", "stop"):
        if getattr(backend, name, None) is not None and not callable(getattr(backend, name)):
            raise ValidationError(f"run_agent_task_stream: backend.{name} must be callable")
    if knowledge is not None:
        for name in (
            "build_readiness",
            "answer_questions",
            "execute_acquisition_plans",
            "refresh_readiness",
        ):
            method = getattr(knowledge, name, None)
            if method is not None and not callable(method):
                raise ValidationError(f"run_agent_task_stream: knowledge.{name} is not callable")
    if session_store is not None:
        for name in ("get", "put"):
            if not callable(getattr(session_store, name, None)):
                raise ValidationError(f"run_agent_task_stream: session_store needs {name}()")
        for name in ("append_event", "list_events"):
            method = getattr(session_store, name, None)
            if method is not None and not callable(method):
                raise ValidationError(f"run_agent_task_stream: session_store.{name} not callable")
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise ValidationError("run_agent_task_stream: session_id must be a non-empty string")
    if not isinstance(resume, bool):
        raise ValidationError("run_agent_task_stream: resume must be a bool")
    if signal is not None and not isinstance(signal, AbortSignal):
        raise ValidationError("run_agent_task_stream: signal must be an AbortSignal")


def run_agent_task_stream(
    task: AgentTaskSpec,
    backend: Any,
    *,
    input: Mapping[str, Any] | None = None,
    knowledge: Any = None,
    session_store: Any = None,
    session_id: str | None = None,
    resume: bool = False,
    signal: AbortSignal | None = None,
    minimum_readiness_score: float | None = None,
) -> AsyncGenerator[RuntimeStreamEvent, None]:
    """Run `task` on `backend` as a stream of `RuntimeStreamEvent`s, `task_start` … `final`.

    Arguments are checked now (`ValidationError`); nothing else happens until iteration.
    """
    _check_args(task, backend, knowledge, session_store, session_id, resume, signal)
    minimum = (
        None
        if minimum_readiness_score is None
        else check_minimum_score(minimum_readiness_score, "run_agent_task_stream")
    )
    binput = _backend_input(task, input)
    watch = _AbortWatch() if signal is not None else None
    gen = _run(
        task, backend, binput, knowledge, session_store, session_id, resume, signal, minimum, watch
    )
    if watch is not None:
        watch.gen = gen
    return gen


# --- the run -----------------------------------------------------------------------------------


async def _open_session(
    task: AgentTaskSpec,
    backend: Any,
    binput: AgentBackendInput,
    knowledge: KnowledgeReadinessReport,
    store: Any,
    session_id: str | None,
    resume: bool,
    signal: AbortSignal | None,
) -> tuple[RuntimeSession, bool]:
    """(the session, whether it was resumed), already put in the store."""
    kind: str = backend.kind
    existing = None
    if store is not None and session_id is not None:
        existing = await _maybe(store.get(session_id))
        if existing is not None and not isinstance(existing, RuntimeSession):
            raise ValidationError("session_store.get must return a RuntimeSession or None")
    resumed = bool(resume and existing is not None)
    if resumed:
        assert existing is not None
        if existing.backend != kind:
            raise SessionMismatchError(existing.backend, kind)
        resume_fn = getattr(backend, "resume", None)
        if resume_fn is not None:
            ctx = AgentBackendContext(task=task, knowledge=knowledge, signal=signal)
            session = await _maybe(resume_fn(existing, binput, ctx))
            where = "backend.resume"
        else:
            session, where = existing.touched(status="active"), "resume"
    else:
        start_fn = getattr(backend, "start", None)
        if start_fn is not None:
            ctx = AgentBackendContext(
                task=task, knowledge=knowledge, signal=signal, requested_session_id=session_id
            )
            session = await _maybe(start_fn(binput, ctx))
            where = "backend.start"
        else:
            session, where = RuntimeSession.new(kind, session_id), "start"
    if not isinstance(session, RuntimeSession):
        raise ValidationError(f"{where} must return a RuntimeSession")
    if store is not None:
        await _maybe(store.put(session))
    return session, resumed


async def _run(
    task: AgentTaskSpec,
    backend: Any,
    binput: AgentBackendInput,
    provider: Any,
    store: Any,
    session_id: str | None,
    resume: bool,
    signal: AbortSignal | None,
    minimum: float | None,
    watch: _AbortWatch | None,
) -> AsyncGenerator[RuntimeStreamEvent, None]:
    kind: str = backend.kind
    yield TaskStartEvent(task, now_iso())
    yield ReadinessStartEvent(task, now_iso())
    report = await build_task_readiness(task, provider)
    pre = await _preflight(task, provider, report)
    for event in pre.events:
        yield event
    if pre.refreshed:
        yield ReadinessStartEvent(task, now_iso())
    knowledge = pre.knowledge
    decision = decide_knowledge_readiness(knowledge, minimum_score=minimum)
    yield ReadinessEndEvent(task, knowledge, decision, now_iso())
    if not decision.passed and decision.status == "blocked":
        reason = f"knowledge readiness blocked: {decision.reason}"
        yield TaskEndEvent(task, "blocked", reason, now_iso())
        yield FinalEvent(task=task, status="blocked", reason=reason, timestamp=now_iso())
        return

    session, resumed = await _open_session(
        task, backend, binput, knowledge, store, session_id, resume, signal
    )
    append = getattr(store, "append_event", None) if store is not None else None
    sid = session.id
    opened: RuntimeStreamEvent = (SessionResumedEvent if resumed else SessionCreatedEvent)(
        task, session, now_iso()
    )
    if append is not None:
        await _maybe(append(sid, opened))
    yield opened
    started = BackendStartEvent(task, session, kind, now_iso())
    if append is not None:
        await _maybe(append(sid, started))
    yield started

    parts: list[str] = []
    failure: BaseException | None = None
    iterator: Any = None
    try:
        try:
            if watch is not None:
                assert signal is not None
                watch.arm(signal)
            if signal is not None and signal.aborted:
                raise _Aborted(_abort_message(signal))
            ctx = AgentBackendContext(
                task=task, knowledge=knowledge, session=session, signal=signal
            )
            iterator = await _stream_of(backend, binput, ctx)
            stamp, next_ms = "", 0.0
            clock = time.time
            plan_of = _FILL.get
            add_text = parts.append
            live = signal if signal is not None else _NEVER
            async for event in iterator:
                cls = type(event)
                if cls is TextDeltaEvent:  # the hot one, inlined
                    text = event.text
                    if not (event.task and event.session and event.timestamp):
                        t = clock()
                        if t >= next_ms:
                            stamp, next_ms = _stamp(t)
                        # a copy: a backend's events are frozen and may be shared
                        new = _new(TextDeltaEvent)
                        _td_text(new, text)
                        _td_task(new, event.task or task)
                        _td_session(new, event.session or session)
                        _td_timestamp(new, event.timestamp or stamp)
                        event = new
                    add_text(text)
                else:
                    plan = plan_of(cls)
                    if plan is None:
                        raise ValidationError(
                            f"backend {kind!r} yielded {cls.__name__}, not a RuntimeStreamEvent"
                        )
                    if not (event.task and event.timestamp and (event.session or not plan[0])):
                        t = clock()
                        if t >= next_ms:
                            stamp, next_ms = _stamp(t)
                        event = plan[1](event, task, session, stamp)
                if append is not None:
                    r = append(sid, event)
                    if r is not None and inspect.isawaitable(r):
                        await r
                yield event
                if live.aborted:
                    raise _Aborted(_abort_message(live))
        except asyncio.CancelledError:
            if watch is not None and watch.absorb():
                assert signal is not None
                failure = _Aborted(_abort_message(signal))
            elif signal is not None and signal.aborted and not _cancelling():
                # a backend that honours the signal itself raised it as a cancellation
                failure = _Aborted(_abort_message(signal))
            else:
                raise
        except Exception as exc:
            if watch is not None:
                watch.absorb()
            failure = exc
    finally:
        if watch is not None:
            watch.disarm()
        if iterator is not None:
            await _close(iterator)

    text = "".join(parts) or None
    if failure is None:
        session = session.touched(status="completed")
        if store is not None:
            await _maybe(store.put(session))
        reason = "backend completed"
        tail: tuple[RuntimeStreamEvent, ...] = (
            BackendEndEvent(task, session, kind, now_iso()),
            TaskEndEvent(task, "completed", reason, now_iso()),
            FinalEvent(
                task=task,
                status="completed",
                reason=reason,
                session=session,
                text=text,
                timestamp=now_iso(),
            ),
        )
    else:
        tail = await _failure_tail(task, backend, store, session, signal, failure, text)
    for event in tail:
        if append is not None:
            await _maybe(append(sid, event))
        yield event


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


async def _stream_of(backend: Any, binput: AgentBackendInput, ctx: AgentBackendContext) -> Any:
    """The backend's event iterator (`stream` may also return an awaitable of one)."""
    stream = backend.stream(binput, ctx)
    if not hasattr(stream, "__aiter__") and inspect.isawaitable(stream):
        stream = await stream
    if not hasattr(stream, "__aiter__"):
        raise ValidationError(f"backend {backend.kind!r}: stream() must return an async iterable")
    return stream.__aiter__()


async def _close(iterator: Any) -> None:
    """Close the backend's iterator, releasing its connection; a failing cleanup must not
    replace how the run ended."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def _failure_tail(
    task: AgentTaskSpec,
    backend: Any,
    store: Any,
    session: RuntimeSession,
    signal: AbortSignal | None,
    failure: BaseException,
    text: str | None,
) -> tuple[BackendErrorEvent, TaskEndEvent, FinalEvent]:
    """Session `aborted` or `failed`, `backend.stop`, then backend_error, task_end, final."""
    aborted = signal is not None and signal.aborted
    status: Any = "aborted" if aborted else "failed"
    session = session.touched(status=status)
    if store is not None:
        await _maybe(store.put(session))
    message = _message(failure)
    combined = message
    stop = getattr(backend, "stop", None)
    if stop is not None:
        try:
            await _maybe(stop(session, message))
        except Exception as exc:
            combined = f"{message}; backend stop failed: {_message(exc)}"
    if isinstance(failure, BackendTransportError):
        detail = BackendErrorDetail("transport", message, failure.status, failure.body)
    else:
        detail = BackendErrorDetail("backend", message)
    kind: str = backend.kind
    return (
        BackendErrorEvent(
            task=task,
            backend=kind,
            message=combined,
            recoverable=not aborted,
            session=session,
            error=detail,
            timestamp=now_iso(),
        ),
        TaskEndEvent(task, status, message, now_iso()),
        FinalEvent(
            task=task,
            status=status,
            reason=message,
            session=session,
            text=text,
            error=detail,
            timestamp=now_iso(),
        ),
    )
