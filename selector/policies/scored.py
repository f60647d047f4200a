"""What every scoring method shares (Thompson sampling on Beta posteriors, and the
contextual model): the learning pool and the exploration floor, with exact bookkeeping
of the propensities they mix.

A request first splits between the learning pool (creatives with fewer raw sends than
the threshold, picked uniformly with probability `learning_pct`) and scoring among the
graduated ones. Scoring is the subclass's: it returns a winner per request and, per
request, the probability of each creative under its scoring (`_scored`). With an
exploration floor f, a uniformly random eligible creative replaces the winner with
probability f, and the propensity is f / |eligible| + (1 - f) P(creative).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from selector.batch import POOL, REASON, Pool
from selector.policies.base import Choice, Masks, Policy, PolicyContext, pick_uniform
from selector.view import BoolArray, FloatArray, IntArray, rows_any


class ScoredPolicy(Policy):
    pool: ClassVar[Pool] = "scored"

    @abstractmethod
    def _scored(
        self, ctx: PolicyContext, rows: IntArray, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray, IntArray]:
        """Winner per request, and its choice probabilities as `table[row_of[i]]` (a
        G x K table shared by requests, or one row per request)."""

    @abstractmethod
    def _scored_distribution(
        self, ctx: PolicyContext, row: int, graded: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        """P(creative) under scoring alone for one request whose scored candidates are
        `graded` (non-empty)."""

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
            masks = graded.subset(sr) if lr.size else graded
            picked, p = self._score(ctx, rows[sr], masks, rng)
            creative[sr] = picked
            propensity[sr] = p * np.where(has_learn[sr], 1.0 - share, 1.0)
        reason = np.full(rows.size, REASON["none"], dtype=np.uint8)
        return Choice(creative, pool, propensity, reason)

    def _score(
        self, ctx: PolicyContext, rows: IntArray, masks: Masks, rng: np.random.Generator
    ) -> tuple[IntArray, FloatArray]:
        """Scored picks, with the exploration floor mixed in, and their propensities."""
        winners, table, row_of = self._scored(ctx, rows, masks, rng)
        floor = ctx.view.settings.exploration_floor_pct / 100.0
        if floor <= 0:
            return winners, table[row_of, winners]
        explore = np.flatnonzero(rng.random(len(masks)) < floor)
        if explore.size:
            winners[explore] = pick_uniform(masks.subset(explore), rng)[0]
        count = masks.patterns.sum(axis=1)[masks.groups]
        return winners, floor / count + (1.0 - floor) * table[row_of, winners]

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
            p = self._scored_distribution(ctx, row, graded, rng)
            floor = settings.exploration_floor_pct / 100.0
            scored = floor * graded / graded.sum() + (1.0 - floor) * p
            dist += (1.0 - share if learn.any() else 1.0) * scored
        return dist
