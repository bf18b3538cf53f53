"""`run_agent_task_stream` as ORIGINAL §4.4 and §7.4 define it, over real session stores
(memory, a SQLite file, PostgreSQL) and, for the transport and abort paths, a real HTTP server.

The backends are small classes written here: each records what the loop asked of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest

from agent_runtime import (
    AbortController,
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    AgentTaskSpec,
    BackendTransportError,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    RuntimeSession,
    SessionMismatchError,
    ValidationError,
    parse_runtime_stream_event,
    run_agent_task_stream,
    score_knowledge_readiness,
)
from agent_runtime.sessions import (
    InMemoryRuntimeSessionStore,
    PostgresRuntimeSessionStore,
    SQLiteRuntimeSessionStore,
)
from agent_runtime.types import (
    ArtifactEvent,
    BackendErrorDetail,
    LlmCallEvent,
    ProposalCreatedEvent,
    ReasoningDeltaEvent,
    TaskEndEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tests.tasks.raw_http import RawServer

TASK = AgentTaskSpec(id="t1", intent="Answer the question.", domain="tax")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BLOCKING = KnowledgeRequirement(
    id="tax_id",
    description="the tax id",
    importance="blocking",
    confidence_needed=0.9,
    current_confidence=0.0,
)
LOW = KnowledgeRequirement(
    id="history",
    description="past filings",
    importance="medium",
    acquisition_mode="infer_low_confidence",
    fallback_policy="continue_with_caveat",
    confidence_needed=0.7,
    current_confidence=0.1,
)


class Backend:
    """Streams `texts` as bare text deltas; optionally fails after them. No start/resume/stop."""

    def __init__(self, texts: tuple[str, ...] = ("Hel", "lo"), *, kind: str = "test") -> None:
        self.kind = kind
        self.texts = texts
        self.streams: list[tuple[AgentBackendInput, AgentBackendContext]] = []
        self.fail: BaseException | None = None
        self.closed = False

    async def stream(
        self, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[Any]:
        self.streams.append((input, ctx))
        try:
            for text in self.texts:
                yield TextDeltaEvent(text=text)
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


class SessionBackend(Backend):
    """Also starts, resumes and stops sessions (sync start/stop, async resume)."""

    def __init__(self, *args: Any, stop_error: Exception | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.starts: list[AgentBackendContext] = []
        self.resumes: list[tuple[RuntimeSession, AgentBackendContext]] = []
        self.stops: list[tuple[RuntimeSession, str]] = []
        self.stop_error = stop_error

    def start(self, input: AgentBackendInput, ctx: AgentBackendContext) -> RuntimeSession:
        self.starts.append(ctx)
        return RuntimeSession.new(self.kind, ctx.requested_session_id, {"by": "start"})

    async def resume(
        self, session: RuntimeSession, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> RuntimeSession:
        self.resumes.append((session, ctx))
        return session.touched(status="active", resume_token="tok-2")

    def stop(self, session: RuntimeSession, reason: str) -> None:
        self.stops.append((session, reason))
        if self.stop_error is not None:
            raise self.stop_error


class Provider:
    """A knowledge provider whose calls record what the consumer had seen at that moment."""

    def __init__(self, seen: list[Any], *, refresh_ready: bool = True) -> None:
        self.seen = seen
        self.calls: list[tuple[str, list[str]]] = []
        self.refresh_ready = refresh_ready

    def _note(self, name: str) -> None:
        self.calls.append((name, [e.type for e in self.seen]))

    async def build_readiness(self, task: AgentTaskSpec) -> KnowledgeReadinessReport:
        self._note("build_readiness")
        return score_knowledge_readiness(task.id, [BLOCKING])

    def answer_questions(self, questions: Any, task: AgentTaskSpec) -> dict[str, str]:
        self._note("answer_questions")
        return {q.id: "DE123" for q in questions}

    async def execute_acquisition_plans(self, plans: Any, task: AgentTaskSpec) -> list[str]:
        self._note("execute_acquisition_plans")
        return ["ev-1"]

    def refresh_readiness(self, **kw: Any) -> KnowledgeReadinessReport:
        self._note("refresh_readiness")
        self.refresh_args = kw
        confidence = 1.0 if self.refresh_ready else 0.0
        fixed = KnowledgeRequirement(
            id="tax_id",
            description="the tax id",
            importance="blocking",
            confidence_needed=0.9,
            current_confidence=confidence,
        )
        return score_knowledge_readiness(kw["task"].id, [fixed])


class RecordingStore:
    """A real store behind a recorder: each call is logged with how many events the consumer
    had received at that moment (to prove append-before-yield)."""

    def __init__(self, inner: Any, seen: list[Any]) -> None:
        self.inner = inner
        self.seen = seen
        self.calls: list[tuple[str, Any, int]] = []

    async def _call(self, value: Any) -> Any:
        return await value if asyncio.iscoroutine(value) else value

    async def get(self, session_id: str) -> Any:
        self.calls.append(("get", session_id, len(self.seen)))
        return await self._call(self.inner.get(session_id))

    async def put(self, session: RuntimeSession) -> None:
        self.calls.append(("put", session, len(self.seen)))
        await self._call(self.inner.put(session))

    async def append_event(self, session_id: str, event: Any) -> None:
        self.calls.append(("append", event, len(self.seen)))
        await self._call(self.inner.append_event(session_id, event))

    async def list_events(self, session_id: str) -> list[Any]:
        result: list[Any] = await self._call(self.inner.list_events(session_id))
        return result


async def drain(stream: AsyncIterator[Any], seen: list[Any] | None = None) -> list[Any]:
    out = seen if seen is not None else []
    async for event in stream:
        out.append(event)
    return out


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def real_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    store: Any
    if request.param == "memory":
        store = InMemoryRuntimeSessionStore()
    elif request.param == "sqlite":
        store = SQLiteRuntimeSessionStore(tmp_path / "sessions.db")
    else:
        store = PostgresRuntimeSessionStore(request.getfixturevalue("pg_dsn"), max_size=2)
    try:
        yield store
    finally:
        closed = store.close()
        if asyncio.iscoroutine(closed):
            await closed


async def call(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


# --- lifecycle, laziness, arguments -----------------------------------------------------------


async def test_events_in_order_each_with_a_timestamp() -> None:
    backend = Backend()
    events = await drain(run_agent_task_stream(TASK, backend))
    assert types(events) == [
        "task_start",
        "readiness_start",
        "readiness_end",
        "session_created",
        "backend_start",
        "text_delta",
        "text_delta",
        "backend_end",
        "task_end",
        "final",
    ]
    assert all(ISO.match(e.timestamp) for e in events), [e.timestamp for e in events]
    assert all(e.task is TASK for e in events)
    final = events[-1]
    assert (final.status, final.reason, final.text) == ("completed", "backend completed", "Hello")
    assert final.session.status == "completed" and final.session.backend == "test"
    end = events[-2]
    assert (end.status, end.reason) == ("completed", "backend completed")
    ready = events[2]
    assert ready.decision.status == "ready" and ready.decision.passed
    created = events[3].session
    assert created.status == "active" and created.backend == "test"
    assert events[4].backend == "test" and events[4].session == created
    assert events[7].session.status == "completed" and events[7].session.id == created.id
    for delta in events[5:7]:
        assert delta.session == created


async def test_nothing_happens_until_iteration() -> None:
    seen: list[Any] = []
    provider = Provider(seen)
    backend = SessionBackend()
    store = RecordingStore(InMemoryRuntimeSessionStore(), seen)
    stream = run_agent_task_stream(
        TASK, backend, knowledge=provider, session_store=store, session_id="s1"
    )
    await asyncio.sleep(0)
    assert provider.calls == [] and store.calls == [] and backend.starts == []
    assert backend.streams == []
    first = await stream.__anext__()
    assert first.type == "task_start" and provider.calls == []
    await stream.aclose()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": {"id": "t", "intent": "x"}}, "task"),
        ({"backend": object()}, "backend"),
        ({"input": {"prompt": "hi"}}, "unknown key"),
        ({"input": "hi"}, "input"),
        ({"input": {"messages": [{"role": "user"}]}}, "messages\\[0\\]"),
        ({"input": {"messages": "hi"}}, "messages"),
        ({"input": {"message": 5}}, "message"),
        ({"session_id": ""}, "session_id"),
        ({"session_store": object()}, "session_store"),
        ({"resume": "yes"}, "resume"),
        ({"signal": AbortController()}, "signal"),
        ({"minimum_readiness_score": 1.5}, "minimum_score"),
        ({"minimum_readiness_score": float("nan")}, "minimum_score"),
    ],
)
def test_bad_arguments_raise_at_call_time(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"task": TASK, "backend": Backend()}
    args.update(kwargs)
    task, backend = args.pop("task"), args.pop("backend")
    with pytest.raises(ValidationError, match=match):
        run_agent_task_stream(task, backend, **args)


async def test_input_reaches_the_backend() -> None:
    backend = Backend()
    events = await drain(
        run_agent_task_stream(
            TASK,
            backend,
            input={
                "messages": [{"role": "system", "content": "be brief"}, AgentMessage("user", "q")],
                "inputs": {"year": 2025},
            },
        )
    )
    ((binput, ctx),) = backend.streams
    assert binput.task is TASK and binput.message is None
    assert binput.messages == (AgentMessage("system", "be brief"), AgentMessage("user", "q"))
    assert binput.inputs == {"year": 2025} and binput.prompt == "q"
    assert ctx.task is TASK and ctx.session == events[3].session
    assert ctx.knowledge == events[2].knowledge and ctx.signal is None


# --- readiness and preflight ------------------------------------------------------------------


async def test_default_readiness_scores_the_task_requirements() -> None:
    task = AgentTaskSpec(
        id="t2", intent="x", domain="tax", metadata={"team": "a"}, required_knowledge=(LOW,)
    )
    events = await drain(run_agent_task_stream(task, Backend()))
    report = events[2].knowledge
    assert report == score_knowledge_readiness("t2", [LOW], {"domain": "tax", "team": "a"})


async def test_preflight_events_are_buffered_then_refresh_yields_one_more_readiness_start() -> None:
    seen: list[Any] = []
    provider = Provider(seen)
    backend = Backend()
    events = await drain(run_agent_task_stream(TASK, backend, knowledge=provider), seen)
    assert types(events)[:9] == [
        "task_start",
        "readiness_start",
        "questions_start",
        "questions_end",
        "acquisition_start",
        "acquisition_end",
        "readiness_start",
        "readiness_end",
        "session_created",
    ]
    assert types(events).count("readiness_end") == 1
    # every provider call happened before the consumer saw any preflight event
    assert [c[0] for c in provider.calls] == [
        "build_readiness",
        "answer_questions",
        "execute_acquisition_plans",
        "refresh_readiness",
    ]
    assert all(c[1] == ["task_start", "readiness_start"] for c in provider.calls)
    questions_end, acquisition_end = events[3], events[5]
    assert questions_end.user_answers == {"question_tax_id": "DE123"}
    assert [q.id for q in questions_end.questions] == ["question_tax_id"]
    assert acquisition_end.acquired_evidence_ids == ("ev-1",)
    assert [p.id for p in acquisition_end.acquisition_plans] == ["acquire_ask_user"]
    assert provider.refresh_args["user_answers"] == {"question_tax_id": "DE123"}
    assert provider.refresh_args["acquired_evidence_ids"] == ("ev-1",)
    assert provider.refresh_args["previous"].blocking_gap_ids == ("tax_id",)
    final_report = events[7]
    assert final_report.knowledge.readiness_score == 1.0
    assert final_report.decision.status == "ready"
    assert events[-1].status == "completed" and backend.streams


async def test_blocked_never_touches_the_backend_or_the_store(tmp_path: Path) -> None:
    seen: list[Any] = []
    store = RecordingStore(SQLiteRuntimeSessionStore(tmp_path / "s.db"), seen)
    backend = SessionBackend()
    task = AgentTaskSpec(id="t3", intent="x", required_knowledge=(BLOCKING,))
    events = await drain(
        run_agent_task_stream(task, backend, session_store=store, session_id="s1", resume=True),
        seen,
    )
    assert types(events) == ["task_start", "readiness_start", "readiness_end", "task_end", "final"]
    decision = events[2].decision
    assert (decision.passed, decision.status) == (False, "blocked")
    reason = "knowledge readiness blocked: 1 blocking knowledge requirement(s) are missing."
    assert (events[3].status, events[3].reason) == ("blocked", reason)
    assert (events[4].status, events[4].reason, events[4].session) == ("blocked", reason, None)
    assert backend.starts == [] and backend.streams == [] and backend.stops == []
    assert store.calls == []
    assert await store.inner.get("s1") is None
    await store.inner.close()


async def test_blocked_refresh_that_stays_blocked() -> None:
    seen: list[Any] = []
    provider = Provider(seen, refresh_ready=False)
    backend = Backend()
    events = await drain(run_agent_task_stream(TASK, backend, knowledge=provider), seen)
    assert types(events)[-3:] == ["readiness_end", "task_end", "final"]
    assert events[-1].status == "blocked" and backend.streams == []


async def test_caveat_runs_the_backend() -> None:
    task = AgentTaskSpec(id="t4", intent="x", required_knowledge=(LOW,))
    events = await drain(run_agent_task_stream(task, Backend()))
    decision = events[2].decision
    assert (decision.passed, decision.status) == (False, "caveat")
    assert decision.reason == "Knowledge readiness score 0.143 is below minimum 0.700."
    assert events[-1].status == "completed"


async def test_minimum_readiness_score_is_passed_to_the_decision() -> None:
    task = AgentTaskSpec(id="t4", intent="x", required_knowledge=(LOW,))
    events = await drain(run_agent_task_stream(task, Backend(), minimum_readiness_score=0.1))
    assert events[2].decision.status == "ready"


async def test_a_provider_error_propagates() -> None:
    class Broken:
        def build_readiness(self, task: AgentTaskSpec) -> Any:
            raise LookupError("no wiki")

    with pytest.raises(LookupError, match="no wiki"):
        await drain(run_agent_task_stream(TASK, Backend(), knowledge=Broken()))


# --- sessions ---------------------------------------------------------------------------------


async def test_session_created_with_the_requested_id(real_store: Any) -> None:
    backend = SessionBackend()
    events = await drain(
        run_agent_task_stream(TASK, backend, session_store=real_store, session_id="req-1")
    )
    (ctx,) = backend.starts
    assert ctx.requested_session_id == "req-1" and ctx.session is None and ctx.task is TASK
    created = events[3]
    assert created.type == "session_created" and created.session.id == "req-1"
    assert created.session.metadata == {"by": "start"}
    stored = await call(real_store.get("req-1"))
    assert stored.status == "completed" and stored.metadata == {"by": "start"}


async def test_without_start_the_session_is_new_with_the_requested_id(real_store: Any) -> None:
    events = await drain(
        run_agent_task_stream(TASK, Backend(), session_store=real_store, session_id="req-2")
    )
    session = events[3].session
    assert (session.id, session.backend, session.status) == ("req-2", "test", "active")
    assert session.created_at == session.updated_at
    random_id = (await drain(run_agent_task_stream(TASK, Backend())))[3].session.id
    assert re.fullmatch(r"[0-9a-f-]{36}", random_id)


async def test_resume_through_backend_resume(real_store: Any) -> None:
    old = RuntimeSession(
        id="s1",
        backend="test",
        status="completed",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )
    await call(real_store.put(old))
    backend = SessionBackend()
    events = await drain(
        run_agent_task_stream(TASK, backend, session_store=real_store, session_id="s1", resume=True)
    )
    assert types(events)[3] == "session_resumed" and backend.starts == []
    ((given, ctx),) = backend.resumes
    assert given == old and ctx.session is None and ctx.requested_session_id is None
    resumed = events[3].session
    assert resumed.resume_token == "tok-2" and resumed.status == "active"
    assert (await call(real_store.get("s1"))).resume_token == "tok-2"


async def test_resume_fallback_copies_the_session_active(real_store: Any) -> None:
    old = RuntimeSession(
        id="s1",
        backend="test",
        status="failed",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        metadata={"k": 1},
    )
    await call(real_store.put(old))
    events = await drain(
        run_agent_task_stream(
            TASK, Backend(), session_store=real_store, session_id="s1", resume=True
        )
    )
    resumed = events[3]
    assert resumed.type == "session_resumed"
    assert resumed.session.status == "active" and resumed.session.metadata == {"k": 1}
    assert resumed.session.created_at == old.created_at
    assert resumed.session.updated_at > old.updated_at


async def test_resume_false_or_an_unknown_id_starts_a_session(real_store: Any) -> None:
    old = RuntimeSession.new("test", "s1")
    await call(real_store.put(old))
    backend = SessionBackend()
    events = await drain(
        run_agent_task_stream(TASK, backend, session_store=real_store, session_id="s1")
    )
    assert events[3].type == "session_created" and len(backend.starts) == 1
    events = await drain(
        run_agent_task_stream(
            TASK, backend, session_store=real_store, session_id="nope", resume=True
        )
    )
    assert events[3].type == "session_created" and backend.resumes == []


async def test_resume_with_another_backend_kind_raises(real_store: Any) -> None:
    await call(real_store.put(RuntimeSession.new("sandbox", "s1")))
    backend = SessionBackend()
    seen: list[Any] = []
    with pytest.raises(SessionMismatchError) as info:
        await drain(
            run_agent_task_stream(
                TASK, backend, session_store=real_store, session_id="s1", resume=True
            ),
            seen,
        )
    assert (info.value.session_backend, info.value.requested_backend) == ("sandbox", "test")
    assert str(info.value) == "Cannot resume sandbox session with test backend"
    assert types(seen)[-1] == "readiness_end"
    assert backend.resumes == [] and backend.streams == []
    assert await call(real_store.list_events("s1")) == []


async def test_each_event_is_appended_before_it_is_yielded(real_store: Any) -> None:
    seen: list[Any] = []
    store = RecordingStore(real_store, seen)
    events = await drain(
        run_agent_task_stream(TASK, Backend(), session_store=store, session_id="s1"), seen
    )
    appends = [(event, n) for name, event, n in store.calls if name == "append"]
    first = types(events).index("session_created")
    assert [e for e, _ in appends] == events[first:]
    for event, n in appends:
        assert n == events.index(event), f"{event.type} appended after the consumer saw it"
    assert await call(real_store.list_events("s1")) == events[first:]
    puts = [(s.status, n) for name, s, n in store.calls if name == "put"]
    assert puts == [("active", first), ("completed", len(events) - 3)]


async def test_events_before_the_session_are_never_stored() -> None:
    seen: list[Any] = []
    store = RecordingStore(InMemoryRuntimeSessionStore(), seen)
    await drain(
        run_agent_task_stream(
            TASK, Backend(), knowledge=Provider(seen), session_store=store, session_id="s1"
        ),
        seen,
    )
    stored = store.inner.list_events("s1")
    assert types(stored)[0] == "session_created"
    assert not {"readiness_start", "readiness_end", "questions_start"} & set(types(stored))


async def test_a_store_without_an_event_log_is_fine() -> None:
    class PlainStore:
        def __init__(self) -> None:
            self.sessions: dict[str, RuntimeSession] = {}

        def get(self, session_id: str) -> RuntimeSession | None:
            return self.sessions.get(session_id)

        def put(self, session: RuntimeSession) -> None:
            self.sessions[session.id] = session

    store = PlainStore()
    events = await drain(
        run_agent_task_stream(TASK, Backend(), session_store=store, session_id="s1")
    )
    assert events[-1].status == "completed" and store.sessions["s1"].status == "completed"


# --- normalization (§7.4) ---------------------------------------------------------------------


async def test_normalization_fills_only_what_is_missing_and_never_mutates() -> None:
    other = RuntimeSession.new("elsewhere", "other")
    complete = TextDeltaEvent(
        text="a", task=TASK, session=other, timestamp="2020-01-01T00:00:00.000Z"
    )
    shared = TextDeltaEvent(text="b")
    partial = ToolCallEvent(tool_name="search", tool_call_id="c1", args={"q": 1}, task=TASK)
    reasoning = ReasoningDeltaEvent(text="hm", timestamp="")
    kept = [complete, shared, shared, partial, reasoning]

    class Replaying:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> AsyncIterator[Any]:
            for event in kept:
                yield event

    events = await drain(run_agent_task_stream(TASK, Replaying()))
    out = events[5:10]
    session = events[3].session
    assert out[0] is complete, "an event with task, session and timestamp passes unchanged"
    assert out[1] is not shared and out[2] is not shared
    assert shared.task is None and shared.session is None and shared.timestamp is None
    assert (out[1].text, out[1].task, out[1].session) == ("b", TASK, session)
    assert ISO.match(out[1].timestamp)
    assert (out[3].tool_name, out[3].tool_call_id, out[3].args) == ("search", "c1", {"q": 1})
    assert out[3].task is TASK and out[3].session == session and ISO.match(out[3].timestamp)
    assert partial.session is None and partial.timestamp is None
    assert out[4].text == "hm" and ISO.match(out[4].timestamp) and reasoning.timestamp == ""
    assert events[-1].text == "abb", "only text deltas make the final text"


async def test_a_bare_event_from_the_backend_is_completed() -> None:
    events = await drain(run_agent_task_stream(TASK, Backend(("x",))))
    delta = events[5]
    assert delta.task is TASK and delta.session == events[3].session
    assert ISO.match(delta.timestamp) and delta.timestamp >= events[4].timestamp
    assert delta == TextDeltaEvent("x", TASK, events[3].session, delta.timestamp)


async def test_a_lifecycle_event_without_a_session_field_from_the_backend() -> None:
    class Odd:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> AsyncIterator[Any]:
            yield TaskEndEvent(task=TASK, status="completed", reason="inner")

    events = await drain(run_agent_task_stream(TASK, Odd()))
    inner = events[5]
    assert inner.type == "task_end" and inner.reason == "inner" and ISO.match(inner.timestamp)


async def test_something_that_is_not_an_event_fails_the_run() -> None:
    class Bad:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> AsyncIterator[Any]:
            yield TextDeltaEvent(text="ok")
            yield {"type": "text_delta", "text": "dict"}

    events = await drain(run_agent_task_stream(TASK, Bad()))
    assert types(events)[-3:] == ["backend_error", "task_end", "final"]
    error = events[-3]
    assert "dict" in error.message and "RuntimeStreamEvent" in error.message
    assert error.recoverable is True and error.error.kind == "backend"
    assert events[-1].status == "failed" and events[-1].text == "ok"


async def test_stream_that_is_not_iterable_fails_the_run() -> None:
    class NotAStream:
        kind = "test"

        def stream(self, input: Any, ctx: Any) -> Any:
            return 42

    events = await drain(run_agent_task_stream(TASK, NotAStream()))
    assert events[-1].status == "failed" and "async iterable" in events[-1].reason


async def test_stream_may_be_a_coroutine_returning_the_iterator() -> None:
    class Deferred:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> Any:
            return Backend(("late",)).stream(input, ctx)

    events = await drain(run_agent_task_stream(TASK, Deferred()))
    assert events[-1].text == "late"


# --- failure paths ----------------------------------------------------------------------------


async def test_failure_path(real_store: Any) -> None:
    backend = SessionBackend(("par", "tial"))
    backend.fail = RuntimeError("boom")
    events = await drain(
        run_agent_task_stream(TASK, backend, session_store=real_store, session_id="s1")
    )
    assert types(events)[5:] == ["text_delta", "text_delta", "backend_error", "task_end", "final"]
    error, end, final = events[-3:]
    ((stopped, reason),) = backend.stops
    assert stopped.status == "failed" and reason == "boom"
    assert (error.backend, error.message, error.recoverable) == ("test", "boom", True)
    assert error.error == BackendErrorDetail("backend", "boom")
    assert error.session.status == "failed"
    assert (end.status, end.reason) == ("failed", "boom")
    assert (final.status, final.reason, final.text) == ("failed", "boom", "partial")
    assert final.error == BackendErrorDetail("backend", "boom") and final.session == stopped
    assert (await call(real_store.get("s1"))).status == "failed"
    stored = await call(real_store.list_events("s1"))
    assert types(stored)[-3:] == ["backend_error", "task_end", "final"] and stored == events[3:]
    assert backend.closed


async def test_a_failing_stop_is_reported_in_the_combined_message() -> None:
    backend = SessionBackend((), stop_error=OSError("sandbox gone"))
    backend.fail = ValueError("bad chunk")
    events = await drain(run_agent_task_stream(TASK, backend))
    error, end, final = events[-3:]
    assert error.message == "bad chunk; backend stop failed: sandbox gone"
    assert end.reason == "bad chunk" and final.reason == "bad chunk" and final.text is None
    assert error.error == BackendErrorDetail("backend", "bad chunk")


async def test_an_error_without_a_message_is_named() -> None:
    backend = Backend(())
    backend.fail = KeyError()
    events = await drain(run_agent_task_stream(TASK, backend))
    assert events[-1].reason == "KeyError"


class HttpBackend:
    """POSTs to a real HTTP server and streams NDJSON wire events from its body; an error
    status raises `BackendTransportError` with the status and body."""

    kind = "http"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.closed = asyncio.Event()

    async def stream(
        self, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[Any]:
        try:
            async with (
                httpx2.AsyncClient(timeout=30) as client,
                client.stream("POST", f"{self.base_url}/run", content=input.prompt) as resp,
            ):
                if resp.status_code >= 400:
                    body = (await resp.aread()).decode()
                    raise BackendTransportError(
                        self.kind,
                        f"chat backend returned {resp.status_code}",
                        status=resp.status_code,
                        body=body,
                    )
                async for line in resp.aiter_lines():
                    if line:
                        yield parse_runtime_stream_event(line)
        finally:
            self.closed.set()


async def test_a_transport_error_carries_its_status_and_body() -> None:
    async def handler(n: int, body: bytes, reader: Any, writer: Any) -> None:
        payload = b"upstream overloaded"
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
            + f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )

    async with RawServer(handler) as server:
        events = await drain(run_agent_task_stream(TASK, HttpBackend(server.base_url)))
    error, end, final = events[-3:]
    detail = BackendErrorDetail(
        "transport", "chat backend returned 503", 503, "upstream overloaded"
    )
    assert error.error == detail and final.error == detail
    assert error.message == "chat backend returned 503" and error.recoverable is True
    assert end.status == "failed" and final.reason == "chat backend returned 503"
    assert error.to_dict()["error"] == {
        "kind": "transport",
        "message": "chat backend returned 503",
        "status": 503,
        "body": "upstream overloaded",
    }


def _ndjson_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n"


async def _first_line_then_wait(
    n: int, body: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One text delta, then silence until the client goes away."""
    writer.write(_ndjson_head() + orjson.dumps({"type": "text_delta", "text": "first"}) + b"\n")
    await writer.drain()
    await reader.read()  # returns b"" once the client closed its side


