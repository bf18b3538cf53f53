"""Knowledge readiness as agent-eval scores it (ORIGINAL §4.3): the weighted score, expiry,
confidence clamping, which gaps block, severity, the three reason sentences, the recommended
action and its precedence, the questions, the acquisition plans and the `knowledge-ready` eval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agent_runtime import (
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    ValidationError,
    acquisition_plans_for_knowledge_gaps,
    blocking_knowledge_eval,
    score_knowledge_readiness,
    user_questions_for_knowledge_gaps,
)
from agent_runtime.eval import KnowledgeBundle, is_blocking, is_expired, is_missing

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

#: a gap that neither blocks nor asks: only its acquisition mode decides the action
QUIET: dict[str, Any] = {"fallback_policy": "continue_with_caveat", "importance": "medium"}


def req(rid: str, **kw: Any) -> KnowledgeRequirement:
    """A requirement; missing by default (confidence 0 of 0.7 needed)."""
    return KnowledgeRequirement(id=rid, description=f"the {rid}", **kw)


def ready(rid: str, **kw: Any) -> KnowledgeRequirement:
    """A requirement known well enough."""
    return req(rid, current_confidence=1.0, **kw)


def score(*reqs: KnowledgeRequirement, **kw: Any) -> KnowledgeReadinessReport:
    return score_knowledge_readiness("t1", reqs, now=NOW, **kw)


def report_with(readiness_score: float, **kw: Any) -> KnowledgeReadinessReport:
    fields: dict[str, Any] = {
        "task_id": "t1",
        "readiness_score": readiness_score,
        "recommended_action": "run_agent",
        "severity": "info",
        "reason": "All declared knowledge requirements are ready.",
    }
    fields.update(kw)
    return KnowledgeReadinessReport(**fields)


# --- the score ---------------------------------------------------------------------------------


def test_worked_example_weights_8_4_2_1() -> None:
    report = score(
        # blocking, half as sure as needed: 0.5 x 8 = 4
        req("a", importance="blocking", confidence_needed=0.8, current_confidence=0.4),
        # high, surer than needed (capped at 1): 1 x 4 = 4
        req("b", importance="high", confidence_needed=0.5, current_confidence=1.0),
        # medium, fully known but expired: 0 x 2 = 0
        ready("c", importance="medium", valid_until="2025-12-31T00:00:00Z"),
        # low, nothing needed: 1 x 1 = 1
        req("d", importance="low", confidence_needed=0.0),
    )
    assert report.readiness_score == 9 / 15
    assert report.blocking_gap_ids == ("a",)
    assert report.non_blocking_gap_ids == ("c",)


@pytest.mark.parametrize(
    ("importance", "weight"), [("blocking", 8), ("high", 4), ("medium", 2), ("low", 1)]
)
def test_each_importance_weight(importance: str, weight: int) -> None:
    # one unknown requirement of that importance beside one known `low` (weight 1)
    report = score(req("x", importance=importance), ready("y", importance="low"))
    assert report.readiness_score == 1 / (weight + 1)


def test_no_requirements_scores_one_and_runs() -> None:
    report = score_knowledge_readiness("t1", [])
    assert report.readiness_score == 1.0
    assert report.recommended_action == "run_agent"
    assert report.severity == "info"
    assert report.reason == "All declared knowledge requirements are ready."
    assert report.blocking_gaps == () and report.non_blocking_gaps == ()
    assert report.task_id == "t1" and report.metadata is None


def test_partial_confidence_scores_the_ratio() -> None:
    report = score(req("a", importance="low", confidence_needed=0.8, current_confidence=0.2))
    assert report.readiness_score == pytest.approx(0.25)


def test_confidence_needed_zero_or_less_scores_one() -> None:
    for needed in (0.0, -0.3):
        report = score(req("a", confidence_needed=needed, current_confidence=0.0))
        assert report.readiness_score == 1.0
        assert report.non_blocking_gaps == () and report.blocking_gaps == ()


def test_expired_scores_zero_even_with_nothing_needed() -> None:
    report = score(req("a", confidence_needed=0.0, valid_until="2025-01-01T00:00:00Z"))
    assert report.readiness_score == 0.0
    assert report.non_blocking_gap_ids == ("a",)


# --- clamping ----------------------------------------------------------------------------------


def test_current_confidence_below_zero_is_clamped_to_zero() -> None:
    # unclamped, -0.5 / 0.5 would score -1 and drag the mean below 0
    report = score(req("a", importance="low", confidence_needed=0.5, current_confidence=-0.5))
    assert report.readiness_score == 0.0


def test_current_confidence_above_one_is_clamped_to_one() -> None:
    # 1.5 counts as 1: with 0.8 needed the ratio is capped at 1 either way, but a needed
    # confidence above 1 shows the clamp on the other side
    report = score(
        req("a", importance="low", confidence_needed=0.8, current_confidence=1.5),
        req("b", importance="low", confidence_needed=1.5, current_confidence=1.5),
    )
    assert report.readiness_score == 1.0
    assert report.non_blocking_gaps == ()


def test_confidence_needed_above_one_is_clamped_to_one() -> None:
    # unclamped, 0.75 / 1.5 = 0.5; clamped, 0.75 / 1 = 0.75 (and still missing: 0.75 < 1)
    report = score(req("a", importance="low", confidence_needed=1.5, current_confidence=0.75))
    assert report.readiness_score == 0.75
    assert report.non_blocking_gap_ids == ("a",)
    # fully known satisfies a need above 1 (unclamped, 1 < 2 would be missing at 0.5)
    known = score(req("b", importance="low", confidence_needed=2.0, current_confidence=1.0))
    assert known.readiness_score == 1.0 and known.non_blocking_gaps == ()


def test_confidence_needed_below_zero_is_clamped_to_zero() -> None:
    # unclamped, -1 < -0.5 would make this a gap
    r = req("a", confidence_needed=-0.5, current_confidence=-1.0)
    assert not is_missing(r, NOW)
    assert score(r).non_blocking_gaps == ()


# --- missing, expiry ---------------------------------------------------------------------------


def test_missing_versus_present() -> None:
    at_need = req("a", confidence_needed=0.6, current_confidence=0.6)
    below = req("b", confidence_needed=0.6, current_confidence=0.59)
    assert not is_missing(at_need, NOW)
    assert is_missing(below, NOW)
    report = score(at_need, below)
    assert report.non_blocking_gap_ids == ("b",)
    assert report.bundle.missing == ("b",)


@pytest.mark.parametrize(
    ("valid_until", "expired"),
    [
        ("2026-01-01T12:00:00Z", True),  # exactly now
        ("2026-01-01T11:59:59Z", True),  # before now
        ("2026-01-01T12:00:00.001Z", False),  # a millisecond later
        ("2026-01-02T00:00:00Z", False),
        ("2026-01-01T13:00:00+01:00", True),  # now, with an offset
        ("2026-01-01T07:00:00-05:00", True),
        ("2026-01-01T13:00:01+01:00", False),
        ("2026-01-01T06:59:59-05:00", True),
        ("not a date", True),  # unparsable counts as expired
        ("", True),
        ("2026-13-01T00:00:00Z", True),
    ],
)
def test_expiry(valid_until: str, expired: bool) -> None:
    r = ready("a", valid_until=valid_until)
    assert is_expired(r, NOW) is expired
    report = score(r)
    assert report.readiness_score == (0.0 if expired else 1.0)
    assert report.non_blocking_gap_ids == (("a",) if expired else ())


def test_no_valid_until_never_expires() -> None:
    assert not is_expired(ready("a"), NOW)


def test_expiry_uses_the_wall_clock_by_default() -> None:
    report = score_knowledge_readiness(
        "t1",
        [
            ready("old", valid_until="2000-01-01T00:00:00Z"),
            ready("new", valid_until="2999-01-01T00:00:00Z"),
        ],
    )
    assert report.non_blocking_gap_ids == ("old",)


# --- blocking, severity, reason ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"importance": "blocking", "fallback_policy": "continue_with_caveat"},
        {"importance": "low", "fallback_policy": "block"},
        {"importance": "low", "fallback_policy": "infer", "sensitivity": "secret"},
    ],
    ids=["importance", "fallback_block", "secret"],
)
def test_what_makes_a_missing_requirement_blocking(kw: dict[str, Any]) -> None:
    r = req("a", **kw)
    assert is_blocking(r)
    report = score(r)
    assert report.blocking_gap_ids == ("a",) and report.non_blocking_gaps == ()
    assert report.severity == "critical"
    # the same requirement, known, is no gap at all
    assert score(ready("a", **kw)).blocking_gaps == ()


def test_a_missing_requirement_with_none_of_those_does_not_block() -> None:
    for sensitivity in ("public", "internal", "confidential"):
        for fallback in ("ask", "continue_with_caveat", "infer"):
            r = req("a", importance="high", fallback_policy=fallback, sensitivity=sensitivity)
            assert not is_blocking(r)
            assert score(r).non_blocking_gap_ids == ("a",)


def test_severity() -> None:
    assert score(req("a", importance="blocking"), req("b", importance="high")).severity == (
        "critical"
    )
    assert score(req("a", importance="high"), req("b", importance="low")).severity == "warning"
    assert score(req("a", importance="medium"), req("b", importance="low")).severity == "info"
    assert score(ready("a", importance="high")).severity == "info"


def test_the_three_reason_sentences() -> None:
    blocking = score(
        req("a", importance="blocking"), req("b", fallback_policy="block"), req("c", **QUIET)
    )
    assert blocking.reason == "2 blocking knowledge requirement(s) are missing."
    one = score(req("a", importance="blocking"))
    assert one.reason == "1 blocking knowledge requirement(s) are missing."
    gaps = score(req("a", **QUIET), req("b", **QUIET), req("c", **QUIET), ready("d"))
    assert gaps.reason == "3 non-blocking knowledge gap(s) remain."
    assert score(ready("a"), ready("b")).reason == "All declared knowledge requirements are ready."


def test_gaps_keep_the_declared_order_and_the_bundle_records_them() -> None:
    reqs = (
        req("z", **QUIET, evidence_ids=("e1", "e2")),
        req("y", importance="blocking", evidence_ids=("e2", "e3")),
        ready("x", evidence_ids=("e1",)),
        req("w", **QUIET),
    )
    report = score(*reqs, metadata={"domain": "tax"})
    assert report.blocking_gap_ids == ("y",)
    assert report.non_blocking_gap_ids == ("z", "w")
    assert report.bundle == KnowledgeBundle(
        requirements=reqs, evidence_ids=("e1", "e2", "e3"), missing=("y", "z", "w")
    )
    assert report.metadata == {"domain": "tax"}


# --- the recommended action --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "action"),
    [
        ({"acquisition_mode": "ask_user"}, "ask_user"),
        ({"acquisition_mode": "query_connectors", "fallback_policy": "ask"}, "ask_user"),
        ({"acquisition_mode": "query_connectors"}, "query_connectors"),
        ({"acquisition_mode": "inspect_repo"}, "inspect_repo"),
        ({"acquisition_mode": "run_command"}, "inspect_repo"),
        ({"acquisition_mode": "collect_web_data"}, "collect_web_data"),
        ({"acquisition_mode": "not_available"}, "abort_or_rescope"),
        ({"acquisition_mode": "infer_low_confidence", "importance": "high"}, "build_domain_wiki"),
        ({"acquisition_mode": "infer_low_confidence"}, "continue_with_caveat"),
    ],
    ids=[
        "ask_user_by_mode",
        "ask_user_by_fallback",
        "query_connectors",
        "inspect_repo",
        "inspect_repo_by_run_command",
        "collect_web_data",
        "abort_or_rescope",
        "build_domain_wiki",
        "continue_with_caveat",
    ],
)
def test_each_recommended_action(gap: dict[str, Any], action: str) -> None:
    report = score(req("g", **{**QUIET, **gap}), ready("known", acquisition_mode="ask_user"))
    assert report.blocking_gaps == ()
    assert report.recommended_action == action


def test_recommended_action_precedence() -> None:
    # from weakest to strongest; the strongest comes last so list order cannot decide
    gaps = [
        req("wiki", **{**QUIET, "importance": "high"}, acquisition_mode="infer_low_confidence"),
        req("na", **QUIET, acquisition_mode="not_available"),
        req("web", **QUIET, acquisition_mode="collect_web_data"),
        req("cmd", **QUIET, acquisition_mode="run_command"),
        req("conn", **QUIET, acquisition_mode="query_connectors"),
        req("ask", **QUIET, acquisition_mode="ask_user"),
    ]
    expected = [
        "ask_user",
        "query_connectors",
        "inspect_repo",
        "collect_web_data",
        "abort_or_rescope",
        "build_domain_wiki",
    ]
    for action in expected:
        assert score(*gaps).recommended_action == action
        gaps.pop()
    assert gaps == []
    assert score(*gaps).recommended_action == "run_agent"


def test_recommended_action_looks_at_blocking_gaps_first() -> None:
    blocking = req(
        "b", importance="blocking", acquisition_mode="collect_web_data", fallback_policy="block"
    )
    asks = req("n", **QUIET, acquisition_mode="ask_user")
    assert score(blocking, asks).recommended_action == "collect_web_data"
    # the non-blocking gaps decide only when nothing blocks
    assert score(asks).recommended_action == "ask_user"
    assert score(ready("b", importance="blocking"), asks).recommended_action == "ask_user"


def test_known_requirements_do_not_steer_the_action() -> None:
    report = score(
        ready("a", acquisition_mode="ask_user"),
        req("b", **QUIET, acquisition_mode="query_connectors"),
    )
    assert report.recommended_action == "query_connectors"


# --- questions ---------------------------------------------------------------------------------


def test_question_fields() -> None:
    (q,) = user_questions_for_knowledge_gaps(
        [req("city", importance="high", required_for=("shipping", "tax"))]
    )
    assert q.id == "question_city"
    assert q.requirement_id == "city"
    assert q.question == "Please provide: the city"
    assert q.reason == "Required for shipping, tax."
    assert q.importance == "high"
    assert q.answer_type == "free_text"
    assert q.options is None


def test_question_reason_without_required_for() -> None:
    (q,) = user_questions_for_knowledge_gaps([req("city")])
    assert q.reason == "Required for the task."


def test_secret_gap_asks_for_a_credential() -> None:
    (q,) = user_questions_for_knowledge_gaps([req("key", sensitivity="secret")])
    assert q.answer_type == "credential"


@pytest.mark.parametrize(
    ("fallback", "impact"),
    [
        ("block", "The task cannot proceed without this."),
        ("ask", "The task waits for an answer before it proceeds."),
        ("continue_with_caveat", "The task proceeds, and its result carries a caveat."),
        ("infer", "The task proceeds on a low-confidence inference."),
    ],
)
def test_impact_if_unknown_follows_the_fallback_policy(fallback: str, impact: str) -> None:
    (q,) = user_questions_for_knowledge_gaps([req("a", fallback_policy=fallback)])
    assert q.impact_if_unknown == impact


def test_questions_only_for_gaps_the_user_can_close() -> None:
    gaps = [
        req("by_mode", acquisition_mode="ask_user", fallback_policy="block"),
        req("skip1", acquisition_mode="query_connectors", fallback_policy="block"),
        req("by_fallback", acquisition_mode="collect_web_data", fallback_policy="ask"),
        req("skip2", acquisition_mode="not_available", fallback_policy="infer"),
    ]
    qs = user_questions_for_knowledge_gaps(gaps)
    assert [q.id for q in qs] == ["question_by_mode", "question_by_fallback"]
    assert user_questions_for_knowledge_gaps([]) == ()


# --- acquisition plans -------------------------------------------------------------------------


def test_plans_grouped_by_mode_in_first_seen_order() -> None:
    gaps = [
        req("a", acquisition_mode="query_connectors", importance="low", fallback_policy="ask"),
        req("b", acquisition_mode="ask_user", importance="medium"),
        req("c", acquisition_mode="query_connectors", importance="high"),
        req("d", acquisition_mode="infer_low_confidence", importance="blocking"),
        req("e", acquisition_mode="run_command"),
        req("f", acquisition_mode="not_available", importance="blocking"),
        req("g", acquisition_mode="ask_user", importance="blocking"),
        req("h", acquisition_mode="inspect_repo", importance="low"),
    ]
    plans = acquisition_plans_for_knowledge_gaps(gaps)
    assert [p.id for p in plans] == [
        "acquire_query_connectors",
        "acquire_ask_user",
        "acquire_run_command",
        "acquire_inspect_repo",
    ]
    assert [p.mode for p in plans] == [
        "query_connectors",
        "ask_user",
        "run_command",
        "inspect_repo",
    ]
    assert [p.requirement_ids for p in plans] == [("a", "c"), ("b", "g"), ("e",), ("h",)]
    # priority is the highest importance in the group
    assert [p.priority for p in plans] == ["high", "blocking", "medium", "low"]
    assert [p.expected_evidence_count for p in plans] == [2, 2, 1, 1]
    assert all(p.description for p in plans)
    # only the ask_user plan carries questions (`a` asks by fallback, but its plan does not)
    connectors, ask, command, repo = plans
    assert [q.id for q in ask.questions] == ["question_b", "question_g"]
    assert ask.questions == user_questions_for_knowledge_gaps([gaps[1], gaps[6]])
    assert connectors.questions == () and command.questions == () and repo.questions == ()


def test_no_plan_for_inference_or_unavailable_knowledge() -> None:
    gaps = [
        req("a", acquisition_mode="infer_low_confidence"),
        req("b", acquisition_mode="not_available"),
    ]
    assert acquisition_plans_for_knowledge_gaps(gaps) == ()
    assert acquisition_plans_for_knowledge_gaps([]) == ()


@pytest.mark.parametrize(
    ("importances", "priority"),
    [(("low", "low"), "low"), (("low", "medium"), "medium"), (("medium", "high", "low"), "high")],
)
def test_plan_priority_is_the_highest_importance(
    importances: tuple[str, ...], priority: str
) -> None:
    gaps = [
        req(f"r{i}", acquisition_mode="collect_web_data", importance=imp)
        for i, imp in enumerate(importances)
    ]
    (plan,) = acquisition_plans_for_knowledge_gaps(gaps)
    assert plan.priority == priority


# --- the knowledge-ready eval ------------------------------------------------------------------


def test_knowledge_eval_passes_with_no_blocking_gap_at_the_minimum() -> None:
    result = blocking_knowledge_eval(score(ready("a"), req("b", **{**QUIET, "importance": "low"})))
    # (2 x 1 + 1 x 0) / 3 = 0.667 < 0.7 fails; a known requirement alone passes
    assert not result.passed
    passing = blocking_knowledge_eval(score(ready("a")))
    assert passing.id == "knowledge-ready"
    assert passing.passed and passing.severity == "info"
    assert passing.objective is True
    assert passing.score == 1.0


def test_knowledge_eval_default_minimum_is_0_7() -> None:
    assert blocking_knowledge_eval(report_with(0.7)).passed
    assert not blocking_knowledge_eval(report_with(0.69)).passed


def test_knowledge_eval_fails_below_the_minimum_with_the_report_severity() -> None:
    warning = score(req("a", **{**QUIET, "importance": "high"}))
    assert warning.severity == "warning" and warning.blocking_gaps == ()
    result = blocking_knowledge_eval(warning)
    assert not result.passed and result.severity == "warning"
    assert result.id == "knowledge-ready" and result.score == 0.0
    info = score(req("a", **QUIET))
    result = blocking_knowledge_eval(info)
    assert not result.passed and result.severity == "info"


def test_knowledge_eval_fails_on_a_blocking_gap_whatever_the_score() -> None:
    # blocking, 0.6 of 0.7 needed: scores 0.857 (above the minimum) and still blocks
    report = score(req("a", importance="blocking", confidence_needed=0.7, current_confidence=0.6))
    assert report.readiness_score > 0.7 and report.blocking_gaps
    result = blocking_knowledge_eval(report, 0.0)
    assert not result.passed and result.severity == "critical"


def test_knowledge_eval_custom_minimum() -> None:
    low = score(req("a", **QUIET))
    assert blocking_knowledge_eval(low, minimum_score=0.0).passed
    assert not blocking_knowledge_eval(report_with(0.99), minimum_score=1.0).passed
    assert blocking_knowledge_eval(report_with(1.0), minimum_score=1).passed


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 1.1, "0.5", True, None])
def test_knowledge_eval_refuses_a_bad_minimum(bad: Any) -> None:
    with pytest.raises(ValidationError):
        blocking_knowledge_eval(report_with(1.0), bad)


def test_knowledge_eval_refuses_a_non_report() -> None:
    with pytest.raises(ValidationError):
        blocking_knowledge_eval({"readinessScore": 1.0})  # type: ignore[arg-type]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: score_knowledge_readiness(1, []),  # type: ignore[arg-type]
        lambda: score_knowledge_readiness("t", "abc"),  # type: ignore[arg-type]
        lambda: score_knowledge_readiness("t", [{"id": "a"}]),  # type: ignore[list-item]
        lambda: score_knowledge_readiness("t", {"a": req("a")}),  # type: ignore[arg-type]
        lambda: score_knowledge_readiness("t", [], metadata=[("a", 1)]),  # type: ignore[arg-type]
        lambda: score_knowledge_readiness("t", None),  # type: ignore[arg-type]
        lambda: user_questions_for_knowledge_gaps("abc"),  # type: ignore[arg-type]
        lambda: acquisition_plans_for_knowledge_gaps([{"id": "a"}]),  # type: ignore[list-item]
    ],
)
def test_bad_input_is_a_validation_error(call: Any) -> None:
    with pytest.raises(ValidationError):
        call()


def test_report_round_trips_through_its_wire_form() -> None:
    report = score(
        req("a", importance="blocking", required_for=("x",), valid_until="2027-01-01T00:00:00Z"),
        req("b", **QUIET, evidence_ids=("e1",)),
        ready("c"),
        metadata={"domain": "tax", "n": [1, 2]},
    )
    wire = report.to_dict()
    assert KnowledgeReadinessReport.from_dict(wire) == report
    assert wire["readinessScore"] == report.readiness_score
    assert [g["id"] for g in wire["blockingGaps"]] == ["a"]
    assert wire["bundle"]["missing"] == ["a", "b"]
