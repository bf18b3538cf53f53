"""Knowledge readiness as agent-eval scores it (ORIGINAL §4.3): which requirements are missing
or blocking, the weighted score, severity, reason, recommended action, the questions to ask
and the acquisition plans to run, and the `knowledge-ready` eval of the control loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from ._records import (
    ControlEvalResult,
    DataAcquisitionPlan,
    Importance,
    KnowledgeBundle,
    KnowledgeReadinessReport,
    KnowledgeRequirement,
    RecommendedAction,
    UserQuestion,
)

__all__ = [
    "IMPORTANCE_WEIGHTS",
    "acquisition_plans_for_knowledge_gaps",
    "blocking_knowledge_eval",
    "is_blocking",
    "is_expired",
    "is_missing",
    "score_knowledge_readiness",
    "user_questions_for_knowledge_gaps",
]

IMPORTANCE_WEIGHTS: Mapping[str, int] = {"blocking": 8, "high": 4, "medium": 2, "low": 1}
_RANK: Mapping[str, int] = {"blocking": 3, "high": 2, "medium": 1, "low": 0}
_IMPACT: Mapping[str, str] = {
    "block": "The task cannot proceed without this.",
    "ask": "The task waits for an answer before it proceeds.",
    "continue_with_caveat": "The task proceeds, and its result carries a caveat.",
    "infer": "The task proceeds on a low-confidence inference.",
}
_PLAN_TEXT: Mapping[str, str] = {
    "ask_user": "Ask the user for the missing knowledge.",
    "query_connectors": "Query the connected data sources.",
    "inspect_repo": "Inspect the repository.",
    "run_command": "Run commands to collect the evidence.",
    "collect_web_data": "Collect the data from the web.",
}


def _clamp(v: float) -> float:
    return 0.0 if v < 0 else 1.0 if v > 1 else float(v)


def _parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_expired(req: KnowledgeRequirement, now: datetime | None = None) -> bool:
    """`valid_until` at or before now, or unparsable."""
    if req.valid_until is None:
        return False
    until = _parse_iso(req.valid_until)
    return until is None or until <= (now or datetime.now(UTC))


def is_missing(req: KnowledgeRequirement, now: datetime | None = None) -> bool:
    """Expired, or known with less confidence than needed (both clamped to [0, 1])."""
    return is_expired(req, now) or _clamp(req.current_confidence) < _clamp(req.confidence_needed)


def is_blocking(req: KnowledgeRequirement) -> bool:
    """A missing requirement blocks when it is `blocking`, its fallback is `block`, or secret."""
    return (
        req.importance == "blocking"
        or req.fallback_policy == "block"
        or req.sensitivity == "secret"
    )


def _requirement_score(req: KnowledgeRequirement, now: datetime) -> float:
    if is_expired(req, now):
        return 0.0
    needed = _clamp(req.confidence_needed)
    if needed <= 0:
        return 1.0
    return min(1.0, _clamp(req.current_confidence) / needed)


def _asks(req: KnowledgeRequirement) -> bool:
    return req.acquisition_mode == "ask_user" or req.fallback_policy == "ask"


def _recommended(
    blocking: list[KnowledgeRequirement], non_blocking: list[KnowledgeRequirement]
) -> RecommendedAction:
    gaps = blocking or non_blocking
    if not gaps:
        return "run_agent"
    modes = {g.acquisition_mode for g in gaps}
    if any(_asks(g) for g in gaps):
        return "ask_user"
    if "query_connectors" in modes:
        return "query_connectors"
    if modes & {"inspect_repo", "run_command"}:
        return "inspect_repo"
    if "collect_web_data" in modes:
        return "collect_web_data"
    if "not_available" in modes:
        return "abort_or_rescope"
    if any(g.importance == "high" for g in non_blocking):
        return "build_domain_wiki"
    return "continue_with_caveat"


def _requirements(requirements: Iterable[KnowledgeRequirement]) -> tuple[KnowledgeRequirement, ...]:
    if isinstance(requirements, str | bytes | Mapping) or not isinstance(requirements, Iterable):
        raise ValidationError("requirements must be a list of KnowledgeRequirement")
    reqs = tuple(requirements)
    if not all(isinstance(r, KnowledgeRequirement) for r in reqs):
        raise ValidationError("requirements must be a list of KnowledgeRequirement")
    return reqs


def score_knowledge_readiness(
    task_id: str,
    requirements: Iterable[KnowledgeRequirement],
    metadata: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> KnowledgeReadinessReport:
    """Score `requirements` into a readiness report (weights blocking 8, high 4, medium 2,
    low 1; an empty list scores 1)."""
    if not isinstance(task_id, str):
        raise ValidationError("score_knowledge_readiness: task_id must be a string")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError("score_knowledge_readiness: metadata must be a mapping")
    reqs = _requirements(requirements)
    at = now or datetime.now(UTC)
    blocking: list[KnowledgeRequirement] = []
    non_blocking: list[KnowledgeRequirement] = []
    weighted = 0.0
    total = 0
    for req in reqs:
        weight = IMPORTANCE_WEIGHTS[req.importance]
        total += weight
        weighted += weight * _requirement_score(req, at)
        if is_missing(req, at):
            (blocking if is_blocking(req) else non_blocking).append(req)
    score = 1.0 if total == 0 else weighted / total
    if blocking:
        severity = "critical"
        reason = f"{len(blocking)} blocking knowledge requirement(s) are missing."
    else:
        severity = "warning" if any(g.importance == "high" for g in non_blocking) else "info"
        reason = (
            f"{len(non_blocking)} non-blocking knowledge gap(s) remain."
            if non_blocking
            else "All declared knowledge requirements are ready."
        )
    evidence: dict[str, None] = {}
    for req in reqs:
        evidence.update(dict.fromkeys(req.evidence_ids))
    bundle = KnowledgeBundle(
        requirements=reqs,
        evidence_ids=tuple(evidence),
        missing=tuple(g.id for g in (*blocking, *non_blocking)),
    )
    return KnowledgeReadinessReport(
        task_id=task_id,
        readiness_score=score if math.isfinite(score) else 0.0,
        recommended_action=_recommended(blocking, non_blocking),
        severity=severity,  # type: ignore[arg-type]
        reason=reason,
        blocking_gaps=tuple(blocking),
        non_blocking_gaps=tuple(non_blocking),
        bundle=bundle,
        metadata=dict(metadata) if metadata is not None else None,
    )


def _question(req: KnowledgeRequirement) -> UserQuestion:
    required_for = ", ".join(req.required_for)
    return UserQuestion(
        id=f"question_{req.id}",
        requirement_id=req.id,
        question=f"Please provide: {req.description}",
        reason=f"Required for {required_for}." if required_for else "Required for the task.",
        importance=req.importance,
        answer_type="credential" if req.sensitivity == "secret" else "free_text",
        impact_if_unknown=_IMPACT[req.fallback_policy],
    )


def user_questions_for_knowledge_gaps(
    gaps: Iterable[KnowledgeRequirement],
) -> tuple[UserQuestion, ...]:
    """One question per gap the user can close (mode `ask_user` or fallback `ask`)."""
    return tuple(_question(g) for g in _requirements(gaps) if _asks(g))


def acquisition_plans_for_knowledge_gaps(
    gaps: Iterable[KnowledgeRequirement],
) -> tuple[DataAcquisitionPlan, ...]:
    """One plan per acquisition mode among the gaps, in first-seen order (modes
    `infer_low_confidence` and `not_available` have none); the `ask_user` plan carries its
    questions."""
    groups: dict[str, list[KnowledgeRequirement]] = {}
    for gap in _requirements(gaps):
        if gap.acquisition_mode in ("infer_low_confidence", "not_available"):
            continue
        groups.setdefault(gap.acquisition_mode, []).append(gap)
    plans = []
    for mode, members in groups.items():
        priority: Importance = max((g.importance for g in members), key=_RANK.__getitem__)
        questions = tuple(_question(g) for g in members) if mode == "ask_user" else ()
        plans.append(
            DataAcquisitionPlan(
                id=f"acquire_{mode}",
                requirement_ids=tuple(g.id for g in members),
                mode=mode,  # type: ignore[arg-type]
                priority=priority,
                description=_PLAN_TEXT.get(mode, ""),
                expected_evidence_count=len(members),
                questions=questions,
            )
        )
    return tuple(plans)


def check_minimum_score(minimum_score: Any, where: str) -> float:
    """A minimum readiness score: a finite number in [0, 1] (`ValidationError` otherwise)."""
    if type(minimum_score) not in (int, float) or not math.isfinite(minimum_score):
        raise ValidationError(f"{where}: minimum_score must be a finite number")
    if not 0 <= minimum_score <= 1:
        raise ValidationError(f"{where}: minimum_score must be between 0 and 1")
    return float(minimum_score)


def blocking_knowledge_eval(
    report: KnowledgeReadinessReport, minimum_score: float = 0.7
) -> ControlEvalResult:
    """The `knowledge-ready` eval: passes with no blocking gap and a score at the minimum."""
    if not isinstance(report, KnowledgeReadinessReport):
        raise ValidationError("blocking_knowledge_eval: report must be a KnowledgeReadinessReport")
    minimum = check_minimum_score(minimum_score, "blocking_knowledge_eval")
    passed = not report.blocking_gaps and report.readiness_score >= minimum
    return ControlEvalResult(
        id="knowledge-ready",
        passed=passed,
        severity="info" if passed else report.severity,
        score=report.readiness_score,
        objective=True,
        detail=report.reason,
    )
