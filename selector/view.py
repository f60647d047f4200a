"""Array views of an account and its stats, built once and shared by every policy.

Decisions work on numpy arrays indexed by creative position (K creatives, F offers,
C campaigns); this module turns the domain objects into those arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.domain import Account, Method, SelectionSettings
from selector.stats import AccountStats, Counts, Decayed
from selector.timing import CLICK_BUCKET, CONVERSION_BUCKET, pending

# numpy's stubs type most results loosely, so the aliases name the intended dtype for
# readers and leave dtype checking to the tests.
BoolArray = NDArray[Any]
IntArray = NDArray[Any]
FloatArray = NDArray[Any]

OFFER_PRIOR_CLICKS = 300.0


class UnknownCampaign(KeyError):
    """A request names a campaign the account does not have."""

    def __init__(self, campaign_ids: Sequence[str]) -> None:
        super().__init__(", ".join(sorted(set(campaign_ids))))
        self.campaign_ids = tuple(sorted(set(campaign_ids)))


def rows_any(matrix: BoolArray) -> BoolArray:
    """Row-wise any() typed as an array (numpy's stubs allow a scalar)."""
    return np.asarray(matrix.any(axis=1))


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True, eq=False)
class AccountView:
    """Per-creative, per-offer and per-campaign arrays of one `Account`."""

    account: Account
    creative_ids: tuple[str, ...]
    creative_index: dict[str, int]
    candidate: BoolArray
    active: BoolArray
    offer_ids: tuple[str, ...]
    offer_of: IntArray
    value: FloatArray
    per_click: BoolArray
    offer_value: FloatArray
    offer_per_click: BoolArray
    campaign_ids: tuple[str, ...]
    campaign_index: dict[str, int]
    automated_pct: FloatArray
    manual_campaign: BoolArray
    default_creative: IntArray
    manual_subset: BoolArray
    round_robin: BoolArray
    methods: tuple[Method, ...]
    method_cumulative_pct: FloatArray

    @property
    def settings(self) -> SelectionSettings:
        return self.account.settings

    def campaign_rows(self, campaign_ids: Sequence[str]) -> IntArray:
        """Campaign position per request; raises `UnknownCampaign` naming the bad ids."""
        index = self.campaign_index
        distinct = set(campaign_ids)
        try:
            if len(distinct) == 1:  # the usual batch: one campaign's send
                return np.full(len(campaign_ids), index[next(iter(distinct))], dtype=np.intp)
            return np.fromiter((index[c] for c in campaign_ids), np.intp, len(campaign_ids))
        except KeyError:
            raise UnknownCampaign([c for c in campaign_ids if c not in index]) from None


def compile_account(account: Account) -> AccountView:
    settings = account.settings
    creative_ids = tuple(c.creative_id for c in account.creatives)
    creative_index = {cid: i for i, cid in enumerate(creative_ids)}
    offer_ids = tuple(o.offer_id for o in account.offers)
    offer_index = {oid: i for i, oid in enumerate(offer_ids)}
    offer_value = np.array([max(o.payout, settings.payout_floor) for o in account.offers])
    offer_per_click = np.array([o.payout_type == "cto" for o in account.offers], dtype=bool)
    offer_of = np.array([offer_index[c.offer_id] for c in account.creatives], dtype=np.intp)
    k = len(creative_ids)
    subset = np.zeros((len(account.campaigns), k), dtype=bool)
    for row, campaign in enumerate(account.campaigns):
        for cid in campaign.manual_creative_ids:
            subset[row, creative_index[cid]] = True
    cumulative = np.cumsum([m.traffic_pct for m in settings.methods])
    return AccountView(
        account=account,
        creative_ids=creative_ids,
        creative_index=creative_index,
        candidate=_frozen(np.array([c.is_candidate for c in account.creatives], dtype=bool)),
        active=_frozen(np.array([c.status == "active" for c in account.creatives], dtype=bool)),
        offer_ids=offer_ids,
        offer_of=_frozen(offer_of),
        value=_frozen(offer_value[offer_of] if k else np.zeros(0)),
        per_click=_frozen(offer_per_click[offer_of] if k else np.zeros(0, dtype=bool)),
        offer_value=_frozen(offer_value),
        offer_per_click=_frozen(offer_per_click),
        campaign_ids=tuple(c.campaign_id for c in account.campaigns),
        campaign_index={c.campaign_id: i for i, c in enumerate(account.campaigns)},
        automated_pct=_frozen(np.array([c.automated_percent for c in account.campaigns])),
        manual_campaign=_frozen(np.array([c.mode == "manual" for c in account.campaigns], bool)),
        default_creative=_frozen(
            np.array([creative_index[c.default_creative_id] for c in account.campaigns], np.intp)
        ),
        manual_subset=_frozen(subset),
        round_robin=_frozen(np.array([c.rotation == "round_robin" for c in account.campaigns])),
        methods=tuple(m.method for m in settings.methods),
        method_cumulative_pct=_frozen(cumulative.astype(np.float64)),
    )


