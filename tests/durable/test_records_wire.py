"""The durable records' `to_dict()` is the original's wire form: camelCase keys, ISO times."""

from __future__ import annotations

from datetime import UTC, datetime

from agent_runtime.durable import (
    EventRecord,
    RunHandle,
    RunRecord,
    StepRecord,
    StreamEventRecord,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_run_record() -> None:
    run = RunRecord(
        run_id="r", manifest_hash="h", project_id="p", scenario_id=None, status="running",
        created_at=AT, updated_at=AT, lease_holder="w", lease_expires_at=AT, outcome=None,
        step_count=2, handle=RunHandle(kind="remote", run_id="x"), lease_epoch=3,
    )  # fmt: skip
    assert run.to_dict() == {
        "runId": "r", "manifestHash": "h", "projectId": "p", "scenarioId": None,
        "status": "running", "createdAt": AT.isoformat(), "updatedAt": AT.isoformat(),
        "leaseHolderId": "w", "leaseExpiresAt": AT.isoformat(), "leaseEpoch": 3,
        "outcome": None, "stepCount": 2, "handle": {"kind": "remote", "runId": "x"},
        "manifest": None,
    }  # fmt: skip


def test_step_event_and_stream_records() -> None:
    step = StepRecord(
        run_id="r", step_index=0, intent="plan", kind="llm", input_hash="ih",
        status="completed", attempts=1, result={"a": 1}, error=None, started_at=AT,
        completed_at=None,
    )  # fmt: skip
    assert step.to_dict() == {
        "runId": "r", "stepIndex": 0, "intent": "plan", "kind": "llm", "inputHash": "ih",
        "status": "completed", "attempts": 1, "result": {"a": 1}, "error": None,
        "startedAt": AT.isoformat(), "completedAt": None,
    }  # fmt: skip
    event = EventRecord(run_id="r", key="k", payload=[1], created_at=AT)
    assert event.to_dict() == {
        "runId": "r",
        "key": "k",
        "payload": [1],
        "emittedAt": AT.isoformat(),
    }
    record = StreamEventRecord(run_id="r", seq=4, event_id="e", payload="p", created_at=AT)
    assert record.to_dict() == {
        "runId": "r", "seq": 4, "eventId": "e", "payload": "p", "appendedAt": AT.isoformat(),
    }  # fmt: skip
