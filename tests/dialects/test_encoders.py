"""The dialect encoders over turn logs: any cursor into any log gives a stream the client
models reassemble to the stored text, with no orphan delta and nothing repeated (Hypothesis);
plus the framing, terminals, readiness interrupts and payload forms one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime.chat import restarted_event, turn_event_id, turn_restart_id
from agent_runtime.durable import StreamEventRecord
from agent_runtime.errors import InvalidArgumentError
from agent_runtime.server.dialects import (
    UI_MESSAGE_STREAM_HEADERS,
    AguiStream,
    FoldCache,
    VercelStream,
    closing_kind,
    interrupts_for,
    resume_state,
    vercel_body,
)

from .logs import COMPLETED, FAILED, LOGS, NOW, TASK, StaticLog, records, text, wire
from .models import AguiClient, GrammarError, VercelClient, frames

from agent_runtime.types import (  # isort: skip
    BackendErrorEvent,
    FinalEvent,
    LlmCallEvent,
    ReasoningDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

INTERRUPTED = {"type": "session.run.interrupted", "execution_id": "chat:s:0"}
STOPPED_FINAL = wire(FinalEvent(task=TASK, status="aborted", reason="stopped by the user"))
FAILED_EVENT = wire(BackendErrorEvent(task=TASK, backend="b", message="boom", recoverable=False))


@st.composite
def turn_logs(draw: st.DrawFn) -> dict[str, Any]:
    """A turn's payloads (text, reasoning, tool calls with results now, later or never, usage)
    with how it ended, and what a client must end up with."""
    end = draw(st.sampled_from(["completed", "failed", "stopped", "blocked", "interrupted"]))
    if end == "blocked":
        payloads, _ = LOGS["blocked"]
        return {"payloads": list(payloads), "closing": COMPLETED, "end": end, "text": "",
                "reasoning": "", "calls": {}, "results": {}}  # fmt: skip
    items = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("text"), st.text(max_size=5)),
                st.tuples(st.just("reasoning"), st.text(min_size=1, max_size=5)),
                st.tuples(st.just("tool"), st.booleans()),
                st.tuples(st.just("llm"), st.integers(0, 40)),
            ),
            max_size=14,
        )
    )
    payloads: list[dict[str, Any]] = []
    pending: list[str] = []
    calls: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for i, (kind, value) in enumerate(items):
        if kind == "text":
            payloads += text(value)
        elif kind == "reasoning":
            payloads.append(wire(ReasoningDeltaEvent(text=value)))
        elif kind == "tool":
            call_id = f"call_{i}"
            calls[call_id] = {"n": i}
            payloads.append(wire(ToolCallEvent(tool_name="t", tool_call_id=call_id, args={"n": i})))
            if value:
                pending.append(call_id)
        else:
            payloads.append(wire(LlmCallEvent(model="m", tokens_in=value, tokens_out=1)))
        while pending and draw(st.booleans()):
            call_id = pending.pop(0)
            results[call_id] = {"ok": call_id}
            payloads.append(
                wire(ToolResultEvent(tool_name="t", tool_call_id=call_id, result={"ok": call_id}))
            )
    closing = {"completed": COMPLETED, "failed": FAILED, "stopped": COMPLETED,
               "interrupted": INTERRUPTED}[end]  # fmt: skip
    if end == "failed":
        payloads.append(FAILED_EVENT)
    elif end == "stopped":
        payloads.append(STOPPED_FINAL)
    joined = "".join(p["text"] for p in payloads if p["type"] == "text_delta")
    thought = "".join(p["text"] for p in payloads if p["type"] == "reasoning_delta")
    return {"payloads": payloads, "closing": closing, "end": end, "text": joined,
            "reasoning": thought, "calls": calls, "results": results}  # fmt: skip


def _state(log: dict[str, Any], cut: int) -> Any:
    """The fold state at the cursor as a resuming body gets it."""
    static = StaticLog(log["payloads"], log["closing"])
    return asyncio.run(resume_state(static, "r", None if cut < 0 else cut, FoldCache()))


def _vercel(log: dict[str, Any], cut: int) -> tuple[bytes, bytes]:
    """The fresh stream up to and including record `cut`, and the stream resumed after it."""
    recs = records(log["payloads"])
    first = VercelStream("m")
    head = first.start() + b"".join(first.encode(r) for r in recs[: cut + 1])
    resumed = VercelStream("m", state=_state(log, cut))
    rest = resumed.start() + b"".join(resumed.encode(r) for r in recs[cut + 1 :])
    return head, rest + resumed.finish(log["closing"])


def _agui(log: dict[str, Any], cut: int) -> tuple[bytes, bytes]:
    recs = records(log["payloads"])
    first = AguiStream("th", "run", prefix="x:")
    head = first.start() + b"".join(first.encode(r) for r in recs[: cut + 1])
    resumed = AguiStream("th", "run", prefix="x:", state=_state(log, cut))
    rest = resumed.start() + b"".join(resumed.encode(r) for r in recs[cut + 1 :])
    return head, rest + resumed.finish(log["closing"])


def _after(log: dict[str, Any], cut: int, kind: str) -> str:
    return "".join(p["text"] for p in log["payloads"][cut + 1 :] if p["type"] == kind)


_PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TERMINALS = {
    "completed": ["finish", "[DONE]"],
    "failed": ["error", "finish", "[DONE]"],
    "stopped": ["abort", "[DONE]"],
    "blocked": ["finish", "[DONE]"],
    "interrupted": [],
}
_OUTCOMES = {"completed": "success", "failed": "error", "stopped": "cancelled",
             "blocked": "interrupt"}  # fmt: skip


@_PROPERTY
@given(log=turn_logs(), data=st.data())
def test_vercel_any_cursor_reassembles_the_stored_turn(log: dict[str, Any], data: Any) -> None:
    cut = data.draw(st.integers(-1, len(log["payloads"]) - 1), label="cursor")
    head, rest = _vercel(log, cut)
    kept = VercelClient()  # the client that kept its message and continues it
    kept.read(head)
    kept.read(rest)
    assert kept.text() == log["text"]
    assert kept.text("reasoning") == log["reasoning"]
    tools = [p for p in kept.parts if p["type"] == "tool"]
    assert [t["toolCallId"] for t in tools] == list(log["calls"])  # each call once, in order
    assert {t["toolCallId"]: t["input"] for t in tools} == log["calls"]
    assert {t["toolCallId"]: t["output"] for t in tools if "output" in t} == log["results"]
    assert kept.terminal == _TERMINALS[log["end"]]
    fresh = VercelClient()  # a client that has nothing but the cursor: never an orphan delta
    fresh.read(rest)
    assert fresh.text() == _after(log, cut, "text_delta")
    assert fresh.text("reasoning") == _after(log, cut, "reasoning_delta")
    replay = VercelClient()  # no cursor: the whole turn again
    replay.read(_vercel(log, -1)[1])
    assert replay.text() == log["text"]


@_PROPERTY
@given(log=turn_logs(), data=st.data())
def test_agui_any_cursor_reassembles_the_stored_turn(log: dict[str, Any], data: Any) -> None:
    cut = data.draw(st.integers(-1, len(log["payloads"]) - 1), label="cursor")
    head, rest = _agui(log, cut)
    client = AguiClient()
    client.run(head)  # the connection dropped after record `cut`
    client.run(rest)  # the run re-posted with that cursor
    assert client.text() == log["text"]
    assert client.text("reasoning") == log["reasoning"]
    calls = [m for m in client.messages if m["role"] == "tool-call"]
    assert {c["id"].removeprefix("x:"): orjson.loads(c["args"]) for c in calls} == log["calls"]
    assert len(calls) == len(log["calls"])
    outputs = [m for m in client.messages if m["role"] == "tool"]
    assert {m["toolCallId"].removeprefix("x:"): orjson.loads(m["content"]) for m in outputs} == log[
        "results"
    ]
    assert len(outputs) == len(log["results"])
    if log["end"] == "interrupted":
        assert client.outcomes == []
    else:
        assert [(o or {}).get("type") for o in client.outcomes] == [_OUTCOMES[log["end"]]]
    full = AguiClient()
    full.run(_agui(log, -1)[1])
    assert client.messages == full.messages  # the same messages as one uninterrupted run
    AguiClient().run(rest)  # a client holding only the cursor passes the verifier too


def _stream(log: str, cls: type = VercelStream) -> list[tuple[str | None, Any]]:
    payloads, closing = LOGS[log]
    recs = records(payloads)
    enc = VercelStream("m") if cls is VercelStream else AguiStream("th", "run")
    body = enc.start() + b"".join(enc.encode(r) for r in recs) + enc.finish(closing)
    return frames(body)


def test_each_record_ends_with_its_seq_as_the_sse_id() -> None:
    got = _stream("tools")
    ids = [i for i, _ in got if i is not None]
    assert ids == [str(n) for n in range(len(LOGS["tools"][0]))]
    for position, (event_id, _) in enumerate(got):
        if event_id is not None and position + 1 < len(got):
            # a record's other frames come before it, never after: the cursor is complete
            nxt = got[position + 1][0]
            assert nxt is None or int(nxt) == int(event_id) + 1
    assert got[0] == (None, {"type": "start", "messageId": "m"})
    assert got[-1] == (None, "[DONE]")


def test_a_record_already_folded_is_not_encoded_again() -> None:
    recs = records(text("a", "b"))
    enc = VercelStream("m")
    enc.start()
    assert enc.encode(recs[0]) and enc.encode(recs[1])
    assert enc.encode(recs[1]) == b"" and enc.encode(recs[0]) == b""


def test_an_unfinished_turn_ends_without_a_terminal_so_the_client_reconnects() -> None:
    enc = VercelStream("m")
    enc.start()
    enc.encode(records(text("partial"))[0])
    assert enc.finish(INTERRUPTED) == b""
    agui = AguiStream("th", "run")
    agui.start()
    agui.encode(records(text("partial"))[0])
    assert agui.finish(INTERRUPTED) == b""


def test_closing_lines_and_how_they_end_a_turn() -> None:
    assert closing_kind(COMPLETED) == "completed"
    assert closing_kind({**COMPLETED, "stopped": True}) == "stopped"
    assert closing_kind({"type": "session.run.completed", "data": {"stopped": True}}) == "stopped"
    assert closing_kind(FAILED) == "failed"
    assert closing_kind({"type": "session.run.stopped"}) == "stopped"
    assert closing_kind(INTERRUPTED) == "interrupted"
    failed = VercelStream("m")
    failed.start()
    body = failed.finish({"type": "session.run.failed", "data": {"message": "nope"}})
    assert [c for _, c in frames(body)] == [
        {"type": "error", "errorText": "nope"},
        {"type": "finish", "finishReason": "error"},
        "[DONE]",
    ]
    stopped = AguiStream("th", "run")
    stopped.start()
    got = [c for _, c in frames(stopped.finish({**COMPLETED, "stopped": True}))]
    assert got == [{"type": "RUN_FINISHED", "threadId": "th", "runId": "run",
                    "outcome": {"type": "cancelled"}}]  # fmt: skip


def test_enveloped_and_original_payload_forms_are_read_as_text() -> None:
    payloads = [
        {"type": "text_delta", "data": {"text": "one "}},
        {"type": "message.part.updated", "data": {"delta": "two "}},
        {"type": "result", "data": {"finalText": "three"}},
    ]
    client = VercelClient()
    enc = VercelStream("m")
    client.read(enc.start() + b"".join(enc.encode(r) for r in records(payloads)))
    client.read(enc.finish(COMPLETED))
    assert client.text() == "one two three"


def _attempt_records() -> list[StreamEventRecord]:
    """A turn whose worker died mid-text and whose re-run answered differently, with a late
    record of the first attempt appended after the marker by the fenced worker."""
    rows = [
        ("turn:0", text("old ")[0]),
        ("turn:1", text("answer")[0]),
        (turn_restart_id(2), restarted_event(2, "s")),
        ("turn:2", text(" LATE")[0]),
        (turn_event_id(0, 2), text("new ")[0]),
        (turn_event_id(1, 2), text("answer")[0]),
    ]
    return [
        StreamEventRecord(run_id="r", seq=i, event_id=e, payload=p, created_at=NOW)
        for i, (e, p) in enumerate(rows)
    ]


def test_a_new_attempt_closes_the_open_part_and_skips_the_old_attempts_stragglers() -> None:
    recs = _attempt_records()
    enc = VercelStream("m")
    body = enc.start() + b"".join(enc.encode(r) for r in recs) + enc.finish(COMPLETED)
    got = [c for _, c in frames(body)]
    assert [c["type"] for c in got if isinstance(c, dict)] == [
        "start", "text-start", "text-delta", "text-delta", "text-end", "data-restarted",
        "text-start", "text-delta", "text-delta", "text-end", "finish",
    ]  # fmt: skip
    assert " LATE" not in body.decode()
    assert {"type": "data-restarted", "data": {"attempt": 2}, "transient": True} in got
    for cut in range(len(recs)):  # resumed anywhere: the new attempt, never the straggler
        static = StaticLog([r.payload for r in recs], COMPLETED)
        static.records = recs
        state = asyncio.run(resume_state(static, "r", cut, FoldCache()))
        first = VercelStream("m")
        client = VercelClient()  # got the stream up to the cut, then resumed after it
        client.read(first.start() + b"".join(first.encode(r) for r in recs[: cut + 1]))
        resumed = VercelStream("m", state=state)
        rest = resumed.start() + b"".join(resumed.encode(r) for r in recs[cut + 1 :])
        client.read(rest + resumed.finish(COMPLETED))
        assert " LATE" not in client.text() and client.text().endswith("new answer")
    agui = AguiStream("th", "run")
    events = [c for _, c in frames(agui.start() + b"".join(agui.encode(r) for r in recs))]
    assert {"type": "CUSTOM", "name": "session.run.restarted", "value": {"attempt": 2}} in events


def _frames_of(enc: Any, payloads: list[dict[str, Any]], closing: Any = COMPLETED) -> list[Any]:
    body = enc.start() + b"".join(enc.encode(r) for r in records(payloads)) + enc.finish(closing)
    return [c for _, c in frames(body)]


def test_tool_results_without_an_id_or_without_a_call() -> None:
    payloads = [
        wire(ToolCallEvent(tool_name="a", args={"x": 1})),
        wire(ToolResultEvent(tool_name="a", result=1)),
        wire(ToolResultEvent(tool_name="b", tool_call_id="call_9", result=2)),
    ]
    client = VercelClient()
    for _, chunk in frames(b"".join(_encode_all(VercelStream("m"), payloads))):
        client.chunk(chunk)
    tools = [p for p in client.parts if p["type"] == "tool"]
    assert [(t["toolCallId"], t["input"], t["output"]) for t in tools] == [
        ("call-0", {"x": 1}, 1),
        ("call_9", None, 2),
    ]


def _encode_all(enc: Any, payloads: list[dict[str, Any]]) -> list[bytes]:
    return [enc.start(), *(enc.encode(r) for r in records(payloads)), enc.finish(COMPLETED)]


def test_usage_is_message_metadata_and_run_usage() -> None:
    payloads = [
        wire(LlmCallEvent(model="m", tokens_in=3, tokens_out=4, cost_usd=0.5)),
        wire(LlmCallEvent(model="m", tokens_in=1, tokens_out=1)),
    ]
    client = VercelClient()
    client.read(b"".join(_encode_all(VercelStream("m"), payloads)))
    assert client.metadata == {"llmCalls": 2, "model": "m", "tokensIn": 4, "tokensOut": 5,
                               "costUsd": 0.5}  # fmt: skip
    finished = _frames_of(AguiStream("th", "run"), payloads)[-1]
    assert finished["usage"] == [
        {"model": "m", "inputTokens": 4, "outputTokens": 5, "totalTokens": 9}
    ]
    resumed = VercelStream("m", after=records(payloads))
    assert b'"tokensIn":4' in resumed.start()  # a client resuming sees the totals so far


def test_a_blocked_turn_asks_the_readiness_gates_questions() -> None:
    vercel = [c for _, c in _stream("blocked")]
    readiness = next(c for c in vercel if isinstance(c, dict) and c["type"] == "data-readiness")
    assert readiness["data"]["status"] == "blocked"
    assert [q["id"] for q in readiness["data"]["questions"]] == ["question_city"]
    assert vercel[-2:] == [{"type": "finish", "finishReason": "other"}, "[DONE]"]
    agui = [c for _, c in _stream("blocked", AguiStream)]
    outcome = agui[-1]["outcome"]
    assert outcome["type"] == "interrupt"
    assert [(i["id"], i["reason"]) for i in outcome["interrupts"]] == [
        ("question_city", "input_required")
    ]
    assert outcome["interrupts"][0]["message"] == "Please provide: the city you are in"


def test_the_gates_questions_survive_the_services_sanitized_report() -> None:
    """The service logs the readiness report sanitized (no requirement descriptions, evidence
    as a count): the questions are still asked, the requirement's id standing in."""
    payloads = [dict(p) for p in LOGS["blocked"][0]]
    for p in payloads:
        if p["type"] == "readiness_end":
            knowledge = dict(p["knowledge"])
            knowledge.pop("bundle")
            knowledge["blockingGaps"] = [
                {k: v for k, v in g.items() if k not in ("description", "evidenceIds")}
                | {"evidenceCount": 0}
                for g in knowledge["blockingGaps"]
            ]
            p["knowledge"] = knowledge
    outcome = _frames_of(AguiStream("th", "run"), payloads)[-1]["outcome"]
    assert [(i["id"], i["message"]) for i in outcome["interrupts"]] == [
        ("question_city", "Please provide: city")
    ]