@dataclass(frozen=True, slots=True, eq=False)
class Posterior:
    """Beta parameters per creative and per offer at one point in time. `key` is the
    bytes of every array: equal keys mean equal posteriors, so caches of anything derived
    from a posterior (score tables, win probabilities) are keyed by it."""

    raw_sends: FloatArray
    ctr_alpha: FloatArray
    ctr_beta: FloatArray
    cvr_alpha: FloatArray
    cvr_beta: FloatArray
    offer_ctr_alpha: FloatArray
    offer_ctr_beta: FloatArray
    offer_cvr_alpha: FloatArray
    offer_cvr_beta: FloatArray
    version: int
    key: bytes = b""


def posterior(view: AccountView, stats: AccountStats, now: float) -> Posterior:
    """Posterior parameters from the stats, decayed to `now` when forgetting is on.

    Offer-level counts are the sums over the offer's creatives in the catalog, so they
    can never disagree with the creative-level counts.
    """
    settings = view.settings
    half_life = settings.half_life_seconds
    zero = (0, 0, 0, 0)
    if half_life is None:
        rows = [_raw(stats.counts.get(cid)) or zero for cid in view.creative_ids]
        counts = np.array(rows, dtype=np.float64).reshape(-1, 4).T
        raw = counts[0]
    else:
        raw = np.array([_raw(stats.counts.get(cid), 0) for cid in view.creative_ids], float)
        decayed = [stats.decayed.get(cid) for cid in view.creative_ids]
        counts = (
            np.array([_decayed_row(d, now, half_life) for d in decayed], dtype=np.float64)
            .reshape(-1, 4)
            .T
        )
    sends, clicks, conversions = counts[0], counts[1], counts[2]
    clicks_seen = clicks
    if not stats.timing.is_empty():
        sends, clicks_seen = _matured(view, stats, now, sends, clicks)
    f = len(view.offer_ids)
    offer_sends = np.bincount(view.offer_of, weights=sends, minlength=f)
    offer_clicks = np.bincount(view.offer_of, weights=clicks, minlength=f)
    offer_seen = np.bincount(view.offer_of, weights=clicks_seen, minlength=f)
    offer_conv = np.bincount(view.offer_of, weights=conversions, minlength=f)
    a0, b0 = settings.prior.alpha, settings.prior.beta
    cvr_a0, cvr_b0 = offer_prior(view, a0, b0, conversions, clicks_seen)
    arrays = (
        raw,
        a0 + clicks,
        b0 + np.maximum(sends - clicks, 0.0),
        cvr_a0 + conversions,
        cvr_b0 + np.maximum(clicks_seen - conversions, 0.0),
        a0 + offer_clicks,
        b0 + np.maximum(offer_sends - offer_clicks, 0.0),
        a0 + offer_conv,
        b0 + np.maximum(offer_seen - offer_conv, 0.0),
    )
    key = b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays)
    return Posterior(*arrays, version=stats.version, key=key)


def offer_prior(
    view: AccountView, a0: float, b0: float, conversions: FloatArray, seen: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Each creative's conversion-rate prior: the account's Beta(a0, b0) plus the pooled
    (matured) clicks and conversions of the other creatives of its offer, counted as at
    most `OFFER_PRIOR_CLICKS` clicks at their rate. What happens after the click is
    mostly the offer's (its landing page, its price), so a creative with few matured
    clicks starts near its offer's rate rather than at the flat prior, and its own clicks
    outweigh the pool once it has more than a few hundred."""
    f = len(view.offer_ids)
    others_conv = np.bincount(view.offer_of, weights=conversions, minlength=f)[view.offer_of]
    others_seen = np.bincount(view.offer_of, weights=seen, minlength=f)[view.offer_of]
    others_conv, others_seen = others_conv - conversions, others_seen - seen
    others_seen = np.maximum(others_seen, others_conv)
    rate = (others_conv + a0) / (others_seen + a0 + b0)
    strength = np.minimum(OFFER_PRIOR_CLICKS, others_seen)
    return a0 + strength * rate, b0 + strength * (1.0 - rate)


def _matured(
    view: AccountView, stats: AccountStats, now: float, sends: FloatArray, clicks: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Sends and clicks less the expected number whose click (conversion) has not arrived
    yet, by the account's estimated delay distributions (`selector.timing`)."""
    timing, ids, half_life = stats.timing, view.creative_ids, view.settings.half_life_seconds
    rows = stats.counts.items()
    sent = {cid: c.sends for cid, c in rows}
    clicked = {cid: c.clicks for cid, c in rows}
    click_cdf = timing.delay_cdf("click", sent, clicked)
    if click_cdf is not None:
        late = pending(timing.sends, ids, now, CLICK_BUCKET, click_cdf, half_life)
        sends = np.maximum(sends - late, clicks)
    conversion_cdf = timing.delay_cdf("conversion", clicked, {c: n.conversions for c, n in rows})
    if conversion_cdf is not None:
        late = pending(timing.clicks, ids, now, CONVERSION_BUCKET, conversion_cdf, half_life)
        clicks = np.maximum(clicks - late, 0.0)
    return sends, clicks


def _raw(c: Counts | None, field: int | None = None) -> Any:
    if c is None:
        return None if field is None else 0
    if field == 0:
        return c.sends
    return (c.sends, c.clicks, c.conversions, c.revenue)


def _decayed_row(d: Decayed | None, now: float, half_life: float) -> tuple[float, ...]:
    if d is None:
        return (0.0, 0.0, 0.0, 0.0)
    d = d.rebased(now, half_life)
    return (d.sends, d.clicks, d.conversions, d.revenue)
