"""The intent router (ORIGINAL §14): pick a profile's subagent for a message from the keyword
and pattern matchers on `subagent.metadata.matchers`. Pure; no model call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from .errors import ValidationError

__all__ = [
    "ClassifyIntentOptions",
    "ClassifyIntentResult",
    "SubagentMatcher",
    "classify_intent",
]

SubagentMatcher = Mapping[str, Any]
"""`{keywords?, patterns?, weight?, minScore?}` as it sits on a subagent's metadata."""

_PATTERN_WEIGHT = 1.5


@dataclass(frozen=True, slots=True)
class ClassifyIntentOptions:
    """`default_min_score` for matchers without one; `skip` ids; `filter(subagent, id)`."""

    default_min_score: float = 1
    skip: tuple[str, ...] = ()
    filter: Callable[[Mapping[str, Any], str], bool] | None = None

    def __post_init__(self) -> None:
        if type(self.default_min_score) not in (int, float):
            raise ValidationError("ClassifyIntentOptions.default_min_score must be a number")
        if isinstance(self.skip, str) or not all(isinstance(s, str) for s in self.skip):
            raise ValidationError("ClassifyIntentOptions.skip must be a list of ids")
        object.__setattr__(self, "skip", tuple(self.skip))
        if self.filter is not None and not callable(self.filter):
            raise ValidationError("ClassifyIntentOptions.filter must be callable")


@dataclass(frozen=True, slots=True)
class ClassifyIntentResult:
    """The chosen subagent (`id`/`subagent`, None when nothing matched), its `score`, every
    evaluated subagent's score and `{keywordHits, patternHits, minScore}`."""

    id: str | None
    subagent: Mapping[str, Any] | None
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    evaluated: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subagent": self.subagent,
            "score": self.score,
            "scores": dict(self.scores),
            "evaluated": {k: dict(v) for k, v in self.evaluated.items()},
        }


def _is_number(v: Any) -> TypeGuard[int | float]:
    return type(v) in (int, float)


def _list(v: Any) -> list[Any] | None:
    return list(v) if isinstance(v, Sequence) and not isinstance(v, str | bytes) else None


def _valid(block: Any) -> bool:
    return isinstance(block, Mapping) and (
        _list(block.get("keywords")) is not None
        or _list(block.get("patterns")) is not None
        or _is_number(block.get("minScore"))
    )


def _matcher(subagent: Mapping[str, Any]) -> dict[str, Any] | None:
    """The subagent's matcher: `metadata.matchers`, else `metadata.matcher`; a list of blocks
    merges (keywords and patterns concatenated, the last `minScore` wins, weights dropped)."""
    meta = subagent.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    raw = meta.get("matchers")
    if raw is None:
        raw = meta.get("matcher")
    blocks = _list(raw)
    if blocks is None:
        return dict(raw) if isinstance(raw, Mapping) and _valid(raw) else None
    merged: dict[str, Any] = {"keywords": [], "patterns": []}
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        merged["keywords"] += _list(block.get("keywords")) or []
        merged["patterns"] += _list(block.get("patterns")) or []
        if _is_number(block.get("minScore")):
            merged["minScore"] = block["minScore"]
    return merged if _valid(merged) else None


def _pattern_hit(pattern: Any, message: str) -> bool:
    if isinstance(pattern, re.Pattern):
        return pattern.search(message) is not None
    if isinstance(pattern, str):
        try:
            return re.search(pattern, message, re.IGNORECASE) is not None
        except re.error:
            return False
    return False


def classify_intent(
    profile: Mapping[str, Any], message: str, options: ClassifyIntentOptions | None = None
) -> ClassifyIntentResult:
    """Score each of `profile["subagents"]` (in insertion order) against `message`:
    keyword hits * weight + pattern hits * 1.5 * weight; the highest score at or above its
    matcher's `minScore` wins, the first on a tie."""
    if not isinstance(profile, Mapping):
        raise ValidationError("classify_intent: profile must be an object")
    if not isinstance(message, str):
        raise ValidationError("classify_intent: message must be a string")
    opts = options if options is not None else ClassifyIntentOptions()
    if not isinstance(opts, ClassifyIntentOptions):
        raise ValidationError("classify_intent: options must be ClassifyIntentOptions")
    subagents = profile.get("subagents")
    scores: dict[str, float] = {}
    evaluated: dict[str, dict[str, float]] = {}
    best_id: str | None = None
    best: Mapping[str, Any] | None = None
    best_score: float = 0
    lowered = message.lower()
    if not isinstance(subagents, Mapping):
        return ClassifyIntentResult(None, None, 0, scores, evaluated)
    for sid, subagent in subagents.items():
        if not isinstance(subagent, Mapping) or sid in opts.skip:
            continue
        if opts.filter is not None and not opts.filter(subagent, sid):
            continue
        matcher = _matcher(subagent)
        if matcher is None:
            scores[sid] = 0
            evaluated[sid] = {
                "keywordHits": 0,
                "patternHits": 0,
                "minScore": opts.default_min_score,
            }
            continue
        keyword_hits = sum(
            1
            for k in _list(matcher.get("keywords")) or []
            if isinstance(k, str) and k and k.lower() in lowered
        )
        pattern_hits = sum(
            1 for p in _list(matcher.get("patterns")) or [] if _pattern_hit(p, message)
        )
        weight = matcher.get("weight")
        w = float(weight) if _is_number(weight) else 1.0
        min_score = matcher.get("minScore")
        minimum = float(min_score) if _is_number(min_score) else float(opts.default_min_score)
        score = keyword_hits * w + pattern_hits * _PATTERN_WEIGHT * w
        scores[sid] = score
        evaluated[sid] = {
            "keywordHits": keyword_hits,
            "patternHits": pattern_hits,
            "minScore": minimum,
        }
        if score >= minimum and score > best_score:
            best_id, best, best_score = sid, subagent, score
    if best_id is None:
        return ClassifyIntentResult(None, None, 0, scores, evaluated)
    return ClassifyIntentResult(best_id, best, best_score, scores, evaluated)
