"""Intent rules and profiles given the wrong shapes: typed errors, never a crash or a silent
misconfiguration."""

from __future__ import annotations

from typing import Any

import pytest

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.intent import ClassifyIntentOptions, IntentRule, classify_intent
from agent_runtime.profiles import AgentProfile, TurnProfileOverlay, compose_turn_profile


def test_rules_given_lists_work_like_tuples() -> None:
    rule = IntentRule("billing", keywords=["invoice", "refund"], patterns=[r"\binv-\d+"])  # type: ignore[arg-type]
    result = classify_intent("refund inv-42", ClassifyIntentOptions(intents=(rule,)))
    assert result.intent == "billing" and result.scores["billing"] == 2


@pytest.mark.parametrize(
    "rule",
    [
        IntentRule("x", keywords="invoice"),  # type: ignore[arg-type]
        IntentRule("x", keywords=("",)),
        IntentRule("x", keywords=("  ",)),
        IntentRule("x", keywords=(1,)),  # type: ignore[arg-type]
        IntentRule("x", patterns=(None,)),  # type: ignore[arg-type]
        IntentRule("x", patterns=r"\d+"),  # type: ignore[arg-type]
    ],
)
def test_malformed_rules_are_typed(rule: IntentRule) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        classify_intent("text", ClassifyIntentOptions(intents=(rule,)))
    assert info.value.path.startswith("intents[0]")


@pytest.mark.parametrize("min_score", [float("nan"), -1, "1"])
def test_bad_min_score_is_typed(min_score: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        classify_intent("hello", ClassifyIntentOptions(min_score=min_score))


@pytest.mark.parametrize(
    "call",
    [
        lambda: AgentProfile.from_dict({}),
        lambda: AgentProfile.from_dict({"instructions": "be brief"}),
        lambda: compose_turn_profile({"tools": ["search"]}),
        lambda: compose_turn_profile({"name": "p"}, {"tools": "search"}),
        lambda: compose_turn_profile({"name": "p"}, ["tools"]),
        lambda: compose_turn_profile(42),
        lambda: TurnProfileOverlay.from_dict({"metadata": [1]}),
    ],
)
def test_malformed_profiles_are_typed(call: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        call()
