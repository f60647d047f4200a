"""Thompson sampling on the Beta posteriors, the machinery both Beta methods share.

Scoring draws one posterior sample per candidate creative per request and takes the
best; subclasses define the draw and the "best". The learning pool and the exploration
floor around it are `scored.ScoredPolicy`'s.

Propensities: every request's draw covers all creatives that any request in the batch
could be scored on, so the batch's draws are iid samples of the whole posterior. The
win frequency of each creative under a request's eligibility mask, over those draws
(topped up to `propensity_samples`), estimates P(creative | mask). Requests sharing a
mask share the estimate, so the cost grows with the number of distinct masks, not N.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from selector.policies.base import Masks, PolicyContext
from selector.policies.scored import ScoredPolicy
from selector.view import BoolArray, FloatArray, IntArray

Draws = Any


class ThompsonPolicy(ScoredPolicy):
    # --- what subclasses provide -------------------------------------------------------

    @abstractmethod
    def draw(
        self, ctx: PolicyContext, n: int, columns: IntArray, rng: np.random.Generator
    ) -> Draws:
        """n posterior draws for the creatives in `columns` (positions, ascending)."""

    @abstractmethod
    def winners(
        self, ctx: PolicyContext, draws: Draws, columns: IntArray, allowed: BoolArray
    ) -> IntArray:
        """Winning creative position per draw when only `allowed` (over `columns`) may win."""

    # --- scoring for ScoredPolicy ------------------------------------------------------

    def _scored(
        self, ctx: PolicyContext, rows: IntArray, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray, IntArray]:
        winners, dists = self._thompson(ctx, masks, rng)
        return winners, dists, masks.groups

    def _scored_distribution(
        self, ctx: PolicyContext, row: int, graded: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        masks = Masks(graded[None, :], np.zeros(1, dtype=np.intp))
        return self._thompson(ctx, masks, rng)[1][0]

    def _thompson(
        self, ctx: PolicyContext, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray]:
        """Winner per request and, per pattern, the estimated win probabilities (G x K)."""
        m, (g_count, k) = len(masks), masks.patterns.shape
        used = masks.patterns[np.unique(masks.groups)] if g_count > 1 else masks.patterns
        columns = np.flatnonzero(used.any(axis=0))
        total = max(m, ctx.propensity_samples)
        draws = self.draw(ctx, total, columns, rng)
        winners = np.empty(m, dtype=np.intp)
        dists = np.zeros((g_count, k))
        for g in range(g_count):
            members = np.flatnonzero(masks.groups == g) if g_count > 1 else slice(None)
            if g_count > 1 and members.size == 0:  # type: ignore[union-attr]
                continue
            won = self.winners(ctx, draws, columns, masks.patterns[g][columns])
            dists[g] = np.bincount(won, minlength=k) / total
            winners[members] = won[:m][members]
        return winners, dists


def sample_scores(
    ctx: PolicyContext,
    n: int,
    rng: np.random.Generator,
    alpha_beta: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    value: FloatArray,
    per_click: BoolArray,
) -> FloatArray:
    """n sampled scores per column: CTR for the clicks goal; for revenue CTR x CVR x value,
    or CTR x value for per-click (cto) offers, whose conversion rate does not count."""
    ctr_a, ctr_b, cvr_a, cvr_b = alpha_beta
    ctr = ctx.sampler.sample(ctr_a, ctr_b, n, rng)
    if ctx.view.settings.goal == "clicks":
        return ctr
    scores = ctr * value[None, :]
    per_conversion = np.flatnonzero(~per_click)
    if per_conversion.size == per_click.size:
        scores *= ctx.sampler.sample(cvr_a, cvr_b, n, rng)
    elif per_conversion.size:
        cvr = ctx.sampler.sample(cvr_a[per_conversion], cvr_b[per_conversion], n, rng)
        scores[:, per_conversion] *= cvr
    return scores
