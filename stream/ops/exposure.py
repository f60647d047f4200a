"""Decision metrics, counted once per account batch from the decision's code columns, and
the per-account exposure behind the creative-share, diversity and learning-pool gauges.

Per batch (on the hot path, vectorized): decisions by (method, arm, pool), fallbacks by
reason, the expected control count, and each account's automated decisions per
creative, added to a window of two half-hour buckets.

Per refresh (a timer, every few seconds, off the hot path): the gauges. Accounts and
creatives are unbounded, so no per-account series is exported. Instead, over the
accounts with at least `min_decisions` automated decisions in the window:
- `top_creative_share`: the largest share any one creative takes of an account's
  automated decisions. The max answers "is any account dominated?", which is what the
  dominance alert asks; an average would hide one collapsed account among many.
- `exposure_entropy_ratio`: each account's entropy of creative shares over log(K), K its
  active automated creatives, averaged with decision weights: a systemic measure (1
  uniform, 0 one creative everywhere) that one small account cannot move.
- `exposure_accounts{state}`: how many accounts are dominated (top share >= 95%) and how
  many are not, so the max can be read against the count.
- `learning_pool_creatives`: active automated creatives below the learning threshold,
  summed over the accounts answered in the window.
Accounts with fewer than two active automated creatives have no choice to measure and
are left out of the share measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from selector import AccountStats, RequestBatch
from selector.batch import ARM, ARMS, DECIDED_BY, POOL, POOLS, REASONS, BatchDecision, Decision
from selector.view import AccountView
from stream.ops.metrics import Metrics

DOMINATED_SHARE = 0.95
_FALLBACK = POOL["fallback"]
_AUTOMATED = ARM["automated"]


@dataclass(slots=True)
class _Account:
    view: AccountView
    current: NDArray[np.int64]
    previous: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def window(self) -> NDArray[np.int64]:
        if self.previous.size != self.current.size:
            return self.current
        return self.current + self.previous


@dataclass(frozen=True, slots=True)
class ExposureSummary:
    top_share: float
    entropy_ratio: float
    dominated: int
    diverse: int
    learning: int


class Exposure:
    """Automated decisions per account and creative over a sliding window (two halves)."""

    def __init__(self, window_seconds: float = 3600.0, min_decisions: int = 100) -> None:
        self.half = window_seconds / 2
        self.min_decisions = min_decisions
        self._accounts: dict[str, _Account] = {}
        self._rotated_at: float | None = None

    def _entry(self, account_id: str, view: AccountView) -> _Account:
        """The account's window, started afresh when its creatives changed."""
        entry = self._accounts.get(account_id)
        if entry is None or entry.view.creative_ids != view.creative_ids:
            zeros = np.zeros(len(view.creative_ids), np.int64)
            entry = self._accounts[account_id] = _Account(view, zeros)
        entry.view = view
        return entry

    def record(self, account_id: str, view: AccountView, creative: NDArray[np.intp]) -> None:
        """Add one batch's automated picks (creative positions in `view`)."""
        counts = np.bincount(creative, minlength=len(view.creative_ids)).astype(np.int64)
        self._entry(account_id, view).current += counts

    def record_one(self, account_id: str, view: AccountView, creative: int) -> None:
        """Add one automated pick (its creative's position in `view`)."""
        self._entry(account_id, view).current[creative] += 1

    def rotate(self, now: float) -> None:
        """Start a new half-window when one is over; forget accounts idle for a window."""
        if self._rotated_at is None:
            self._rotated_at = now
        if now - self._rotated_at < self.half:
            return
        self._rotated_at = now
        for account_id, entry in list(self._accounts.items()):
            if not entry.current.any():
                del self._accounts[account_id]
                continue
            entry.previous, entry.current = entry.current, np.zeros_like(entry.current)

    def summary(self, stats: Callable[[str], AccountStats | None]) -> ExposureSummary:
        top, weighted, weight, dominated, diverse, learning = math.nan, 0.0, 0, 0, 0, 0
        for account_id, entry in self._accounts.items():
            learning += learning_creatives(entry.view, stats(account_id))
            counts = entry.window()
            n = int(counts.sum())
            k = int(entry.view.candidate.sum())
            if n < self.min_decisions or k < 2:
                continue
            share = counts[counts > 0] / n
            top_share = float(share.max())
            ratio = float(-(share * np.log(share)).sum() / math.log(max(k, share.size)))
            top = top_share if math.isnan(top) else max(top, top_share)
            weighted, weight = weighted + ratio * n, weight + n
            if top_share >= DOMINATED_SHARE:
                dominated += 1
            else:
                diverse += 1
        ratio = weighted / weight if weight else math.nan
        return ExposureSummary(top, ratio, dominated, diverse, learning)