async def test_abort_interrupts_a_backend_blocked_on_its_next_event(real_store: Any) -> None:
    controller = AbortController()
    async with RawServer(_first_line_then_wait) as server:
        backend = HttpBackend(server.base_url)
        stops: list[tuple[RuntimeSession, str]] = []
        backend.stop = lambda session, reason: stops.append((session, reason))  # type: ignore[attr-defined]
        events: list[Any] = []
        async for event in run_agent_task_stream(
            TASK,
            backend,
            session_store=real_store,
            session_id="s1",
            signal=controller.signal,
        ):
            events.append(event)
            if event.type == "text_delta":
                # fires once the loop is suspended inside the backend's read
                asyncio.get_running_loop().call_soon(controller.abort, "user pressed stop")
        await asyncio.wait_for(server.closed.wait(), 10)
        assert server.open_connections == 0, "the backend's connection was released"
    assert backend.closed.is_set()
    assert types(events)[5:] == ["text_delta", "backend_error", "task_end", "final"]
    error, end, final = events[-3:]
    assert error.recoverable is False and error.message == "user pressed stop"
    assert error.error == BackendErrorDetail("backend", "user pressed stop")
    assert (end.status, end.reason) == ("aborted", "user pressed stop")
    assert (final.status, final.text) == ("aborted", "first")
    assert final.session.status == "aborted"
    assert stops and stops[0][0].status == "aborted"
    assert (await call(real_store.get("s1"))).status == "aborted"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_abort_between_events_ends_the_run_before_the_next_read() -> None:
    controller = AbortController()
    backend = Backend(("a", "b", "c"))
    events: list[Any] = []
    async for event in run_agent_task_stream(TASK, backend, signal=controller.signal):
        events.append(event)
        if event.type == "text_delta":
            controller.abort(RuntimeError("enough"))
    assert types(events)[5:] == ["text_delta", "backend_error", "task_end", "final"]
    assert events[-1].status == "aborted" and events[-1].reason == "enough"
    assert events[-1].text == "a" and backend.closed


