"""Health checks of live traffic: the control split, the learning pool, creative diversity.

Sample-ratio mismatch (SRM): the control split hashes (campaign, contact), so the unit
of the split is the contact, and the share of a campaign's contacts in the automated arm
should be its `automated_percent`. Pearson's chi-square with one degree of freedom tests
it; its p-value is erfc(sqrt(chi2 / 2)). A p-value below `alpha` (0.001 by default,
as the split is checked on every report and false alarms must stay rare) flags a
mismatch: the arms are no longer comparable and the lift should not be trusted.
Counting sends instead of contacts would be wrong: a contact's sends are not independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

SRM_ALPHA = 0.001
DOMINATED_SHARE = 0.95
PoolState = Literal["learning", "scored", "not_scored"]


def distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """The distinct values, ascending. `np.unique` without `return_*` takes a hash-based
    path in numpy 2 that is ~100x slower than sorting for millions of int64 keys."""
    ordered = np.sort(values)
    keep = np.ones(ordered.size, dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


@dataclass(frozen=True, slots=True)
class SplitTest:
    """The control split of one campaign. `expected_share` is None when the campaign's
    `automated_percent` was not given, and then no test is made (NaN statistics)."""

    campaign_id: str
    automated_contacts: int
    control_contacts: int
    contacts_in_both_arms: int
    expected_share: float | None
    observed_share: float
    chi_square: float
    p_value: float
    mismatch: bool


def chi_square_p_value(chi_square: float) -> float:
    """Upper tail of the chi-square distribution with one degree of freedom."""
    if math.isnan(chi_square):
        return math.nan
    return math.erfc(math.sqrt(max(chi_square, 0.0) / 2.0))


def split_test(
    campaign_id: str,
    automated: int,
    control: int,
    both: int,
    expected_share: float | None,
    alpha: float = SRM_ALPHA,
) -> SplitTest:
    """Pearson's chi-square of the observed split against the expected share."""
    total = automated + control
    observed = automated / total if total else math.nan
    if expected_share is None or total == 0:
        return SplitTest(campaign_id, automated, control, both, expected_share, observed,
                         math.nan, math.nan, False)  # fmt: skip
    chi = 0.0
    for seen, share in ((automated, expected_share), (control, 1.0 - expected_share)):
        expected = share * total
        if expected > 0:
            chi += (seen - expected) ** 2 / expected
        elif seen > 0:
            chi = math.inf
    p = chi_square_p_value(chi)
    return SplitTest(campaign_id, automated, control, both, expected_share, observed, chi, p,
                     p < alpha)  # fmt: skip


def split_counts(
    campaign: NDArray[np.intp],
    contact: NDArray[np.intp],
    automated: NDArray[np.bool_],
    n_contacts: int,
) -> dict[int, tuple[int, int, int]]:
    """Per campaign code: distinct contacts in the automated arm, in control, and in both
    (which a fixed split never produces; a changed `automated_percent` does). `contact`
    is a dense rank below `n_contacts`."""
    pair = campaign.astype(np.int64) * n_contacts + contact
    key = distinct(pair * 2 + automated)
    pair, arm = key // 2, key % 2
    code = pair // n_contacts
    twice = code[1:][pair[1:] == pair[:-1]]
    size = int(code.max()) + 1 if code.size else 0
    auto = np.bincount(code, weights=arm, minlength=size)
    total = np.bincount(code, minlength=size)
    both = np.bincount(twice, minlength=size)
    return {
        int(c): (int(auto[c]), int(total[c] - auto[c]), int(both[c]))
        for c in np.flatnonzero(total).tolist()
    }


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """Where one creative stands: its automated sends per pool, and whether it was last
    picked from the learning pool (`learning`) or scored (`scored`); `not_scored` for a
    creative only ever sent as the control, by the uniform method or as a fallback.
    `first_scored` is the time of its first scored send (its graduation, at the latest)."""

    creative_id: str
    state: PoolState
    sends_by_pool: dict[str, int]
    first_scored: float | None


def pool_state(last_learning: float, last_scored: float) -> PoolState:
    if math.isnan(last_learning) and math.isnan(last_scored):
        return "not_scored"
    if math.isnan(last_scored) or (not math.isnan(last_learning) and last_learning > last_scored):
        return "learning"
    return "scored"


@dataclass(frozen=True, slots=True)
class Diversity:
    """Creative shares of one account's automated sends: the largest share, the entropy
    over its maximum (1 uniform, 0 one creative), and the effective number of creatives
    exp(entropy). `dominated` when one creative takes `DOMINATED_SHARE` or more."""

    shares: dict[str, float]
    top_share: float
    normalized_entropy: float
    effective_creatives: float
    dominated: bool


def diversity(names: list[str], counts: NDArray[np.float64]) -> Diversity:
    total = float(counts.sum())
    if total <= 0:
        return Diversity({}, math.nan, math.nan, math.nan, False)
    share = counts / total
    positive = share[share > 0]
    entropy = float(-(positive * np.log(positive)).sum())
    normalized = entropy / math.log(share.size) if share.size > 1 else 0.0
    top = float(share.max())
    shares = {name: float(s) for name, s in zip(names, share.tolist(), strict=True)}
    return Diversity(shares, top, normalized, math.exp(entropy), top >= DOMINATED_SHARE)