def test_a_retry_after_a_failed_attempt_reads_as_its_new_attempt_from_the_marker() -> None:
    """A retried turn whose failed attempt logged its failure: a reader starting at the
    restart marker (where a fresh dialect reader starts) gets the new attempt alone."""
    recs = [
        *records(text("Part", "ial")),
        StreamEventRecord(
            "r", 2, "turn:2", wire(FinalEvent(task=TASK, status="failed", reason="boom")), NOW
        ),
        StreamEventRecord("r", 3, turn_restart_id(2), restarted_event(2), NOW),
        StreamEventRecord("r", 4, turn_event_id(0, 2), text("new answer")[0], NOW),
    ]
    static = StaticLog([r.payload for r in recs], COMPLETED)
    static.records = recs
    state = asyncio.run(resume_state(static, "r", 3, FoldCache()))
    enc = VercelStream("m", state=state)
    client = VercelClient()
    client.read(enc.start() + b"".join(enc.encode(r) for r in recs[4:]) + enc.finish(COMPLETED))
    assert client.text() == "new answer"
    assert client.terminal == ["finish", "[DONE]"]


def test_interrupts_offer_choices_and_stand_in_for_a_gate_without_questions() -> None:
    question = {"id": "q1", "question": "Which?", "options": ["a", "b"]}
    (one,) = interrupts_for("blocked", [question])
    assert one["responseSchema"]["properties"]["answer"]["enum"] == ["a", "b"]
    assert interrupts_for("blocked: why", []) == [
        {"id": "readiness", "reason": "input_required", "message": "blocked: why"}
    ]


