"""decide_knowledge_readiness: every outcome and its reasons."""

from __future__ import annotations

import pytest

from agent_runtime import (
    ConfigurationError,
    EventParseError,
    KnowledgeReadinessDecision,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    decide_knowledge_readiness,
)

CITY = KnowledgeRequirement("city", "the user's city", source="user", question="Which city?")
ORDERS = KnowledgeRequirement("orders", "recent orders", source="data", data_source="crm")
PLAN = KnowledgeRequirement("plan", "subscription plan", source="either", data_source="billing")
LANG = KnowledgeRequirement("lang", "preferred language", required=False)


def test_no_requirements_is_ready() -> None:
    d = decide_knowledge_readiness(None, [])
    assert d.outcome == "ready" and d.ready and d.reasons == ()


def test_all_available_is_ready() -> None:
    report = KnowledgeReadinessReport(available=("city", "orders"))
    d = decide_knowledge_readiness(report, [CITY, ORDERS])
    assert d.ready and d.satisfied == ("city", "orders") and d.missing == ()


def test_user_knowledge_missing_asks_user() -> None:
    d = decide_knowledge_readiness(KnowledgeReadinessReport(), [CITY])
    assert d.outcome == "ask_user"
    assert [(q.requirement_key, q.question) for q in d.questions] == [("city", "Which city?")]
    assert d.acquisition_plan is None


def test_data_missing_gives_acquisition_plan() -> None:
    d = decide_knowledge_readiness(None, [ORDERS, PLAN])
    assert d.outcome == "acquire_data"
    assert [(s.requirement_key, s.source) for s in d.acquisition_plan.steps] == [
        ("orders", "crm"),
        ("plan", "billing"),
    ]


def test_unavailable_source_falls_back_to_user_or_blocks() -> None:
    report = KnowledgeReadinessReport(unavailable_sources=("billing", "crm"))
    d = decide_knowledge_readiness(report, [PLAN])
    assert d.outcome == "ask_user" and d.questions[0].requirement_key == "plan"
    assert "unavailable" in d.reasons[0]
    d2 = decide_knowledge_readiness(report, [ORDERS, PLAN])
    assert d2.outcome == "blocked"
    assert any("'orders' cannot be obtained" in r for r in d2.reasons)


def test_precedence_ask_user_over_acquire_data() -> None:
    d = decide_knowledge_readiness(None, [ORDERS, CITY])
    assert d.outcome == "ask_user"
    assert d.acquisition_plan is not None and len(d.questions) == 1


def test_optional_missing_does_not_hold_the_task() -> None:
    d = decide_knowledge_readiness(None, [LANG])
    assert d.ready and d.missing == ("lang",) and "optional" in d.reasons[0]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        decide_knowledge_readiness(None, [CITY, CITY])
    with pytest.raises(ConfigurationError):
        decide_knowledge_readiness({"available": []}, [CITY])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KnowledgeRequirement("", "x")
    with pytest.raises(ConfigurationError):
        KnowledgeRequirement("k", "x", source="oracle")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KnowledgeReadinessReport(available="city")  # type: ignore[arg-type]


def test_decision_and_report_round_trip() -> None:
    d = decide_knowledge_readiness(None, [ORDERS, CITY, LANG])
    assert KnowledgeReadinessDecision.from_dict(d.to_dict()) == d
    r = KnowledgeReadinessReport(available=("a",), notes=("n",), internal={"score": 0.4})
    assert KnowledgeReadinessReport.from_dict(r.to_dict()) == r
    assert KnowledgeRequirement.from_dict(PLAN.to_dict()) == PLAN
    with pytest.raises(EventParseError):
        KnowledgeReadinessDecision.from_dict({"outcome": "ready", "questions": "no"})
