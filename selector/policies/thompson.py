"""What both Thompson methods share: the learning pool, the exploration floor, and
propensities estimated from the batch's own posterior draws.

A request first splits between the learning pool (creatives with fewer raw sends than
the threshold, picked uniformly with probability `learning_pct`) and scoring among the
graduated ones. Scoring draws one posterior sample per candidate creative per request
and takes the best; subclasses define the draw and the "best".

Propensities: every request's draw covers all creatives that any request in the batch
could be scored on, so the batch's draws are iid samples of the whole posterior. The
win frequency of each creative under a request's eligibility mask, over those draws
(topped up to `propensity_samples`), estimates P(creative | mask). Requests sharing a
mask share the estimate, so the cost grows with the number of distinct masks, not N.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from selector.batch import POOL, REASON, Pool
from selector.policies.base import Choice, Masks, Policy, PolicyContext, pick_uniform
from selector.view import BoolArray, FloatArray, IntArray, rows_any

Draws = Any


class ThompsonPolicy(Policy):
    pool: ClassVar[Pool] = "scored"

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

    # --- shared machinery ----------------------------------------------------------------

    def _learning(self, ctx: PolicyContext) -> BoolArray:
        threshold = ctx.view.settings.learning_threshold
        return ctx.posterior.raw_sends < threshold

    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        settings = ctx.view.settings
        learning = self._learning(ctx)
        learn, graded = eligible.where(learning[None, :]), eligible.where(~learning[None, :])
        has_learn = rows_any(learn.patterns)[eligible.groups]
        has_graded = rows_any(graded.patterns)[eligible.groups]
        share = settings.learning_pct / 100.0
        to_learning = has_learn & (~has_graded | (rng.random(rows.size) < share))
        creative = np.empty(rows.size, dtype=np.intp)
        propensity = np.empty(rows.size)
        pool = np.where(to_learning, POOL["learning"], POOL["scored"]).astype(np.uint8)
        lr = np.flatnonzero(to_learning)
        if lr.size:
            picked, count = pick_uniform(learn.subset(lr), rng)
            creative[lr] = picked
            propensity[lr] = np.where(has_graded[lr], share, 1.0) / count
        sr = np.flatnonzero(~to_learning) if lr.size else np.arange(rows.size)
        if sr.size:
            picked, p = self._score(ctx, graded.subset(sr) if lr.size else graded, rng)
            creative[sr] = picked
            propensity[sr] = p * np.where(has_learn[sr], 1.0 - share, 1.0)
        reason = np.full(rows.size, REASON["none"], dtype=np.uint8)
        return Choice(creative, pool, propensity, reason)

    def _score(
        self, ctx: PolicyContext, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray]:
        """Thompson picks, with the exploration floor mixed in, and their propensities."""
        winners, dists = self._thompson(ctx, masks, rng)
        floor = ctx.view.settings.exploration_floor_pct / 100.0
        if floor <= 0:
            return winners, dists[masks.groups, winners]
        explore = np.flatnonzero(rng.random(len(masks)) < floor)
        if explore.size:
            winners[explore] = pick_uniform(masks.subset(explore), rng)[0]
        count = masks.patterns.sum(axis=1)[masks.groups]
        return winners, floor / count + (1.0 - floor) * dists[masks.groups, winners]

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

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        settings = ctx.view.settings
        learning = self._learning(ctx)
        learn, graded = eligible & learning, eligible & ~learning
        share = settings.learning_pct / 100.0
        dist = np.zeros(eligible.size)
        if learn.any():
            dist[learn] += (share if graded.any() else 1.0) / learn.sum()
        if graded.any():
            masks = Masks(graded[None, :], np.zeros(1, dtype=np.intp))
            _, p = self._thompson(ctx, masks, rng)
            floor = settings.exploration_floor_pct / 100.0
            scored = floor * graded / graded.sum() + (1.0 - floor) * p[0]
            dist += (1.0 - share if learn.any() else 1.0) * scored
        return dist


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