async def test_an_already_aborted_signal_never_streams() -> None:
    controller = AbortController()
    controller.abort()
    backend = Backend()
    events = await drain(run_agent_task_stream(TASK, backend, signal=controller.signal))
    assert backend.streams == [] and events[-1].status == "aborted"
    assert events[-3].recoverable is False and events[-1].reason == "aborted"


async def test_a_backend_that_raises_the_abort_itself() -> None:
    controller = AbortController()

    class Polite:
        kind = "test"

        async def stream(self, input: Any, ctx: AgentBackendContext) -> AsyncIterator[Any]:
            yield TextDeltaEvent(text="x")
            controller.abort("stop now")
            assert ctx.signal is not None
            ctx.signal.throw_if_aborted()  # a CancelledError, as the backends' guard raises it

    events = await drain(run_agent_task_stream(TASK, Polite(), signal=controller.signal))
    assert events[-1].status == "aborted" and events[-1].reason == "stop now"


async def test_a_caller_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    class Slow:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> AsyncIterator[Any]:
            started.set()
            await asyncio.Event().wait()
            yield TextDeltaEvent(text="never")

    consumer = asyncio.ensure_future(
        drain(run_agent_task_stream(TASK, Slow(), signal=AbortController().signal))
    )
    await started.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


async def test_a_consumer_that_stops_early_closes_the_backend_iterator() -> None:
    async def three_lines(
        n: int, body: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(_ndjson_head())
        for text in ("a", "b"):
            writer.write(orjson.dumps({"type": "text_delta", "text": text}) + b"\n")
        await writer.drain()
        await reader.read()

    async with RawServer(three_lines) as server:
        backend = HttpBackend(server.base_url)
        stream = run_agent_task_stream(TASK, backend)
        async for event in stream:
            if event.type == "text_delta":
                break
        await stream.aclose()
        assert backend.closed.is_set()
        await asyncio.wait_for(server.closed.wait(), 10)
        assert server.open_connections == 0


async def test_every_backend_event_class_keeps_its_fields_and_gets_the_missing_ones() -> None:
    other = RuntimeSession.new("elsewhere", "other")
    stamp = "2020-01-01T00:00:00.000Z"
    bodies: list[Any] = [
        TextDeltaEvent(text="t"),
        ReasoningDeltaEvent(text="r"),
        ToolCallEvent(tool_name="n", tool_call_id="i", args=[1]),
        ToolResultEvent(tool_name="n", tool_call_id="i", result={"ok": True}),
        LlmCallEvent(model="m", tokens_in=1, tokens_out=2, cost_usd=0.5, finish_reason="stop"),
        ArtifactEvent(artifact_id="a", name="f.txt", mime_type="text/plain", content="x"),
        ProposalCreatedEvent(proposal_id="p", title="T", status="pending"),
    ]
    sent: list[Any] = []
    for body in bodies:
        for given in itertools.product((False, True), repeat=3):
            fields = dict(zip(("task", "session", "timestamp"), given, strict=True))
            values = {"task": TASK, "session": other, "timestamp": stamp}
            sent.append(
                dataclasses.replace(body, **{k: values[k] for k, on in fields.items() if on})
            )

    class All:
        kind = "test"

        async def stream(self, input: Any, ctx: Any) -> AsyncIterator[Any]:
            for event in sent:
                yield event

    events = await drain(run_agent_task_stream(TASK, All()))
    session = events[3].session
    out = events[5 : 5 + len(sent)]
    for before, after in zip(sent, out, strict=True):
        assert type(after) is type(before)
        for f in dataclasses.fields(before):
            value = getattr(before, f.name)
            if f.name in ("task", "session", "timestamp") and value is None:
                continue
            assert getattr(after, f.name) == value, (before, f.name)
        assert after.task == (before.task or TASK)
        assert after.session == (before.session or session)
        assert ISO.match(after.timestamp) or after.timestamp == stamp
        if before.task and before.session and before.timestamp:
            assert after is before