def test_reasoning_is_its_own_part_in_both_dialects() -> None:
    vercel = [c["type"] for _, c in _stream("reasoning") if isinstance(c, dict)]
    assert vercel[:5] == ["start", "reasoning-start", "reasoning-delta", "reasoning-delta",
                          "reasoning-end"]  # fmt: skip
    agui = [c["type"] for _, c in _stream("reasoning", AguiStream)]
    assert agui[:6] == ["RUN_STARTED", "REASONING_START", "REASONING_MESSAGE_START",
                        "REASONING_MESSAGE_CONTENT", "REASONING_MESSAGE_CONTENT",
                        "REASONING_MESSAGE_END"]  # fmt: skip


def test_grammar_model_rejects_an_orphan_delta() -> None:
    with pytest.raises(GrammarError):
        VercelClient().chunk({"type": "text-delta", "id": "x", "delta": "a"})
    with pytest.raises(GrammarError):
        AguiClient().run(b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"x","delta":"a"}\n\n')


def test_a_cursor_past_the_end_of_the_log_is_refused() -> None:
    log = StaticLog(*LOGS["text"])
    last = len(log.records) - 1
    assert asyncio.run(resume_state(log, "r", last, FoldCache())) is not None
    assert asyncio.run(resume_state(log, "r", None, FoldCache())) is None
    for cache in (FoldCache(), _served(log)):
        with pytest.raises(InvalidArgumentError) as caught:
            asyncio.run(resume_state(log, "r", last + 1, cache))
        assert caught.value.path == "after"


