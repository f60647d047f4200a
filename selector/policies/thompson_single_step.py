"""`thompson_single_step`: every eligible creative competes on one sampled score.

Score: sampled CTR for the clicks goal; sampled revenue per send for the revenue goal.
"""

from __future__ import annotations

from typing import ClassVar

from selector.domain import Method
from selector.policies.base import PolicyContext
from selector.policies.thompson import ThompsonPolicy, creative_tables
from selector.view import BoolArray, FloatArray


class ThompsonSingleStep(ThompsonPolicy):
    name: ClassVar[Method] = "thompson_single_step"

    def win_probabilities(self, ctx: PolicyContext, masks: BoolArray) -> FloatArray:
        return self.tables(ctx, b"creatives", creative_tables).win_probabilities(masks)
