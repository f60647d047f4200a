"""`thompson_single_step`: every eligible graduated creative competes on one sampled score.

Score: sampled CTR for the clicks goal; sampled revenue per send for the revenue goal.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from selector.domain import Method
from selector.policies.base import PolicyContext
from selector.policies.thompson import ThompsonPolicy, sample_scores
from selector.view import BoolArray, FloatArray, IntArray


class ThompsonSingleStep(ThompsonPolicy):
    name: ClassVar[Method] = "thompson_single_step"

    def draw(
        self, ctx: PolicyContext, n: int, columns: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        post, view = ctx.posterior, ctx.view
        params = (
            post.ctr_alpha[columns],
            post.ctr_beta[columns],
            post.cvr_alpha[columns],
            post.cvr_beta[columns],
        )
        return sample_scores(ctx, n, rng, params, view.value[columns], view.per_click[columns])

    def winners(
        self, ctx: PolicyContext, draws: FloatArray, columns: IntArray, allowed: BoolArray
    ) -> IntArray:
        if allowed.all():
            return columns[np.argmax(draws, axis=1)]
        keep = np.flatnonzero(allowed)
        return columns[keep][np.argmax(draws[:, keep], axis=1)]