def _served(log: StaticLog, every: int = 2) -> FoldCache:
    """A cache as a process that streamed the whole log leaves it (a state every `every`)."""
    cache = FoldCache()

    async def stream() -> None:
        async for _ in vercel_body(log, "r", "m", None, None, cache):
            pass

    import agent_runtime.server.dialects._bodies as bodies

    saved, bodies.SNAPSHOT_EVERY = bodies.SNAPSHOT_EVERY, every
    try:
        asyncio.run(stream())
    finally:
        bodies.SNAPSHOT_EVERY = saved
    return cache


def test_kept_fold_states_resume_exactly_as_a_full_fold() -> None:
    log = StaticLog(*LOGS["tools"])
    served = _served(log)
    assert served.nearest("r", 5) is not None  # the stream kept states on its way
    for cursor in range(len(log.records)):
        full = asyncio.run(resume_state(log, "r", cursor, FoldCache()))
        assert asyncio.run(resume_state(log, "r", cursor, served)) == full


def test_a_kept_state_of_a_rewritten_log_is_not_used() -> None:
    log = StaticLog(*LOGS["tools"])
    served = _served(log)
    truth = asyncio.run(resume_state(log, "r", 5, FoldCache()))
    stale, _, _ = served.nearest("r", 5)  # type: ignore[misc]
    # the turn ran again: same event ids, new records (written later, other content)
    rewritten = StaticLog(text("x", "y", "z", "w", "v", "u"), COMPLETED)
    for rec, old in zip(rewritten.records, log.records, strict=False):
        object.__setattr__(rec, "created_at", old.created_at.replace(year=2027))
    got = asyncio.run(resume_state(rewritten, "r", 5, served))
    assert got == asyncio.run(resume_state(rewritten, "r", 5, FoldCache())) != truth
    assert got != stale


def test_the_ui_message_stream_headers() -> None:
    assert UI_MESSAGE_STREAM_HEADERS["x-vercel-ai-ui-message-stream"] == "v1"
    assert UI_MESSAGE_STREAM_HEADERS["content-type"] == "text/event-stream"
