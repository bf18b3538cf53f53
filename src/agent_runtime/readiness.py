"""`decide_knowledge_readiness`: the gate `run_agent_task_stream` obeys (ORIGINAL §5)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .errors import ValidationError
from .eval._readiness import check_minimum_score
from .eval._records import KnowledgeReadinessReport
from .types import KnowledgeReadinessDecision

__all__ = ["DEFAULT_MINIMUM_READINESS_SCORE", "decide_knowledge_readiness"]

DEFAULT_MINIMUM_READINESS_SCORE = 0.7


def _fixed3(x: float) -> str:
    """JavaScript's `x.toFixed(3)`: the exact binary value rounded, a tie going up."""
    return str(Decimal(x).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def decide_knowledge_readiness(
    report: KnowledgeReadinessReport, *, minimum_score: float | None = None
) -> KnowledgeReadinessDecision:
    """`blocked` with any blocking gap; `caveat` when the score is below `minimum_score`
    (default 0.7; a caveat does not block); else `ready`. A non-finite or out-of-range
    minimum is a `ValidationError`."""
    if not isinstance(report, KnowledgeReadinessReport):
        raise ValidationError(
            "decide_knowledge_readiness: report must be a KnowledgeReadinessReport"
        )
    minimum = (
        DEFAULT_MINIMUM_READINESS_SCORE
        if minimum_score is None
        else check_minimum_score(minimum_score, "decide_knowledge_readiness")
    )
    score = report.readiness_score
    if report.blocking_gaps:
        passed, status, reason = False, "blocked", report.reason
    elif score < minimum:
        passed, status = False, "caveat"
        reason = f"Knowledge readiness score {_fixed3(score)} is below minimum {_fixed3(minimum)}."
    else:
        passed, status, reason = True, "ready", report.reason
    return KnowledgeReadinessDecision(
        passed=passed,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        readiness_score=score,
        recommended_action=report.recommended_action,
        severity=report.severity,
        blocking_gap_ids=report.blocking_gap_ids,
        non_blocking_gap_ids=report.non_blocking_gap_ids,
    )
