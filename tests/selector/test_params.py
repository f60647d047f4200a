"""Thompson parameters for the snapshot: the posterior the selection uses, per creative
and per offer, with raw counts beside them."""

from __future__ import annotations

import pytest

from selector import account_from_dict
from selector.params import account_params
from selector.stats import AccountStats, Event, fold

ACCOUNT = {
    "account_id": "acme",
    "settings": {"prior": {"alpha": 2, "beta": 3}},
    "offers": [{"offer_id": "loan", "payout": 30}, {"offer_id": "survey", "payout": 4}],
    "creatives": [
        {"creative_id": "a", "offer_id": "loan"},
        {"creative_id": "b", "offer_id": "loan"},
        {"creative_id": "c", "offer_id": "survey"},
    ],
    "campaigns": [{"campaign_id": "k", "default_creative_id": "a"}],
}


def events(creative: str, sends: int, clicks: int, conversions: int) -> list[Event]:
    out = [Event("send", creative, 1.0)] * sends + [Event("click", creative, 2.0)] * clicks
    return out + [Event("conversion", creative, 3.0, 1_500_000)] * conversions


def test_alpha_and_beta_are_the_prior_plus_counts_per_creative_and_offer() -> None:
    stats = fold(events("a", 100, 10, 2) + events("b", 50, 5, 0) + events("x", 7, 7, 7))
    params = account_params(account_from_dict(ACCOUNT), stats, now=10.0)
    assert params.version == stats.version
    assert (params.prior.alpha, params.prior.beta) == (2, 3)
    offer, a = params.creatives["a"]
    assert offer == "loan"
    assert (a.sends, a.clicks, a.conversions, a.revenue) == (100, 10, 2, 3.0)
    # the conversion-rate prior adds b's 5 clicks at their rate (0 + 2) / (5 + 5)
    assert (a.ctr_alpha, a.ctr_beta, a.cvr_alpha, a.cvr_beta) == (12, 93, 4 + 1, 11 + 4)
    loan = params.offers["loan"]
    assert (loan.sends, loan.clicks, loan.conversions) == (150, 15, 2)
    assert (loan.ctr_alpha, loan.ctr_beta, loan.cvr_alpha, loan.cvr_beta) == (17, 138, 4, 16)
    assert params.creatives["c"][1].ctr_alpha == 2 and params.offers["survey"].sends == 0
    assert "x" not in params.creatives  # counts of a creative the catalog no longer has


def test_with_forgetting_the_parameters_are_the_decayed_counts_at_now() -> None:
    document = {**ACCOUNT, "settings": {"prior": {"alpha": 1, "beta": 1}, "half_life_seconds": 10}}
    stats = fold(events("a", 4, 2, 0), AccountStats(half_life_seconds=10.0))
    params = account_params(account_from_dict(document), stats, now=22.0)
    _, a = params.creatives["a"]
    assert a.sends == 4  # raw counts stay raw
    assert a.ctr_alpha == pytest.approx(1 + 2 * 2 ** (-20 / 10))
    assert a.ctr_beta == pytest.approx(1 + 4 * 2 ** (-21 / 10) - 2 * 2 ** (-20 / 10))
