"""What both Thompson methods share: the learning pool, the exploration floor, and exact
propensities.

Thompson sampling draws one posterior sample per eligible creative and takes the best.
The probability that it picks creative k from an eligible set is an integral that
`selector.winprob` computes on fixed grids, so a decision here draws the creative from
that distribution directly (one uniform number per request). That has the law of a fresh
posterior sample per request, and the propensity is the probability the creative was
actually drawn with. Distributions are cached per posterior (`Posterior.key`) and
eligibility mask: a batch or a single request whose stats did not change costs a lookup.

The learning pool (`settings.learning_mode`; creatives with fewer raw sends than
`learning_threshold` are learning, `learning_pct` is the share s):

- `compete` (default): every eligible creative competes in Thompson sampling, learning
  ones with their wide posteriors; the threshold only labels the pool.
- `floor`: as `compete`, and the learning creatives together get at least s: when their
  Thompson share is below s, the difference goes to a uniformly random learning creative.
- `cap`: as `compete`, and the learning creatives together get at most s while a graduated
  creative is eligible (their probabilities are scaled down, the graduated ones' up).
- `pool`: the seed product's rule: s goes to a uniformly random learning creative, the
  rest to Thompson sampling among the graduated ones only (all of it to whichever pool is
  the only one eligible).

`README.md` ("What a decision does") gives the measurements behind the default. The
exploration floor f mixes a uniform pick into the scored part: over the graduated
creatives in `pool` mode, over every eligible creative otherwise.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from selector.batch import POOL, REASON, Pool
from selector.policies.base import Choice, Masks, Policy, PolicyContext
from selector.view import BoolArray, FloatArray, IntArray, rows_any
from selector.winprob import ScoreTables

CACHE_TABLES = 16
CACHE_ROWS = 4096


class Lru(OrderedDict[bytes, object]):
    """A bounded mapping that forgets the least recently used entry first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def fetch(self, key: bytes) -> object | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def store(self, key: bytes, value: object) -> None:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


def uniform(sets: BoolArray) -> FloatArray:
    """Uniform distributions over each row's True columns (zero rows stay zero)."""
    counts = sets.sum(axis=1, keepdims=True)
    return np.divide(sets, counts, out=np.zeros(sets.shape), where=counts > 0)


def sample_rows(dists: FloatArray, groups: IntArray, rng: np.random.Generator) -> IntArray:
    """One column per request, drawn from its group's distribution (rows sum to 1)."""
    k = dists.shape[1]
    cumulative = np.cumsum(dists, axis=1)
    last = k - 1 - np.argmax(dists[:, ::-1] > 0, axis=1)
    cumulative[np.arange(k)[None, :] >= last[:, None]] = 1.0
    u = rng.random(groups.size)
    if cumulative.shape[0] == 1:
        return np.searchsorted(cumulative[0], u, side="right")
    return np.asarray((cumulative[groups] <= u[:, None]).sum(axis=1))


