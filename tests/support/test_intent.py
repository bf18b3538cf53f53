"""The intent router of ORIGINAL §14: matchers on subagent metadata, weights, 1.5 per pattern,
minimum scores, first wins on a tie, skip and filter, and what `evaluated` reports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_runtime import ClassifyIntentOptions, ValidationError, classify_intent


def sub(matchers: Any = None, *, key: str = "matchers", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = dict(extra)
    if matchers is not None:
        meta[key] = matchers
    return {"description": "d", "prompt": "p", "metadata": meta}


def profile(**subagents: dict[str, Any]) -> dict[str, Any]:
    return {"name": "p", "subagents": subagents}


def test_keywords_are_case_insensitive_substrings() -> None:
    p = profile(tax=sub({"keywords": ["VAT", "deduct"]}))
    r = classify_intent(p, "Can I deduct my vat?")
    assert r.id == "tax" and r.score == 2
    assert r.subagent is p["subagents"]["tax"]
    assert r.evaluated["tax"] == {"keywordHits": 2, "patternHits": 0, "minScore": 1}


def test_empty_keywords_never_hit() -> None:
    r = classify_intent(profile(a=sub({"keywords": ["", "x"]})), "abc")
    assert r.evaluated["a"]["keywordHits"] == 0 and r.id is None


def test_pattern_scores_one_and_a_half_and_counts_once() -> None:
    p = profile(code=sub({"patterns": [r"\bdef\b"]}))
    r = classify_intent(p, "def a(): pass\ndef b(): pass")
    assert r.score == 1.5 and r.evaluated["code"]["patternHits"] == 1


def test_string_patterns_are_case_insensitive_compiled_ones_used_as_given() -> None:
    p = profile(a=sub({"patterns": ["HELLO"]}), b=sub({"patterns": [re.compile("HELLO")]}))
    r = classify_intent(p, "hello")
    assert r.scores == {"a": 1.5, "b": 0}


def test_weight_multiplies_keywords_and_patterns() -> None:
    p = profile(a=sub({"keywords": ["x"], "patterns": ["y"], "weight": 2}))
    assert classify_intent(p, "x y").score == 1 * 2 + 1 * 1.5 * 2


def test_matcher_block_list_merges_and_drops_weights() -> None:
    blocks = [
        {"keywords": ["alpha"], "weight": 10, "minScore": 5},
        {"patterns": ["beta"], "minScore": 2},
    ]
    r = classify_intent(profile(a=sub(blocks)), "alpha beta")
    assert r.scores["a"] == 1 + 1.5  # weights dropped
    assert r.evaluated["a"]["minScore"] == 2  # the last minScore wins
    assert r.id == "a"


def test_matcher_singular_key_is_read_when_matchers_is_absent() -> None:
    r = classify_intent(profile(a=sub({"keywords": ["go"]}, key="matcher")), "go now")
    assert r.id == "a"


def test_min_score_gates_a_match() -> None:
    p = profile(a=sub({"keywords": ["x"], "minScore": 2}))
    r = classify_intent(p, "x")
    assert r.id is None and r.subagent is None and r.score == 0 and r.scores == {"a": 1}


def test_default_min_score_applies_without_one() -> None:
    p = profile(a=sub({"keywords": ["x"]}))
    assert classify_intent(p, "x", ClassifyIntentOptions(default_min_score=2)).id is None
    assert classify_intent(p, "x", ClassifyIntentOptions(default_min_score=1)).id == "a"


def test_highest_score_wins_and_first_wins_a_tie() -> None:
    p = profile(
        first=sub({"keywords": ["a"]}),
        second=sub({"keywords": ["a"]}),
        third=sub({"keywords": ["a", "b"]}),
    )
    assert classify_intent(p, "a").id == "first"
    assert classify_intent(p, "a b").id == "third"


def test_no_matcher_scores_zero_with_the_default_minimum() -> None:
    p = profile(a=sub(), b=sub({"weight": 3}))  # a weight alone is not a valid matcher
    r = classify_intent(p, "anything", ClassifyIntentOptions(default_min_score=4))
    assert r.scores == {"a": 0, "b": 0}
    assert r.evaluated["a"] == {"keywordHits": 0, "patternHits": 0, "minScore": 4}


def test_skip_and_filter_leave_subagents_unevaluated() -> None:
    p = profile(a=sub({"keywords": ["x"]}), b=sub({"keywords": ["x"]}), c=sub({"keywords": ["x"]}))
    opts = ClassifyIntentOptions(skip=("a",), filter=lambda s, sid: sid != "b")
    r = classify_intent(p, "x", opts)
    assert r.id == "c" and set(r.evaluated) == {"c"}


def test_a_profile_without_subagents_matches_nothing() -> None:
    r = classify_intent({"name": "p"}, "x")
    assert (r.id, r.score, r.scores, r.evaluated) == (None, 0, {}, {})
    assert r.to_dict() == {"id": None, "subagent": None, "score": 0, "scores": {}, "evaluated": {}}


def test_bad_arguments_are_validation_errors() -> None:
    with pytest.raises(ValidationError):
        classify_intent([], "x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        classify_intent(profile(), 3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ClassifyIntentOptions(skip="abc")  # type: ignore[arg-type]


def test_an_invalid_pattern_string_does_not_crash() -> None:
    r = classify_intent(profile(a=sub({"patterns": ["(unclosed"], "keywords": ["ok"]})), "ok")
    assert r.id == "a" and r.evaluated["a"]["patternHits"] == 0


@given(st.text(max_size=200), st.lists(st.text(max_size=10), max_size=5))
def test_any_message_and_keywords_classify_without_error(message: str, words: list[str]) -> None:
    r = classify_intent(profile(a=sub({"keywords": words})), message)
    assert r.scores["a"] == sum(1 for w in words if w and w.lower() in message.lower())
