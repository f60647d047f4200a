"""The interface every selection method implements, and the fallback they share.

`Policy.choose` is the public entry point: it works out each request's candidates and
eligibility (candidates minus cooldowns), answers requests with nothing eligible with
the campaign's default creative and a named reason, and hands the rest to `_choose`.
`distribution` gives the full probability vector over creatives for one request, which
the contract tests use to check every propensity a policy reports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from selector.batch import POOL, REASON, Pool
from selector.domain import Method
from selector.model.artifact import ContextualModel
from selector.model.record import Records
from selector.model.scoring import DEFAULT_SAMPLES
from selector.view import AccountView, BoolArray, FloatArray, IntArray, Posterior, rows_any

Codes = NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class PolicyContext:
    """Everything a policy may read for one batch. `rotation` is the only mutable part:
    round-robin positions per campaign, owned by the decide call that made the context.
    `times`, `profiles` (the contacts' profile records) and `model` are per batch too; only
    the `model` method reads them."""

    view: AccountView
    posterior: Posterior
    campaign: IntArray
    cooling: BoolArray | None
    rotation: dict[str, int]
    times: FloatArray | None = None
    profiles: Records | None = None
    model: ContextualModel | None = None
    model_samples: int = DEFAULT_SAMPLES


@dataclass(frozen=True, slots=True, eq=False)
class Masks:
    """Eligibility of n requests, stored as the distinct rows (`patterns`, G x K) and each
    request's pattern (`groups`). Requests mostly share a pattern (no cooldowns, or the
    same ones), so per-pattern work is done G times instead of n."""

    patterns: BoolArray
    groups: IntArray

    @classmethod
    def of(cls, matrix: BoolArray) -> Masks:
        if matrix.shape[0] == 0:
            return cls(np.zeros((0, matrix.shape[1]), dtype=bool), np.empty(0, dtype=np.intp))
        first = matrix[0]
        if matrix.strides[0] == 0 or (matrix == first).all():
            return cls(first[None, :].copy(), np.zeros(matrix.shape[0], dtype=np.intp))
        patterns, groups = np.unique(matrix, axis=0, return_inverse=True)
        return cls(patterns, groups.reshape(-1))

    def __len__(self) -> int:
        return int(self.groups.size)

    def rows(self) -> BoolArray:
        """The full n x K matrix."""
        return self.patterns[self.groups]

    def subset(self, idx: IntArray) -> Masks:
        return Masks(self.patterns, self.groups[idx])

    def where(self, pattern_mask: BoolArray) -> Masks:
        """The same requests with every pattern intersected with `pattern_mask` (G x K)."""
        return Masks(self.patterns & pattern_mask, self.groups)


@dataclass(frozen=True, slots=True, eq=False)
class Choice:
    creative: IntArray
    pool: Codes
    propensity: FloatArray
    reason: Codes


def pick_uniform(masks: Masks, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """One uniformly random allowed column per request (each must have one), and the
    number of allowed columns it chose from."""
    counts = masks.patterns.sum(axis=1)
    if len(masks.patterns) == 1:
        allowed = np.flatnonzero(masks.patterns[0])
        return allowed[rng.integers(0, allowed.size, len(masks))], np.full(len(masks), counts[0])
    keys = rng.random((len(masks), masks.patterns.shape[1]))
    keys[~masks.rows()] = -1.0
    return np.argmax(keys, axis=1), counts[masks.groups]


class Policy(ABC):
    """A selection method. Subclasses set `name` and implement `_choose` and
    `distribution`; they may narrow `candidates`."""

    name: ClassVar[Method]
    pool: ClassVar[Pool] = "uniform"

    def candidates(self, ctx: PolicyContext, rows: IntArray) -> BoolArray:
        """Creatives this method may pick for each row, before cooldowns."""
        return np.broadcast_to(ctx.view.candidate, (rows.size, ctx.view.candidate.size))

    def eligible(self, ctx: PolicyContext, rows: IntArray) -> tuple[BoolArray, Masks]:
        """Whether each row has any candidate at all, and the eligibility masks."""
        candidates = self.candidates(ctx, rows)
        if ctx.cooling is None:
            masks = Masks.of(candidates)
            return rows_any(masks.patterns)[masks.groups], masks
        return rows_any(candidates), Masks.of(candidates & ~ctx.cooling[rows])

    def choose(self, ctx: PolicyContext, rows: IntArray, rng: np.random.Generator) -> Choice:
        has_candidates, masks = self.eligible(ctx, rows)
        has_any = rows_any(masks.patterns)[masks.groups]
        if has_any.all():
            return self._choose(ctx, rows, masks, rng)
        creative = ctx.view.default_creative[ctx.campaign[rows]].copy()
        pool = np.full(rows.size, POOL["fallback"], dtype=np.uint8)
        propensity = np.ones(rows.size)
        reason = np.where(
            has_candidates, REASON["all_in_cooldown"], REASON["no_candidates"]
        ).astype(np.uint8)
        ok = np.flatnonzero(has_any)
        if ok.size:
            picked = self._choose(ctx, rows[ok], masks.subset(ok), rng)
            creative[ok] = picked.creative
            pool[ok] = picked.pool
            propensity[ok] = picked.propensity
            reason[ok] = picked.reason
        return Choice(creative, pool, propensity, reason)

    @abstractmethod
    def _choose(
        self, ctx: PolicyContext, rows: IntArray, eligible: Masks, rng: np.random.Generator
    ) -> Choice:
        """Pick for rows that have at least one eligible creative."""

    @abstractmethod
    def distribution(
        self, ctx: PolicyContext, row: int, eligible: BoolArray, rng: np.random.Generator
    ) -> FloatArray:
        """P(creative) for one request with a non-empty `eligible` mask; sums to 1."""

    def _plain(self, creative: IntArray, propensity: FloatArray, reason: str = "none") -> Choice:
        n = creative.size
        return Choice(
            creative,
            np.full(n, POOL[self.pool], dtype=np.uint8),
            propensity,
            np.full(n, REASON[reason], dtype=np.uint8),  # type: ignore[index]
        )