class ThompsonPolicy(Policy):
    pool: ClassVar[Pool] = "scored"

    def __init__(self) -> None:
        self._tables = Lru(CACHE_TABLES)
        self._rows = Lru(CACHE_ROWS)

    @abstractmethod
    def win_probabilities(self, ctx: PolicyContext, masks: BoolArray) -> FloatArray:
        """P(creative) under plain Thompson sampling among each row's True columns."""

    def tables(
        self, ctx: PolicyContext, level: bytes, build: Callable[[PolicyContext], ScoreTables]
    ) -> ScoreTables:
        """Score tables of this posterior at `level` (creatives, offers), built once."""
        key = level + ctx.posterior.key
        tables = self._tables.fetch(key)
        if not isinstance(tables, ScoreTables):
            tables = build(ctx)
            self._tables.store(key, tables)
        return tables

    def distributions(self, ctx: PolicyContext, patterns: BoolArray) -> FloatArray:
        """The policy's P(creative) for each eligibility pattern (G x K), cached."""
        base = ctx.posterior.key
        keys = [base + row.tobytes() for row in patterns]
        rows = [self._rows.fetch(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = self._mix(ctx, patterns[missing])
            for j, i in enumerate(missing):
                rows[i] = fresh[j]
                self._rows.store(keys[i], fresh[j])
        return np.array(rows).reshape(patterns.shape)

    def _mix(self, ctx: PolicyContext, patterns: BoolArray) -> FloatArray:
        return mix(ctx, patterns, lambda sets: self.win_probabilities(ctx, sets))

    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        dists = self.distributions(ctx, eligible.patterns)
        creative = sample_rows(dists, eligible.groups, rng)
        propensity = dists[eligible.groups, creative]
        learning = ctx.posterior.raw_sends < ctx.view.settings.learning_threshold
        pool = np.where(learning[creative], POOL["learning"], POOL["scored"]).astype(np.uint8)
        reason = np.full(rows.size, REASON["none"], dtype=np.uint8)
        return Choice(creative, pool, propensity, reason)

    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        return self.distributions(ctx, eligible[None, :])[0]


def mix(
    ctx: PolicyContext, patterns: BoolArray, wins: Callable[[BoolArray], FloatArray]
) -> FloatArray:
    """The learning mode and the exploration floor applied to scored win probabilities:
    `wins(sets)` gives P(creative) under plain scoring among each row's True columns
    (rows aligned with `patterns`; the `model` method passes per-request rows)."""
    settings = ctx.view.settings
    share, floor = settings.learning_pct / 100.0, settings.exploration_floor_pct / 100.0
    learning = ctx.posterior.raw_sends < settings.learning_threshold
    learn, graded = patterns & learning, patterns & ~learning
    has_learn, has_graded = rows_any(learn), rows_any(graded)
    both = (has_learn & has_graded)[:, None]
    mode = settings.learning_mode

    def floored(sets: BoolArray) -> FloatArray:
        p = wins(sets)
        return p if floor <= 0 else floor * uniform(sets) + (1.0 - floor) * p

    if mode == "pool":
        weight = np.where(both, share, has_learn[:, None].astype(float))
        return weight * uniform(learn) + (1.0 - weight) * floored(graded)
    p = floored(patterns)
    in_learning = (p * learn).sum(axis=1, keepdims=True)
    if mode == "floor":
        top_up = np.where(both & (in_learning < share), share - in_learning, 0.0)
        top_up /= np.maximum(1.0 - in_learning, 1e-300)
        return top_up * uniform(learn) + (1.0 - top_up) * p
    if mode == "cap":
        over = both & (in_learning > share)
        rest = 1.0 - in_learning
        graded_part = np.where(rest > 1e-12, p * (1.0 - share) / np.maximum(rest, 1e-300), 0)
        graded_part = np.where(rest > 1e-12, graded_part, (1.0 - share) * uniform(graded))
        capped = np.where(learn, p * share / np.maximum(in_learning, 1e-300), graded_part)
        return np.where(over, np.where(patterns, capped, 0.0), p)
    return p


def creative_tables(ctx: PolicyContext) -> ScoreTables:
    """Score tables of every creative: CTR for the clicks goal, else revenue per send."""
    post, view = ctx.posterior, ctx.view
    if view.settings.goal == "clicks":
        return ScoreTables.clicks(post.ctr_alpha, post.ctr_beta)
    return ScoreTables.revenue(
        (post.ctr_alpha, post.ctr_beta),
        (post.cvr_alpha, post.cvr_beta),
        view.value,
        view.per_click,
    )


def offer_tables(ctx: PolicyContext) -> ScoreTables:
    """Score tables of every offer, from the offer-level counts."""
    post, view = ctx.posterior, ctx.view
    if view.settings.goal == "clicks":
        return ScoreTables.clicks(post.offer_ctr_alpha, post.offer_ctr_beta)
    return ScoreTables.revenue(
        (post.offer_ctr_alpha, post.offer_ctr_beta),
        (post.offer_cvr_alpha, post.offer_cvr_beta),
        view.offer_value,
        view.offer_per_click,
    )
