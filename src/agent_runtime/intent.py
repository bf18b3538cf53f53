"""A transparent intent classifier: keyword and pattern rules with weights, no model.

Every point of score comes with a reason (`keyword 'refactor' -> code (+1)`), so a routing
decision can be explained and the rules tuned by reading them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import InvalidArgumentError

__all__ = [
    "DEFAULT_INTENT_RULES",
    "ClassifyIntentOptions",
    "ClassifyIntentResult",
    "IntentRule",
    "classify_intent",
]


@dataclass(frozen=True, slots=True)
class IntentRule:
    """An intent and its evidence: keywords/phrases (whole words, case-insensitive) and
    regular expressions; each distinct match adds `weight` to the intent's score."""

    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    weight: float = 1.0

    def __post_init__(self) -> None:
        # lists are accepted as written; the rule stays hashable (compiled rules are cached)
        for name in ("keywords", "patterns"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))


def _kw(phrases: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in phrases.split("|"))


DEFAULT_INTENT_RULES: tuple[IntentRule, ...] = (
    IntentRule(
        "code",
        keywords=_kw(
            "code|function|bug|stack trace|traceback|refactor|compile|exception|regex|python|"
            "typescript|javascript|sql|unit test|api|class|method|debug"
        ),
        patterns=(r"```", r"\b\w+\(\)", r"\b[\w/]+\.(?:py|ts|js|go|rs|java|sql)\b"),
    ),
    IntentRule(
        "data_analysis",
        keywords=_kw(
            "analyze|analyse|analysis|chart|csv|dataset|average|median|trend|plot|statistics|"
            "spreadsheet|correlation|forecast"
        ),
    ),
    IntentRule(
        "research",
        keywords=_kw("search|find|look up|latest|news|sources|compare|research"),
    ),
    IntentRule(
        "action",
        keywords=_kw("create|schedule|send|book|remind|deploy|cancel|order|email|set up"),
    ),
    IntentRule(
        "question",
        keywords=_kw("what|why|how|when|who|which|explain|can you"),
        patterns=(r"\?\s*$",),
        weight=0.5,
    ),
    IntentRule(
        "greeting",
        keywords=_kw("hi|hello|hey|good morning|good evening|thanks|thank you"),
    ),
)


@dataclass(frozen=True, slots=True)
class ClassifyIntentOptions:
    """The rules (earlier rules win ties), the fallback intent and the score it takes to win."""

    intents: tuple[IntentRule, ...] = DEFAULT_INTENT_RULES
    default_intent: str = "chat"
    min_score: float = 1.0


@dataclass(frozen=True, slots=True)
class ClassifyIntentResult:
    """The winning intent, a 0..1 confidence (share of the evidence, damped when thin) and
    the reasons that produced the score; `scores` has every intent's total."""

    intent: str
    confidence: float
    reasons: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "scores": dict(self.scores),
        }


@lru_cache(maxsize=256)
def _compile(rule: IntentRule) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for kw in rule.keywords:
        words = r"\s+".join(re.escape(w) for w in kw.split())
        compiled.append((f"keyword {kw!r}", re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)))
    for i, pattern in enumerate(rule.patterns):
        try:
            compiled.append((f"pattern {pattern!r}", re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise InvalidArgumentError(
                f"bad regular expression: {exc}", path=f"intents[{rule.name}].patterns[{i}]"
            ) from None
    return tuple(compiled)


def _check_options(options: Any) -> ClassifyIntentOptions:
    if options is None:
        return ClassifyIntentOptions()
    if not isinstance(options, ClassifyIntentOptions):
        raise InvalidArgumentError("must be ClassifyIntentOptions", path="options")
    names: set[str] = set()
    for i, rule in enumerate(options.intents):
        if not isinstance(rule, IntentRule) or not isinstance(rule.name, str) or not rule.name:
            raise InvalidArgumentError("must be an IntentRule with a name", path=f"intents[{i}]")
        if rule.name in names:
            raise InvalidArgumentError(f"duplicate intent {rule.name!r}", path=f"intents[{i}]")
        if not isinstance(rule.weight, int | float) or not rule.weight > 0:
            raise InvalidArgumentError("must be > 0", path=f"intents[{i}].weight")
        for field_name in ("keywords", "patterns"):
            values = getattr(rule, field_name)
            if not isinstance(values, tuple):
                raise InvalidArgumentError(
                    "must be a tuple of strings", path=f"intents[{i}].{field_name}"
                )
            for j, value in enumerate(values):
                if not isinstance(value, str) or not value.strip():
                    raise InvalidArgumentError(
                        "must be a non-blank string", path=f"intents[{i}].{field_name}[{j}]"
                    )
        names.add(rule.name)
    score = options.min_score
    if type(score) not in (int, float) or not math.isfinite(score) or score < 0:
        raise InvalidArgumentError("must be a finite number >= 0", path="min_score")
    return options


def classify_intent(
    text: str, options: ClassifyIntentOptions | None = None
) -> ClassifyIntentResult:
    """Score `text` against each rule; the best score at or above `min_score` wins, else the
    default intent (confidence 0 when nothing matched at all)."""
    if not isinstance(text, str):
        raise InvalidArgumentError("must be a string", path="text")
    opts = _check_options(options)
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    for rule in opts.intents:
        score = 0.0
        for label, regex in _compile(rule):
            if regex.search(text):
                score += rule.weight
                reasons.setdefault(rule.name, []).append(
                    f"{label} -> {rule.name} (+{rule.weight:g})"
                )
        scores[rule.name] = score
    ranked = sorted(opts.intents, key=lambda r: -scores[r.name])  # stable: rule order breaks ties
    top = ranked[0].name if ranked else None
    top_score = scores[top] if top is not None else 0.0
    if top is None or top_score < opts.min_score:
        total = sum(scores.values())
        why = [f"no intent reached {opts.min_score:g}; default {opts.default_intent!r}"]
        for rule in ranked:
            why.extend(reasons.get(rule.name, ()))
        confidence = 0.0 if total == 0 else round(1.0 / (1.0 + total), 4)
        return ClassifyIntentResult(opts.default_intent, confidence, tuple(why), scores)
    second = scores[ranked[1].name] if len(ranked) > 1 else 0.0
    # share of the evidence against the runner-up, damped by +1 so one hit is not certainty
    confidence = round(top_score / (top_score + second + 1.0), 4)
    return ClassifyIntentResult(top, confidence, tuple(reasons[top]), scores)
