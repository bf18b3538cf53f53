"""`ModelPrice`: what a model's tokens cost, so an `llm_call` can carry `costUsd` (ours)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ValidationError

__all__ = ["ModelPrice"]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per one million input and per one million output tokens of one model."""

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million"):
            v = getattr(self, name)
            if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
                raise ValidationError(f"ModelPrice.{name} must be a finite number >= 0")

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        """The cost of `tokens_in` input and `tokens_out` output tokens."""
        return (tokens_in * self.input_per_million + tokens_out * self.output_per_million) / 1e6