def learning_creatives(view: AccountView, stats: AccountStats | None) -> int:
    """Active automated creatives with fewer raw sends than the learning threshold."""
    threshold = view.settings.learning_threshold
    counts = stats.counts if stats is not None else {}
    return sum(
        1
        for cid, candidate in zip(view.creative_ids, view.candidate, strict=True)
        if candidate and (counts[cid].sends if cid in counts else 0) < threshold
    )


class DecisionMetrics:
    """Counts a decided account batch into the metrics and the exposure window."""

    def __init__(self, metrics: Metrics, exposure: Exposure | None = None) -> None:
        self._metrics = metrics
        self.exposure = exposure if exposure is not None else Exposure()

    def observe(
        self, account_id: str, view: AccountView, batch: RequestBatch, decision: BatchDecision
    ) -> None:
        m = self._metrics
        combined = (decision.method.astype(np.intp) * 256 + decision.arm) * 256 + decision.pool
        codes, counts = np.unique(combined, return_counts=True)
        for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
            method, rest = divmod(code, 65536)
            arm, pool = divmod(rest, 256)
            m.decisions.labels(DECIDED_BY[method], ARMS[arm], POOLS[pool]).inc(count)
        fallback = decision.pool == _FALLBACK
        if fallback.any():
            reasons, counts = np.unique(decision.reason[fallback], return_counts=True)
            for reason, count in zip(reasons.tolist(), counts.tolist(), strict=True):
                m.fallbacks.labels(REASONS[reason]).inc(count)
        rows = view.campaign_rows(batch.campaign_ids)
        control = np.where(view.manual_campaign[rows], 0.0, 1.0 - view.automated_pct[rows] / 100)
        m.decisions_expected_control.inc(float(control.sum()))
        automated = decision.arm == _AUTOMATED
        if automated.any():
            self.exposure.record(account_id, view, decision.creative[automated])

    def observe_each(
        self,
        account_id: str,
        view: AccountView,
        campaign_ids: Sequence[str],
        decisions: Sequence[Decision],
    ) -> None:
        """`observe` for a few decisions made one by one (`Selector.decide_each`): the same
        counts, in Python scalars, without the vectorized path's fixed cost."""
        m = self._metrics
        control = 0.0
        for campaign_id, d in zip(campaign_ids, decisions, strict=True):
            m.decisions.labels(d.method, d.arm, d.pool).inc()
            if d.pool == "fallback":
                m.fallbacks.labels(d.reason).inc()
            row = view.campaign_index[campaign_id]
            if not view.manual_campaign[row]:
                control += 1.0 - float(view.automated_pct[row]) / 100
            if d.arm == "automated":
                self.exposure.record_one(account_id, view, view.creative_index[d.creative_id])
        m.decisions_expected_control.inc(control)

    def refresh(self, now: float, stats: Callable[[str], AccountStats | None]) -> None:
        """Rotate the window and set the exposure gauges."""
        self.exposure.rotate(now)
        s = self.exposure.summary(stats)
        m = self._metrics
        m.top_creative_share.set(s.top_share)
        m.exposure_entropy_ratio.set(s.entropy_ratio)
        m.exposure_accounts.labels("dominated").set(s.dominated)
        m.exposure_accounts.labels("diverse").set(s.diverse)
        m.learning_pool_size.set(s.learning)
