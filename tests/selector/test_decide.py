"""The decision of DESIGN.md section 2, step by step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector import (
    AccountStats,
    Request,
    RequestBatch,
    Selector,
    UnknownCampaign,
    account_from_dict,
)
from selector.batch import ARMS, DECIDED_BY, POOLS
from tests.conftest import make_account_dict, stats_from

GRADUATED = {f"cr{i}": (5000, 400 + 60 * i, 40 + 5 * i, (40 + 5 * i) * 30.0) for i in range(4)}


def make_selector(creatives: int = 4, automated_percent: float = 80.0, **settings: Any) -> Selector:
    doc = make_account_dict(creatives, settings=settings, automated_percent=automated_percent)
    return Selector(account_from_dict(doc))


def contacts(n: int, prefix: str = "c") -> RequestBatch:
    return RequestBatch.from_columns(
        ["camp-1"] * n, [f"{prefix}{i}" for i in range(n)], np.zeros(n)
    )


# --- control split ---------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(pct=st.floats(min_value=0, max_value=100), prefix=st.text(min_size=1, max_size=6))
def test_control_split_hits_automated_percent(pct: float, prefix: str) -> None:
    sel = make_selector(automated_percent=pct)
    result = sel.decide_batch(AccountStats(), contacts(4000, prefix), np.random.default_rng(0))
    share = np.mean(result.arm == ARMS.index("automated"))
    # binomial sd at n=4000 is <= 0.8 points; 4 points is > 5 sd
    assert abs(share - pct / 100) < 0.04
    if pct == 0:
        assert share == 0
    if pct == 100:
        assert share == 1


@settings(max_examples=15, deadline=None)
@given(seed_a=st.integers(0, 2**32), seed_b=st.integers(0, 2**32), split=st.integers(1, 999))
def test_a_contact_never_changes_arm_or_method(seed_a: int, seed_b: int, split: int) -> None:
    sel = make_selector(methods={"thompson_single_step": 60, "random": 30, "thompson_two_step": 10})
    whole = contacts(1000)
    stats = stats_from(GRADUATED)
    one = sel.decide_batch(stats, whole, np.random.default_rng(seed_a))
    # the same contacts in two other batches, other stats, another generator
    ids = list(whole.contact_ids)
    parts = [ids[:split], ids[split:]]
    arms, methods = [], []
    for part in parts:
        b = RequestBatch.from_columns(["camp-1"] * len(part), part, np.full(len(part), 50.0))
        r = sel.decide_batch(AccountStats(), b, np.random.default_rng(seed_b))
        arms.append(r.arm)
        methods.append(r.method)
    assert np.array_equal(one.arm, np.concatenate(arms))
    assert np.array_equal(one.method, np.concatenate(methods))


def test_control_gets_the_default_creative_with_certainty() -> None:
    sel = make_selector(automated_percent=50)
    r = sel.decide_batch(stats_from(GRADUATED), contacts(2000), np.random.default_rng(1))
    control = r.arm == ARMS.index("control")
    assert control.any()
    assert set(r.creative[control]) == {0}
    assert {DECIDED_BY[m] for m in r.method[control]} == {"default"}
    assert {POOLS[p] for p in r.pool[control]} == {"control"}
    assert np.all(r.propensity[control] == 1.0)


def test_split_is_independent_across_campaigns() -> None:
    doc = make_account_dict(
        campaigns=[
            {"campaign_id": "a", "default_creative_id": "cr0", "automated_percent": 50},
            {"campaign_id": "b", "default_creative_id": "cr0", "automated_percent": 50},
        ]
    )
    sel = Selector(account_from_dict(doc))
    ids = [f"x{i}" for i in range(6000)]
    ra = sel.decide_batch(
        AccountStats(),
        RequestBatch.from_columns(["a"] * 6000, ids, np.zeros(6000)),
        np.random.default_rng(0),
    )
    rb = sel.decide_batch(
        AccountStats(),
        RequestBatch.from_columns(["b"] * 6000, ids, np.zeros(6000)),
        np.random.default_rng(0),
    )
    both = np.mean((ra.arm == 0) & (rb.arm == 0))
    assert abs(both - 0.25) < 0.03  # independent halves overlap a quarter of the time


# --- routing -----------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(weights=st.lists(st.integers(0, 100), min_size=3, max_size=3).filter(lambda w: sum(w) > 0))
def test_routing_hits_traffic_pct(weights: list[int]) -> None:
    total = sum(weights)
    pcts = [100 * w / total for w in weights]
    pcts[-1] = 100 - sum(pcts[:-1])
    names = ["thompson_single_step", "random", "thompson_two_step"]
    methods = [{"method": n, "traffic_pct": p} for n, p in zip(names, pcts, strict=True) if p > 0]
    sel = make_selector(automated_percent=100, methods=methods)
    r = sel.decide_batch(stats_from(GRADUATED), contacts(5000), np.random.default_rng(2))
    for m in methods:
        share = np.mean(r.method == DECIDED_BY.index(m["method"]))
        assert abs(share - m["traffic_pct"] / 100) < 0.035


# --- learning pool -------------------------------------------------------------------------


def test_pool_mode_sends_a_new_account_uniformly_to_learning_creatives() -> None:
    sel = make_selector(automated_percent=100, learning_mode="pool")
    r = sel.decide_batch(AccountStats(), contacts(8000), np.random.default_rng(3))
    assert {POOLS[p] for p in r.pool} == {"learning"}
    counts = np.bincount(r.creative, minlength=4) / 8000
    assert np.all(np.abs(counts - 0.25) < 0.03)
    assert np.allclose(r.propensity, 0.25)


def test_pool_mode_gives_the_learning_share_to_learning_creatives_when_both_exist() -> None:
    rows = dict(GRADUATED)
    rows["cr3"] = (100, 10, 1, 30.0)  # still learning
    sel = make_selector(automated_percent=100, learning_pct=10, learning_mode="pool")
    r = sel.decide_batch(stats_from(rows), contacts(10_000), np.random.default_rng(4))
    learning = r.pool == POOLS.index("learning")
    assert abs(np.mean(learning) - 0.10) < 0.015
    assert set(r.creative[learning]) == {3}
    assert np.allclose(r.propensity[learning], 0.10)
    assert 3 not in set(r.creative[~learning])


def test_creative_graduates_at_the_threshold() -> None:
    rows = dict(GRADUATED)
    rows["cr3"] = (2999, 300, 30, 900.0)
    sel = make_selector(automated_percent=100, learning_threshold=3000)
    learning_before = sel.decide_batch(stats_from(rows), contacts(300), np.random.default_rng(5))
    rows["cr3"] = (3000, 300, 30, 900.0)
    after = sel.decide_batch(stats_from(rows), contacts(300), np.random.default_rng(5))
    assert (learning_before.pool == POOLS.index("learning")).any()
    assert not (after.pool == POOLS.index("learning")).any()


# --- cooldown --------------------------------------------------------------------------------


def test_cooldown_blocks_until_it_expires() -> None:
    sel = make_selector(automated_percent=100, cooldown_seconds=5 * 86400, methods={"random": 100})
    sent = {"cr0": 0.0, "cr1": 0.0, "cr2": 0.0}
    just_before = RequestBatch.from_columns(
        ["camp-1"] * 200, [f"c{i}" for i in range(200)], np.full(200, 5 * 86400 - 1.0), [sent] * 200
    )
    at_expiry = RequestBatch.from_columns(
        ["camp-1"] * 200, [f"c{i}" for i in range(200)], np.full(200, 5 * 86400.0), [sent] * 200
    )
    blocked = sel.decide_batch(AccountStats(), just_before, np.random.default_rng(6))
    free = sel.decide_batch(AccountStats(), at_expiry, np.random.default_rng(6))
    assert set(blocked.creative) == {3}
    assert set(free.creative) == {0, 1, 2, 3}


def test_unknown_creatives_in_the_cooldown_state_are_ignored() -> None:
    sel = make_selector(automated_percent=100, methods={"random": 100})
    b = RequestBatch.from_columns(["camp-1"], ["c"], [10.0], [{"retired": 5.0}])
    assert sel.decide_batch(AccountStats(), b, np.random.default_rng(0))[0].pool == "uniform"


# --- scoring ------------------------------------------------------------------------------------


def test_clearly_best_creative_wins_almost_always() -> None:
    rows = {f"cr{i}": (20_000, 1000, 100, 3000.0) for i in range(4)}
    rows["cr2"] = (20_000, 3000, 300, 9000.0)
    sel = make_selector(automated_percent=100, goal="clicks")
    r = sel.decide_batch(stats_from(rows), contacts(2000), np.random.default_rng(7))
    assert np.mean(r.creative == 2) > 0.99


def test_revenue_goal_ignores_conversion_rate_of_per_click_offers() -> None:
    # cr1 is on the cto offer (payout 25): 10% ctr -> RPS 2.5 whatever its conversions.
    # cr0 is cpa (payout 30): 10% ctr x 10% cvr -> RPS 0.3.
    rows = {"cr0": (20_000, 2000, 200, 6000.0), "cr1": (20_000, 2000, 0, 0.0)}
    sel = make_selector(creatives=2, automated_percent=100)
    r = sel.decide_batch(stats_from(rows), contacts(1000), np.random.default_rng(8))
    assert np.mean(r.creative == 1) > 0.99
    clicks = make_selector(creatives=2, automated_percent=100, goal="clicks")
    r2 = clicks.decide_batch(stats_from(rows), contacts(4000), np.random.default_rng(8))
    assert 0.4 < np.mean(r2.creative == 1) < 0.6  # same click rates: a coin flip


def test_payout_floor_lifts_low_payouts_for_scoring() -> None:
    doc = make_account_dict(
        creatives=2, offers=(("low", 2.0, "cpa"), ("high", 15.0, "cpa")), automated_percent=100
    )
    rows = {"cr0": (50_000, 5000, 1000, 2000.0), "cr1": (50_000, 5000, 700, 10_500.0)}
    stats = stats_from(rows)
    floored = Selector(account_from_dict(doc))  # floor 20: both offers score at 20
    r = floored.decide_batch(stats, contacts(1000), np.random.default_rng(9))
    assert np.mean(r.creative == 0) > 0.95  # more conversions wins once payouts are floored
    doc["settings"] = {"payout_floor": 0}
    raw = Selector(account_from_dict(doc))
    r2 = raw.decide_batch(stats, contacts(1000), np.random.default_rng(9))
    assert np.mean(r2.creative == 1) > 0.95


def test_two_step_picks_the_best_offer_then_the_best_creative_in_it() -> None:
    doc = make_account_dict(
        creatives=4,
        offers=(("o1", 30.0, "cpa"), ("o2", 30.0, "cpa")),
        automated_percent=100,
        settings={"methods": {"thompson_two_step": 100}, "learning_threshold": 1000},
    )
    # offer o1 = cr0 + cr2 has the better total; within it cr2 is better.
    rows = {
        "cr0": (20_000, 2000, 200, 0.0),
        "cr2": (20_000, 2600, 260, 0.0),
        "cr1": (20_000, 1000, 100, 0.0),
        "cr3": (2_000, 280, 28, 0.0),  # the best single rate, but on the weaker offer
    }
    sel = Selector(account_from_dict(doc))
    r = sel.decide_batch(stats_from(rows), contacts(2000), np.random.default_rng(10))
    assert np.mean(r.creative == 2) > 0.95
    doc["settings"]["methods"] = {"thompson_single_step": 100}
    single = Selector(account_from_dict(doc))
    r1 = single.decide_batch(stats_from(rows), contacts(2000), np.random.default_rng(10))
    assert np.mean(r1.creative == 3) > 0.5  # scored alone, cr3's higher rate wins often


def test_exploration_floor_gives_every_scored_creative_a_minimum_share() -> None:
    rows = {f"cr{i}": (50_000, 2500, 250, 7500.0) for i in range(4)}
    rows["cr3"] = (50_000, 5000, 500, 15000.0)
    sel = make_selector(automated_percent=100, exploration_floor_pct=20)
    r = sel.decide_batch(stats_from(rows), contacts(20_000), np.random.default_rng(11))
    shares = np.bincount(r.creative, minlength=4) / 20_000
    assert np.all(shares[:3] > 0.04)  # 20% / 4 = 5% each at least
    assert np.allclose(r.propensity[r.creative == 0], 0.05, atol=0.01)


# --- manual ---------------------------------------------------------------------------------


def test_manual_campaign_rotates_round_robin_over_its_subset() -> None:
    doc = make_account_dict(
        creatives=4,
        campaigns=[
            {
                "campaign_id": "m",
                "default_creative_id": "cr0",
                "mode": "manual",
                "manual_creative_ids": ["cr3", "cr1"],
                "rotation": "round_robin",
            }
        ],
    )
    sel = Selector(account_from_dict(doc))
    b = RequestBatch.from_columns(["m"] * 5, list("abcde"), np.zeros(5))
    r = sel.decide_batch(AccountStats(), b, np.random.default_rng(0))
    assert [d.creative_id for d in r.decisions()] == ["cr1", "cr3", "cr1", "cr3", "cr1"]
    assert {d.arm for d in r.decisions()} == {"manual"}
    again = sel.decide_batch(AccountStats(), b, np.random.default_rng(0), r.rotation)
    assert again[0].creative_id == "cr3"  # the rotation continues where it stopped


# --- batch and single -----------------------------------------------------------------------


def test_batch_choices_have_the_distribution_of_single_decisions() -> None:
    sel = make_selector(automated_percent=100)
    stats = stats_from(GRADUATED)
    rng = np.random.default_rng(12)
    n = 3000
    singles = np.array(
        [
            sel.view.creative_index[
                sel.decide(stats, Request("camp-1", f"s{i}", 0.0), rng).creative_id
            ]
            for i in range(n)
        ]
    )
    batched = sel.decide_batch(stats, contacts(n), rng).creative
    a = np.bincount(singles, minlength=4)
    b = np.bincount(batched, minlength=4)
    # chi-square test of homogeneity, 3 dof; 16.27 is the 0.1% critical value
    expected = (a + b) / 2
    chi2 = float(
        np.sum(np.where(expected > 0, (a - expected) ** 2 / np.maximum(expected, 1), 0)) * 2
    )
    assert chi2 < 16.27


def test_unknown_campaign_is_reported_by_id() -> None:
    sel = make_selector()
    b = RequestBatch.from_columns(["camp-1", "nope", "gone"], ["a", "b", "c"], np.zeros(3))
    with pytest.raises(UnknownCampaign) as info:
        sel.decide_batch(AccountStats(), b, np.random.default_rng(0))
    assert info.value.campaign_ids == ("gone", "nope")


def test_decision_carries_the_stats_version() -> None:
    sel = make_selector(automated_percent=100)
    stats = AccountStats().apply("send", "cr1", 1.0).apply("click", "cr1", 2.0)
    d = sel.decide(stats, Request("camp-1", "c", 3.0), np.random.default_rng(0))
    assert d.stats_version == 2
