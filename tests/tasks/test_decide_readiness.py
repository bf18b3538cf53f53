"""decide_knowledge_readiness (ORIGINAL §5): blocked, caveat with its three-decimal sentence,
ready; the minimum checked; every field of the report carried into the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agent_runtime import (
    KnowledgeReadinessDecision,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    ValidationError,
    decide_knowledge_readiness,
    score_knowledge_readiness,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def req(rid: str, **kw: Any) -> KnowledgeRequirement:
    return KnowledgeRequirement(id=rid, description=f"the {rid}", **kw)


def report_with(readiness_score: float, **kw: Any) -> KnowledgeReadinessReport:
    fields: dict[str, Any] = {
        "task_id": "t1",
        "readiness_score": readiness_score,
        "recommended_action": "continue_with_caveat",
        "severity": "info",
        "reason": "1 non-blocking knowledge gap(s) remain.",
        "non_blocking_gaps": (req("n"),),
    }
    fields.update(kw)
    return KnowledgeReadinessReport(**fields)


def carried(decision: KnowledgeReadinessDecision, report: KnowledgeReadinessReport) -> None:
    assert decision.readiness_score == report.readiness_score
    assert decision.recommended_action == report.recommended_action
    assert decision.severity == report.severity
    assert decision.blocking_gap_ids == report.blocking_gap_ids
    assert decision.non_blocking_gap_ids == report.non_blocking_gap_ids


def test_blocking_gaps_block_with_the_report_reason() -> None:
    report = score_knowledge_readiness(
        "t1",
        [
            req("key", sensitivity="secret", fallback_policy="infer"),
            req("city", acquisition_mode="ask_user", fallback_policy="continue_with_caveat"),
            req("ok", current_confidence=1.0),
        ],
        now=NOW,
    )
    decision = decide_knowledge_readiness(report)
    assert decision.passed is False
    assert decision.status == "blocked"
    assert decision.reason == "1 blocking knowledge requirement(s) are missing."
    assert decision.blocking_gap_ids == ("key",)
    assert decision.non_blocking_gap_ids == ("city",)
    carried(decision, report)


def test_blocked_wins_over_any_score_and_minimum() -> None:
    # a blocking gap with a perfect score and no minimum still blocks (and is not a caveat)
    report = report_with(
        1.0,
        blocking_gaps=(req("b", importance="blocking"),),
        severity="critical",
        recommended_action="ask_user",
        reason="1 blocking knowledge requirement(s) are missing.",
    )
    decision = decide_knowledge_readiness(report, minimum_score=0.0)
    assert (decision.passed, decision.status) == (False, "blocked")
    assert decision.reason == report.reason
    low = report_with(0.1, blocking_gaps=(req("b"),), reason="r", severity="critical")
    assert decide_knowledge_readiness(low).status == "blocked"


def test_below_the_minimum_is_a_caveat_with_the_exact_sentence() -> None:
    report = report_with(0.65, severity="warning")
    decision = decide_knowledge_readiness(report)
    assert decision.passed is False
    assert decision.status == "caveat"
    assert decision.reason == "Knowledge readiness score 0.650 is below minimum 0.700."
    carried(decision, report)


@pytest.mark.parametrize(
    ("score", "minimum", "sentence"),
    [
        # exact binary ties: JavaScript's toFixed takes the larger neighbour (Python's
        # format() would round half to even and write 0.062, 0.312, 0.812)
        (0.0625, 0.1, "Knowledge readiness score 0.063 is below minimum 0.100."),
        (0.05, 0.0625, "Knowledge readiness score 0.050 is below minimum 0.063."),
        (0.3125, 0.5, "Knowledge readiness score 0.313 is below minimum 0.500."),
        (0.8125, 0.9, "Knowledge readiness score 0.813 is below minimum 0.900."),
        # not ties: the exact binary value decides (0.0005 is slightly above 5e-4)
        (0.0005, 1, "Knowledge readiness score 0.001 is below minimum 1.000."),
        (0.0, 0.7, "Knowledge readiness score 0.000 is below minimum 0.700."),
        (0.6999, 0.7, "Knowledge readiness score 0.700 is below minimum 0.700."),
        (2 / 3, 0.75, "Knowledge readiness score 0.667 is below minimum 0.750."),
    ],
)
def test_caveat_sentence_is_formatted_as_to_fixed_3(
    score: float, minimum: float, sentence: str
) -> None:
    decision = decide_knowledge_readiness(report_with(score), minimum_score=minimum)
    assert decision.status == "caveat"
    assert decision.reason == sentence


def test_at_or_above_the_minimum_is_ready_with_the_report_reason() -> None:
    report = report_with(0.7)
    decision = decide_knowledge_readiness(report)
    assert decision.passed is True
    assert decision.status == "ready"
    assert decision.reason == "1 non-blocking knowledge gap(s) remain."
    carried(decision, report)
    full = score_knowledge_readiness("t1", [req("a", current_confidence=1.0)])
    ready = decide_knowledge_readiness(full)
    assert (ready.passed, ready.status) == (True, "ready")
    assert ready.reason == "All declared knowledge requirements are ready."
    assert ready.recommended_action == "run_agent"
    carried(ready, full)


def test_default_minimum_is_0_7() -> None:
    assert decide_knowledge_readiness(report_with(0.69)).status == "caveat"
    assert decide_knowledge_readiness(report_with(0.7)).status == "ready"
    assert decide_knowledge_readiness(report_with(0.69), minimum_score=None).status == "caveat"


def test_custom_minimum_both_ways() -> None:
    report = report_with(0.5)
    assert decide_knowledge_readiness(report, minimum_score=0.5).status == "ready"
    assert decide_knowledge_readiness(report, minimum_score=0).status == "ready"
    assert decide_knowledge_readiness(report, minimum_score=0.51).status == "caveat"
    assert decide_knowledge_readiness(report_with(1.0), minimum_score=1).status == "ready"


def test_no_requirements_is_ready() -> None:
    decision = decide_knowledge_readiness(score_knowledge_readiness("t1", []))
    assert decision == KnowledgeReadinessDecision(
        passed=True,
        status="ready",
        reason="All declared knowledge requirements are ready.",
        readiness_score=1.0,
        recommended_action="run_agent",
        severity="info",
        blocking_gap_ids=(),
        non_blocking_gap_ids=(),
    )


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), float("-inf"), -0.1, 1.1, 2, "0.5", True, False, [0.5]],
)
def test_a_bad_minimum_is_a_validation_error(bad: Any) -> None:
    report = report_with(0.9)
    with pytest.raises(ValidationError):
        decide_knowledge_readiness(report, minimum_score=bad)


def test_minimum_is_keyword_only_and_the_report_is_checked() -> None:
    with pytest.raises(TypeError):
        decide_knowledge_readiness(report_with(0.9), 0.5)  # type: ignore[misc]
    with pytest.raises(ValidationError):
        decide_knowledge_readiness({"readinessScore": 0.9})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        decide_knowledge_readiness(None)  # type: ignore[arg-type]


def test_decision_wire_form() -> None:
    report = report_with(0.65, blocking_gaps=(), non_blocking_gaps=(req("a"), req("b")))
    decision = decide_knowledge_readiness(report)
    wire = decision.to_dict()
    assert wire == {
        "passed": False,
        "status": "caveat",
        "reason": "Knowledge readiness score 0.650 is below minimum 0.700.",
        "readinessScore": 0.65,
        "recommendedAction": "continue_with_caveat",
        "severity": "info",
        "blockingGapIds": [],
        "nonBlockingGapIds": ["a", "b"],
    }
    assert KnowledgeReadinessDecision.from_dict(wire) == decision
