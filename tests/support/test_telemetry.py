"""Sanitized telemetry (ORIGINAL §9): every projection, every include flag both ways, nothing
user-controlled leaving by default, and our secret scrubbing over what remains."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from agent_runtime import (
    RuntimeTelemetryOptions,
    SanitizeOptions,
    ValidationError,
    redaction_marker,
    sanitize_agent_runtime_event,
    sanitize_knowledge_readiness_report,
    sanitize_runtime_stream_event,
)
from agent_runtime.eval import ControlDecision
from agent_runtime.sanitize import (
    REDACTED,
    sanitize_control_run,
    sanitize_control_step,
    sanitize_data_acquisition_plan,
    sanitize_eval_summary,
    sanitize_knowledge_requirement,
    sanitize_runtime_session,
    sanitize_task,
    sanitize_user_answers,
    sanitize_user_question,
)
from agent_runtime.types import (
    AGENT_RUNTIME_EVENT_TYPES,
    RUNTIME_STREAM_EVENT_TYPES,
    AgentTaskSpec,
    BackendErrorEvent,
    ControlStepEvent,
    FinalEvent,
    QuestionsEndEvent,
    ReasoningDeltaEvent,
    RuntimeSession,
    TaskStartEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tests.support.secret_strategies import MARKER, PROSE, SECRETS
from tests.support.telemetry_fixtures import (
    ANSWERS,
    CONTROL,
    CREDENTIAL_QUESTION,
    DECISION,
    EVAL,
    PLAN,
    QUESTION,
    REPORT,
    REQUIREMENT,
    SECRET_REQUIREMENT,
    SESSION,
    STEP,
    TASK,
    TS,
    agent_events,
    stream_events,
)

LEAK = re.compile(r"LEAK<([^>]*)>")
FLAGS = [
    f.name for f in dataclasses.fields(RuntimeTelemetryOptions) if f.name.startswith("include")
]


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def leaked(options: RuntimeTelemetryOptions | None) -> set[str]:
    """Every marker that some projection of some full event shows under `options`."""
    out: set[str] = set()
    for event in agent_events():
        out |= set(LEAK.findall(dumps(sanitize_agent_runtime_event(event, options))))
    for event in stream_events():
        out |= set(LEAK.findall(dumps(sanitize_runtime_stream_event(event, options))))
    return out


# --- nothing user-controlled by default; each flag shows exactly what it names ----------------


def test_the_fixtures_cover_every_event_type() -> None:
    assert {e.TYPE for e in agent_events()} == AGENT_RUNTIME_EVENT_TYPES
    assert {e.TYPE for e in stream_events()} == RUNTIME_STREAM_EVENT_TYPES


def test_nothing_user_controlled_leaks_by_default() -> None:
    assert leaked(None) == set()
    assert leaked(RuntimeTelemetryOptions()) == set()


EXPECTED_BY_FLAG: dict[str, set[str]] = {
    "include_inputs": {"task.inputs", "task.inputs.key"},
    "include_requirement_descriptions": {
        "requirement.description",
        "question.question",
        "question.reason",
        "question.impactIfUnknown",
    },
    "include_evidence_ids": {
        "requirement.evidenceIds",
        "report.evidenceIds",
        "acquiredEvidenceIds",
        "artifact.uri",
    },
    "include_user_answers": {"userAnswers"},
    "include_control_payloads": {
        "step.action",
        "step.result",
        "tool.args",
        "tool.result",
        "artifact.content",
        "proposal.title",
        "proposal.content",
        "final.text",
        "error.body",
    },
    "include_metadata": {
        "task.metadata",
        "session.metadata",
        "artifact.metadata",
        "final.metadata",
    },
    "include_eval_details": {"eval.detail", "eval.evidence"},
}
NEVER = {
    "session.resumeToken",
    "secret.description",
    "credential.question",
    "question.options",
    "plan.description",
    "report.metadata",
    "control.finalState",
}


def test_every_flag_is_listed() -> None:
    assert set(FLAGS) == set(EXPECTED_BY_FLAG)
    assert RuntimeTelemetryOptions() == RuntimeTelemetryOptions(**dict.fromkeys(FLAGS, False))


@pytest.mark.parametrize("flag", FLAGS)
def test_each_flag_shows_exactly_what_it_names(flag: str) -> None:
    assert leaked(RuntimeTelemetryOptions(**{flag: True})) == EXPECTED_BY_FLAG[flag]


def test_with_every_flag_on_the_never_fields_stay_hidden() -> None:
    everything = leaked(RuntimeTelemetryOptions(**dict.fromkeys(FLAGS, True)))
    assert everything == set().union(*EXPECTED_BY_FLAG.values())
    assert not everything & NEVER


# --- the projections, field by field ------------------------------------------------------------

REQ_DEFAULT = {
    "id": "customer-id",
    "requiredFor": ["lookup"],
    "category": "customer",
    "acquisitionMode": "ask_user",
    "importance": "blocking",
    "freshness": "static",
    "sensitivity": "internal",
    "confidenceNeeded": 0.7,
    "currentConfidence": 0.2,
    "evidenceCount": 1,
    "fallbackPolicy": "ask",
}
SECRET_REQ_DEFAULT = {
    "id": "api-token",
    "requiredFor": [],
    "category": "domain",
    "acquisitionMode": "ask_user",
    "importance": "high",
    "freshness": "static",
    "sensitivity": "secret",
    "confidenceNeeded": 0.7,
    "currentConfidence": 0.0,
    "evidenceCount": 0,
    "fallbackPolicy": "block",
}
TASK_DEFAULT = {
    "id": "task-1",
    "intent": "answer a customer question",
    "domain": "support",
    "inputs": REDACTED,
    "requiredKnowledge": [REQ_DEFAULT, SECRET_REQ_DEFAULT],
    "metadata": REDACTED,
}
SESSION_DEFAULT = {
    "id": "sess-1",
    "backend": "tcloud",
    "status": "active",
    "hasResumeToken": True,
    "createdAt": TS,
    "updatedAt": TS,
    "metadata": REDACTED,
}
REPORT_DEFAULT = {
    "taskId": "task-1",
    "readinessScore": 0.4,
    "recommendedAction": "ask_user",
    "severity": "critical",
    "reason": "2 blocking knowledge requirement(s) are missing.",
    "blockingGaps": [REQ_DEFAULT, SECRET_REQ_DEFAULT],
    "nonBlockingGaps": [],
    "evidenceCount": 1,
    "missingRequirementIds": ["customer-id", "api-token"],
}
QUESTION_DEFAULT = {
    "id": "question_customer-id",
    "requirementId": "customer-id",
    "importance": "blocking",
    "answerType": "free_text",
    "optionCount": 2,
}
CREDENTIAL_DEFAULT = {
    "id": "question_api-token",
    "requirementId": "api-token",
    "importance": "high",
    "answerType": "credential",
    "optionCount": 0,
}
PLAN_DEFAULT = {
    "id": "acquire_ask_user",
    "requirementIds": ["customer-id"],
    "mode": "ask_user",
    "priority": "blocking",
    "expectedEvidenceCount": 1,
    "questionCount": 1,
}
EVAL_DEFAULT = {
    "id": "tests-pass",
    "passed": False,
    "score": 0.5,
    "severity": "error",
    "objective": True,
}
STEP_DEFAULT = {
    "index": 0,
    "decisionType": "continue",
    "reason": "run the tests",
    "actionOk": True,
    "durationMs": 12.5,
    "evalsBefore": [EVAL_DEFAULT],
    "evalsAfter": [EVAL_DEFAULT],
    "startedAt": TS,
    "endedAt": TS,
}
CONTROL_DEFAULT = {
    "pass": False,
    "completed": True,
    "reason": "budget exhausted: maxSteps=1",
    "score": 0.5,
    "stepCount": 1,
    "wallMs": 40.0,
    "spentCostUsd": 0.25,
    "failureClass": "budget_exceeded",
    "stoppedBy": "budget",
    "runId": None,
    "runtimeErrorCount": 1,
    "finalEvals": [EVAL_DEFAULT],
}


def test_task_projection() -> None:
    assert sanitize_task(TASK) == TASK_DEFAULT
    bare = AgentTaskSpec(id="t", intent="fixed operation")
    assert sanitize_task(bare) == {"id": "t", "intent": "fixed operation"}, (
        "absent inputs and metadata stay absent; no requiredKnowledge key without one"
    )
    shown = sanitize_task(TASK, RuntimeTelemetryOptions(include_inputs=True, include_metadata=True))
    assert shown["inputs"] == dict(TASK.inputs or {}) and shown["metadata"] == dict(
        TASK.metadata or {}
    )
    empty = AgentTaskSpec(id="t", intent="i", inputs={}, required_knowledge=())
    assert sanitize_task(empty) == {
        "id": "t",
        "intent": "i",
        "inputs": REDACTED,
        "requiredKnowledge": [],
    }


def test_session_projection_never_shows_the_token() -> None:
    assert sanitize_runtime_session(SESSION) == SESSION_DEFAULT
    plain = RuntimeSession.new("sandbox", "s2")
    out = sanitize_runtime_session(plain)
    assert out["hasResumeToken"] is False and "metadata" not in out
    every = RuntimeTelemetryOptions(**dict.fromkeys(FLAGS, True))
    shown = sanitize_runtime_session(SESSION, every)
    assert shown["metadata"] == dict(SESSION.metadata or {})
    assert "resumeToken" not in shown and "LEAK<session.resumeToken>" not in dumps(shown)


def test_requirement_projection() -> None:
    assert sanitize_knowledge_requirement(REQUIREMENT) == REQ_DEFAULT
    described = RuntimeTelemetryOptions(include_requirement_descriptions=True)
    assert sanitize_knowledge_requirement(REQUIREMENT, described) == {
        "id": "customer-id",
        "description": REQUIREMENT.description,
        **{k: v for k, v in REQ_DEFAULT.items() if k != "id"},
    }
    assert "description" not in sanitize_knowledge_requirement(SECRET_REQUIREMENT, described)
    with_ids = sanitize_knowledge_requirement(
        REQUIREMENT, RuntimeTelemetryOptions(include_evidence_ids=True)
    )
    assert with_ids["evidenceIds"] == list(REQUIREMENT.evidence_ids)
    assert list(with_ids)[-2:] == ["evidenceIds", "fallbackPolicy"]


def test_readiness_report_projection() -> None:
    assert sanitize_knowledge_readiness_report(REPORT) == REPORT_DEFAULT
    with_ids = sanitize_knowledge_readiness_report(
        REPORT, RuntimeTelemetryOptions(include_evidence_ids=True)
    )
    assert with_ids["evidenceIds"] == list(REPORT.bundle.evidence_ids)
    assert "metadata" not in with_ids


def test_question_projection() -> None:
    assert sanitize_user_question(QUESTION) == QUESTION_DEFAULT
    described = RuntimeTelemetryOptions(include_requirement_descriptions=True)
    assert sanitize_user_question(QUESTION, described) == {
        "id": QUESTION.id,
        "question": QUESTION.question,
        "reason": QUESTION.reason,
        "impactIfUnknown": QUESTION.impact_if_unknown,
        **{k: v for k, v in QUESTION_DEFAULT.items() if k != "id"},
    }
    credential = sanitize_user_question(CREDENTIAL_QUESTION, described)
    assert "question" not in credential, "a credential's question text is never shown"
    assert credential["reason"] == "Required for the task."


def test_plan_answers_eval_step_and_control_projections() -> None:
    assert sanitize_data_acquisition_plan(PLAN) == PLAN_DEFAULT
    assert sanitize_user_answers(ANSWERS) == {"question_customer-id": REDACTED}
    assert (
        sanitize_user_answers(ANSWERS, RuntimeTelemetryOptions(include_user_answers=True))
        == ANSWERS
    )
    assert sanitize_eval_summary(EVAL) == EVAL_DEFAULT
    details = sanitize_eval_summary(EVAL, RuntimeTelemetryOptions(include_eval_details=True))
    assert details == {**EVAL_DEFAULT, "detail": EVAL.detail, "evidence": EVAL.evidence}
    assert sanitize_control_step(STEP) == STEP_DEFAULT
    assert sanitize_control_run(CONTROL) == CONTROL_DEFAULT


def test_control_payloads_need_a_continue_decision_and_an_ok_action() -> None:
    payloads = RuntimeTelemetryOptions(include_control_payloads=True)
    shown = sanitize_control_step(STEP, payloads)
    assert shown["action"] == {"cmd": "LEAK<step.action>"} and shown["result"] == {
        "out": "LEAK<step.result>"
    }
    stop = dataclasses.replace(STEP, decision=ControlDecision(type="stop", action={"x": 1}))
    assert "action" not in sanitize_control_step(stop, payloads)
    failed = dataclasses.replace(STEP, action_ok=False, action_error="tool crashed")
    out = sanitize_control_step(failed, payloads)
    assert "result" not in out and out["actionError"] == "tool crashed" and out["actionOk"] is False


def test_agent_runtime_events() -> None:
    events = {e.TYPE: e for e in agent_events()}
    project = {t: sanitize_agent_runtime_event(e) for t, e in events.items()}
    assert project["task_start"] == {"type": "task_start", "task": TASK_DEFAULT}
    assert project["readiness_start"] == {"type": "readiness_start", "task": TASK_DEFAULT}
    for kind in ("readiness_end", "control_start"):
        assert project[kind] == {"type": kind, "task": TASK_DEFAULT, "knowledge": REPORT_DEFAULT}
    questions = [QUESTION_DEFAULT, CREDENTIAL_DEFAULT]
    assert project["questions_start"] == {
        "type": "questions_start",
        "task": TASK_DEFAULT,
        "questions": questions,
    }
    assert project["questions_end"] == {
        "type": "questions_end",
        "task": TASK_DEFAULT,
        "questions": questions,
        "userAnswers": {"question_customer-id": REDACTED},
    }
    assert project["acquisition_start"] == {
        "type": "acquisition_start",
        "task": TASK_DEFAULT,
        "acquisitionPlans": [PLAN_DEFAULT],
    }
    assert project["acquisition_end"] == {
        "type": "acquisition_end",
        "task": TASK_DEFAULT,
        "acquisitionPlans": [PLAN_DEFAULT],
        "acquiredEvidenceCount": 1,
    }
    ids = sanitize_agent_runtime_event(
        events["acquisition_end"], RuntimeTelemetryOptions(include_evidence_ids=True)
    )
    assert ids["acquiredEvidenceIds"] == ["LEAK<acquiredEvidenceIds>"]
    assert project["control_step"] == {
        "type": "control_step",
        "task": TASK_DEFAULT,
        "step": STEP_DEFAULT,
    }
    assert project["control_end"] == {
        "type": "control_end",
        "task": TASK_DEFAULT,
        "control": CONTROL_DEFAULT,
    }
    assert project["task_end"] == {
        "type": "task_end",
        "task": TASK_DEFAULT,
        "status": "failed",
        "reason": "budget exhausted: maxSteps=1",
    }


def test_stream_events() -> None:
    events = {e.TYPE: e for e in stream_events()}
    base = {"task": TASK_DEFAULT, "timestamp": TS}
    with_session = {"task": TASK_DEFAULT, "session": SESSION_DEFAULT, "timestamp": TS}
    expected: dict[str, dict[str, Any]] = {
        "task_start": base,
        "readiness_start": base,
        "readiness_end": {**base, "decision": DECISION.to_dict(), "knowledge": REPORT_DEFAULT},
        "session_created": with_session,
        "session_resumed": with_session,
        "backend_start": {**with_session, "backend": "tcloud"},
        "backend_end": {**with_session, "backend": "tcloud"},
        "text_delta": {**with_session, "text": "Hello"},
        "reasoning_delta": {**with_session, "text": "thinking"},
        "tool_call": {**with_session, "toolName": "crm", "toolCallId": "call-1"},
        "tool_result": {**with_session, "toolName": "crm", "toolCallId": "call-1"},
        "llm_call": {
            **with_session,
            "model": "gpt-x",
            "tokensIn": 10,
            "tokensOut": 5,
            "costUsd": 0.01,
            "latencyMs": 250.0,
            "finishReason": "stop",
        },
        "artifact": {
            **with_session,
            "artifactId": "art-1",
            "name": "report.pdf",
            "mimeType": "application/pdf",
        },
        "proposal_created": {**with_session, "proposalId": "prop-1", "status": "pending"},
        "backend_error": {
            **with_session,
            "backend": "tcloud",
            "message": "chat backend returned 503",
            "recoverable": True,
            "error": {"kind": "transport", "status": 503},
        },
        "task_end": {**base, "status": "failed", "reason": "chat backend returned 503"},
        "final": {
            **with_session,
            "status": "failed",
            "reason": "chat backend returned 503",
            "error": {"kind": "transport", "message": "chat backend returned 503", "status": 503},
        },
    }
    for kind, extra in expected.items():
        out = sanitize_runtime_stream_event(events[kind])
        assert out == {"type": kind, **extra}, kind
        assert list(out)[:2] == ["type", "task"]
    assert events["readiness_end"].decision is DECISION and not DECISION.passed


def test_payload_and_evidence_rules_of_stream_events() -> None:
    events = {e.TYPE: e for e in stream_events()}
    payloads = RuntimeTelemetryOptions(include_control_payloads=True)
    assert sanitize_runtime_stream_event(events["tool_call"], payloads)["args"] == {
        "q": "LEAK<tool.args>"
    }
    assert sanitize_runtime_stream_event(events["tool_result"], payloads)["result"] == {
        "rows": "LEAK<tool.result>"
    }
    proposal = sanitize_runtime_stream_event(events["proposal_created"], payloads)
    assert proposal["title"] == "LEAK<proposal.title>"
    final = sanitize_runtime_stream_event(events["final"], payloads)
    assert final["text"] == "LEAK<final.text>" and final["error"]["body"] == "LEAK<error.body>"
    error = sanitize_runtime_stream_event(events["backend_error"], payloads)
    assert error["error"] == {"kind": "transport", "status": 503}, "backend_error never has a body"
    artifact = sanitize_runtime_stream_event(events["artifact"], payloads)
    assert "uri" not in artifact and artifact["content"] == "LEAK<artifact.content>"
    uri = sanitize_runtime_stream_event(
        events["artifact"], RuntimeTelemetryOptions(include_evidence_ids=True)
    )
    assert uri["uri"] == "LEAK<artifact.uri>" and "content" not in uri


def test_llm_call_is_visible_under_any_options() -> None:
    event = next(e for e in stream_events() if e.TYPE == "llm_call")
    for options in (None, RuntimeTelemetryOptions(**dict.fromkeys(FLAGS, True))):
        out = sanitize_runtime_stream_event(event, options)
        assert (out["model"], out["tokensIn"], out["tokensOut"], out["costUsd"]) == (
            "gpt-x",
            10,
            5,
            0.01,
        )
        assert (out["latencyMs"], out["finishReason"]) == (250.0, "stop")


def test_wire_dicts_project_like_the_typed_events() -> None:
    for event in stream_events():
        assert sanitize_runtime_stream_event(event.to_dict()) == sanitize_runtime_stream_event(
            event
        )
    for event in agent_events():
        assert sanitize_agent_runtime_event(event.to_dict()) == sanitize_agent_runtime_event(event)


def test_projections_are_copies() -> None:
    event = next(e for e in stream_events() if e.TYPE == "text_delta")
    first = sanitize_runtime_stream_event(event)
    first["task"]["id"] = "changed"
    first["session"]["status"] = "changed"
    again = sanitize_runtime_stream_event(event)
    assert again["task"]["id"] == "task-1" and again["session"]["status"] == "active"


# --- secret scrubbing on top of the projection -------------------------------------------------

KEY = "sk-proj-" + "A1b2C3d4" * 5


def test_secrets_in_shown_fields_are_scrubbed() -> None:
    task = AgentTaskSpec(
        id="t", intent=f"call with {KEY}", inputs={"password": "hunter2", "note": KEY}
    )
    out = sanitize_runtime_stream_event(
        TaskStartEvent(task=task, timestamp=TS), RuntimeTelemetryOptions(include_inputs=True)
    )
    assert KEY not in dumps(out)
    assert out["task"]["intent"] == f"call with {redaction_marker(KEY)}"
    assert MARKER.fullmatch(out["task"]["inputs"]["password"]), (
        "secret-named keys are redacted whole"
    )
    error = BackendErrorEvent(
        task=task, backend="b", message=f"401 for {KEY}", recoverable=False, timestamp=TS
    )
    assert KEY not in dumps(sanitize_runtime_stream_event(error))
    keyed = RuntimeTelemetryOptions(scrub=SanitizeOptions(fingerprint_key=b"deployment"))
    assert sanitize_task(task, keyed)["intent"] == f"call with {redaction_marker(KEY, keyed.scrub)}"


def test_deltas_are_shown_but_scrubbed_unless_told_otherwise() -> None:
    for cls in (TextDeltaEvent, ReasoningDeltaEvent):
        delta = cls(text=f"your key is {KEY}", task=TASK, timestamp=TS)
        assert (
            sanitize_runtime_stream_event(delta)["text"] == f"your key is {redaction_marker(KEY)}"
        )
        raw = sanitize_runtime_stream_event(delta, RuntimeTelemetryOptions(scrub_deltas=False))
        assert raw["text"] == f"your key is {KEY}"
        assert raw["task"] == TASK_DEFAULT


def test_the_decision_is_shown_unredacted() -> None:
    event = next(e for e in stream_events() if e.TYPE == "readiness_end")
    assert sanitize_runtime_stream_event(event)["decision"] == DECISION.to_dict()


def _answers_with(value: str) -> QuestionsEndEvent:
    return QuestionsEndEvent(
        task=TASK, questions=(QUESTION,), user_answers={"question_customer-id": value}, timestamp=TS
    )


def _carrier_events(value: str) -> list[Any]:
    task = AgentTaskSpec(id="t", intent="i", inputs={"q": value}, metadata={"m": value})
    return [
        TaskStartEvent(task=task, timestamp=TS),
        ToolCallEvent(tool_name="n", tool_call_id="c", args={"q": value}, task=task),
        ToolResultEvent(tool_name="n", result=value, task=task),
        FinalEvent(task=task, status="completed", reason="backend completed", text=value),
        TextDeltaEvent(text=value, task=task),
    ]


EVERY_FLAG = RuntimeTelemetryOptions(**dict.fromkeys(FLAGS, True))


@settings(max_examples=150)
@given(PROSE, SECRETS, PROSE)
def test_no_generated_secret_survives_with_every_flag_on(
    before: str, secret: str, after: str
) -> None:
    value = f"{before} {secret} {after}"
    for event in _carrier_events(value):
        assert secret not in dumps(sanitize_runtime_stream_event(event, EVERY_FLAG))
    answers = _answers_with(value)
    assert secret not in dumps(sanitize_runtime_stream_event(answers, EVERY_FLAG))


@given(PROSE.filter(bool))
def test_ordinary_prose_passes_unchanged_with_every_flag_on(prose: str) -> None:
    for event in _carrier_events(prose):
        out = dumps(sanitize_runtime_stream_event(event, EVERY_FLAG))
        assert dumps(prose)[1:-1] in out
    assert sanitize_runtime_stream_event(_answers_with(prose), EVERY_FLAG)["userAnswers"] == {
        "question_customer-id": prose
    }


# --- boundaries ----------------------------------------------------------------------------------


def test_wrong_vocabulary_and_bad_input_are_validation_errors() -> None:
    delta = TextDeltaEvent(text="x", task=TASK)
    with pytest.raises(ValidationError, match="not an event of this vocabulary"):
        sanitize_agent_runtime_event(delta)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not an event of this vocabulary"):
        sanitize_runtime_stream_event(ControlStepEvent(task=TASK, step=STEP))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        sanitize_runtime_stream_event({"type": "text.delta", "text": "x"})
    with pytest.raises(ValidationError):
        sanitize_runtime_stream_event(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        sanitize_runtime_stream_event(delta, {"include_inputs": True})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        sanitize_knowledge_readiness_report(REPORT.to_dict())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        sanitize_task({"id": "t"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RuntimeTelemetryOptions(include_inputs="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RuntimeTelemetryOptions(scrub="default")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="include_input"):
        RuntimeTelemetryOptions.of(None, include_input=True)
    assert RuntimeTelemetryOptions.of(None, include_inputs=True).include_inputs is True
