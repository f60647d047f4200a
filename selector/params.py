"""An account's Thompson sampling parameters: the Beta alpha and beta of every creative's
and every offer's click and conversion rates, as the selection would use them at `now`
(`selector.view.posterior`: prior included, decayed counts when forgetting is on), with
the raw counts beside them. The daily job publishes them for readers without Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from selector.domain import Account, BetaPrior
from selector.stats import MICROS, AccountStats, Counts
from selector.view import compile_account, posterior


@dataclass(frozen=True, slots=True)
class ArmParams:
    """Raw counts and Beta parameters of one creative or one offer."""

    sends: int
    clicks: int
    conversions: int
    revenue: float
    ctr_alpha: float
    ctr_beta: float
    cvr_alpha: float
    cvr_beta: float


@dataclass(frozen=True, slots=True)
class AccountParams:
    prior: BetaPrior
    version: int
    creatives: Mapping[str, tuple[str, ArmParams]]  # creative id -> (offer id, params)
    offers: Mapping[str, ArmParams]


def account_params(account: Account, stats: AccountStats, now: float) -> AccountParams:
    """Parameters of every creative and offer of the catalog (counts of creatives the
    catalog no longer has are left out, as the selection leaves them out)."""
    view = compile_account(account)
    post = posterior(view, stats, now)
    creatives: dict[str, tuple[str, ArmParams]] = {}
    offer_counts: dict[str, Counts] = {oid: Counts() for oid in view.offer_ids}
    for i, cid in enumerate(view.creative_ids):
        offer_id = view.offer_ids[view.offer_of[i]]
        counts = stats.creative(cid)
        offer_counts[offer_id] += counts
        beta = (post.ctr_alpha[i], post.ctr_beta[i], post.cvr_alpha[i], post.cvr_beta[i])
        creatives[cid] = (offer_id, _params(counts, beta))
    offers = {
        oid: _params(
            offer_counts[oid],
            (
                post.offer_ctr_alpha[j],
                post.offer_ctr_beta[j],
                post.offer_cvr_alpha[j],
                post.offer_cvr_beta[j],
            ),
        )
        for j, oid in enumerate(view.offer_ids)
    }
    return AccountParams(
        account.settings.prior,
        stats.version,
        MappingProxyType(creatives),
        MappingProxyType(offers),
    )


def _params(counts: Counts, beta: tuple[float, float, float, float]) -> ArmParams:
    return ArmParams(
        counts.sends,
        counts.clicks,
        counts.conversions,
        counts.revenue_micros / MICROS,
        *(float(x) for x in beta),
    )
