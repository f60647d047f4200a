"""The simulation loop: outcomes, feedback delay, cooldowns, the oracle, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector import AccountStats, Event, fold
from selector.batch import ARMS, POOLS
from selector.scenario import Scenario, scenario_from_dict
from selector.simulate import simulate
from selector.stats import MICROS

AUTOMATED, CONTROL = ARMS.index("automated"), ARMS.index("control")


def tiny(**overrides: Any) -> Scenario:
    """Three creatives: a (cpa, $20), b (cto, $4), c (cpa, $20); 100 contacts."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "settings": {"learning_threshold": 50, "cooldown_seconds": 0},
        "campaign": {"campaign_id": "spring", "default_creative_id": "a"},
        "offers": [
            {"offer_id": "o1", "payout": 20},
            {"offer_id": "o2", "payout": 4, "payout_type": "cto"},
        ],
        "creatives": [
            {"creative_id": "a", "offer_id": "o1", "click_rate": 0.10, "conversion_rate": 0.30},
            {"creative_id": "b", "offer_id": "o2", "click_rate": 0.20, "conversion_rate": 0.50},
            {"creative_id": "c", "offer_id": "o1", "click_rate": 0.05, "conversion_rate": 0.20},
        ],
        "contacts": 100,
        "horizon": {"sends": 4000, "sends_per_day": 1000},
        "batch_size": 20,
    }
    doc.update(overrides)
    return scenario_from_dict(doc)


def test_outcomes_follow_the_true_rates_of_each_segment() -> None:
    segments = [{"name": "keen", "share": 0.5, "creatives": {"a": {"click_multiplier": 3}}}]
    sc = tiny(
        campaign={"campaign_id": "x", "default_creative_id": "a", "automated_percent": 0},
        segments=segments,
        contacts=2000,
        horizon={"sends": 60_000, "sends_per_day": 10_000},
        batch_size=1000,
    )
    r = simulate(sc, seed=3)
    assert set(r.arm.tolist()) == {CONTROL} and set(r.creative.tolist()) == {0}
    keen, rest = r.segment == 0, r.segment == 1
    assert 0.4 < keen.mean() < 0.6
    # binomial sd of a click rate over ~30,000 sends is < 0.003; margins are > 4 sd
    assert r.click[keen].mean() == pytest.approx(0.30, abs=0.015)
    assert r.click[rest].mean() == pytest.approx(0.10, abs=0.012)
    assert r.conversion[r.click].mean() == pytest.approx(0.30, abs=0.02)
    assert not (r.conversion & ~r.click).any()
    np.testing.assert_array_equal(r.revenue, np.where(r.conversion, 20.0, 0.0))


def test_per_click_offers_pay_per_click_and_cpa_offers_per_conversion() -> None:
    r = simulate(tiny(), seed=1)
    b = r.creative == 1
    assert b.any() and (~b).any()
    np.testing.assert_array_equal(r.revenue[b], np.where(r.click[b], 4.0, 0.0))
    np.testing.assert_array_equal(r.revenue[~b], np.where(r.conversion[~b], 20.0, 0.0))
    # the stats carry conversion revenue only: a click event has no revenue field
    assert r.final_stats.creative("b").revenue_micros == 0


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not() -> None:
    sc = tiny(settings={"half_life_seconds": 3600, "cooldown_seconds": 7200})
    one, two, other = simulate(sc, 5), simulate(sc, 5), simulate(sc, 6)
    for name in ("time", "contact", "creative", "arm", "pool", "click", "revenue", "oracle"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert one.final_stats.same_counts(two.final_stats)
    assert not np.array_equal(one.creative, other.creative)


def test_nothing_is_learned_from_outcomes_before_the_feedback_delay() -> None:
    sc = tiny(feedback_delay_seconds=10 * 86_400)  # longer than the 4-day horizon
    r = simulate(sc, 2)
    counts = [r.final_stats.creative(cid) for cid in r.creative_ids]
    assert sum(c.sends for c in counts) == len(r)
    assert sum(c.clicks + c.conversions for c in counts) == 0
    assert r.click.sum() > 0


def test_outcomes_reach_the_stats_exactly_when_their_delay_has_passed() -> None:
    delay = 86_400.0
    r = simulate(tiny(feedback_delay_seconds=delay), 2)
    last_batch = r.time.max()
    delivered = r.time + delay <= last_batch
    assert 0 < delivered.mean() < 1
    for k, cid in enumerate(r.creative_ids):
        counts = r.final_stats.creative(cid)
        mine = r.creative == k
        assert counts.sends == mine.sum()
        assert counts.clicks == (r.click & mine & delivered).sum()
        assert counts.conversions == (r.conversion & mine & delivered).sum()


def test_batched_stats_updates_equal_folding_every_event() -> None:
    delay = 3600.0
    sc = tiny(settings={"half_life_seconds": 86_400}, feedback_delay_seconds=delay)
    r = simulate(sc, 4)
    delivered = r.time + delay <= r.time.max()
    payout_micros = np.where(r.creative == 1, 0, 20 * MICROS)  # b is per click
    events = [Event("send", r.creative_ids[k], t) for k, t in zip(r.creative, r.time, strict=True)]
    for i in np.flatnonzero(r.click & delivered):
        events.append(Event("click", r.creative_ids[r.creative[i]], r.time[i] + delay))
    for i in np.flatnonzero(r.conversion & delivered):
        cid, t = r.creative_ids[r.creative[i]], r.time[i] + delay
        events.append(Event("conversion", cid, t, int(payout_micros[i])))
    folded = fold(events, AccountStats(half_life_seconds=86_400))
    assert folded.same_counts(r.final_stats)
    for cid in r.creative_ids:
        mine, theirs = folded.decayed[cid], r.final_stats.decayed[cid]
        assert mine.ref_time == theirs.ref_time
        assert mine.sends == pytest.approx(theirs.sends, rel=1e-9)
        assert mine.clicks == pytest.approx(theirs.clicks, rel=1e-9)


def test_cooldowns_hold_for_every_automated_choice() -> None:
    cooldown = 86_400.0
    sc = tiny(settings={"cooldown_seconds": cooldown}, contacts=40, batch_size=20)
    r = simulate(sc, 7)
    chosen = (r.arm == AUTOMATED) & (r.pool != POOLS.index("fallback"))
    order = np.lexsort((r.time, r.creative, r.contact))
    contact, creative, time = r.contact[order], r.creative[order], r.time[order]
    repeat = (contact[1:] == contact[:-1]) & (creative[1:] == creative[:-1])
    too_soon = repeat & (time[1:] - time[:-1] < cooldown)
    assert too_soon.sum() > 0  # the control and the fallback do repeat within the cooldown
    assert not (too_soon & chosen[order][1:]).any()
    # 40 contacts, 20 a batch, a send every 28.8 min: all three creatives cool down often
    fallback = r.pool == POOLS.index("fallback")
    assert fallback.any()
    np.testing.assert_array_equal(r.oracle[fallback], r.expected[fallback])


def test_the_oracle_takes_the_best_eligible_creative() -> None:
    r = simulate(tiny(), 1)
    # no cooldown, no segments: the oracle is always b (0.2 x $4 = 0.8 per send)
    np.testing.assert_allclose(r.oracle, 0.8)
    values = np.array([0.1 * 0.3 * 20, 0.2 * 4, 0.05 * 0.2 * 20])
    np.testing.assert_allclose(r.expected, values[r.creative])
    assert (r.regret >= -1e-12).all()


def test_the_clicks_goal_values_click_rates() -> None:
    r = simulate(tiny(settings={"goal": "clicks", "cooldown_seconds": 0}), 1)
    np.testing.assert_allclose(r.oracle, 0.2)
    np.testing.assert_allclose(r.expected, np.array([0.1, 0.2, 0.05])[r.creative])


def test_changes_take_effect_at_their_time() -> None:
    changes = [
        {"at_seconds": 86_400, "creative_id": "c", "status": "active", "click_rate": 0.5},
        {"at_seconds": 86_400, "creative_id": "b", "click_multiplier": 0.5},
    ]
    creatives = [
        {"creative_id": "a", "offer_id": "o1", "click_rate": 0.10, "conversion_rate": 0.30},
        {"creative_id": "b", "offer_id": "o2", "click_rate": 0.20, "conversion_rate": 0.50},
        {"creative_id": "c", "offer_id": "o1", "click_rate": 0.05, "conversion_rate": 0.20,
         "status": "paused"},
    ]  # fmt: skip
    r = simulate(tiny(creatives=creatives, changes=changes), 1)
    before, after = r.time < 86_400, r.time >= 86_400
    automated = r.arm == AUTOMATED
    assert not (r.creative[before & automated] == 2).any()
    assert (r.creative[after & automated] == 2).any()
    np.testing.assert_allclose(r.oracle[before], 0.8)
    np.testing.assert_allclose(r.oracle[after], 0.5 * 0.2 * 20)
    b_after = after & (r.creative == 1)
    np.testing.assert_allclose(r.expected[b_after], 0.1 * 4)


def test_progress_is_reported_after_every_batch() -> None:
    seen: list[tuple[int, int]] = []
    sc = tiny(horizon={"sends": 95, "sends_per_day": 1000})
    simulate(sc, 0, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(20, 95), (40, 95), (60, 95), (80, 95), (95, 95)]


EXPONENTIAL_HOUR = {"distribution": "exponential", "median_seconds": 3600}
LOGNORMAL_DAY = {"distribution": "lognormal", "median_seconds": 86_400, "sigma": 1.0}


def test_each_click_and_conversion_arrives_after_its_own_delay() -> None:
    sc = tiny(
        feedback_delays={"click": EXPONENTIAL_HOUR, "conversion": LOGNORMAL_DAY},
        horizon={"sends": 40_000, "sends_per_day": 4000},
        contacts=1000,
        batch_size=200,
    )
    r = simulate(sc, 3)
    assert r.click_at is not None and r.conversion_at is not None
    click_delay = (r.click_at - r.time)[r.click]
    conversion_delay = (r.conversion_at - r.click_at)[r.conversion]
    assert np.isnan(r.click_at[~r.click]).all() and np.isnan(r.conversion_at[~r.conversion]).all()
    # ~4,000 clicks and ~800 conversions: the sample median's sd is < 3% and < 5%
    assert np.median(click_delay) == pytest.approx(3600, rel=0.1)
    assert np.median(conversion_delay) == pytest.approx(86_400, rel=0.2)
    now = r.time.max()
    for k, cid in enumerate(r.creative_ids):
        counts, mine = r.final_stats.creative(cid), r.creative == k
        assert counts.clicks == (mine & r.click & (r.click_at <= now)).sum()
        assert counts.conversions == (mine & r.conversion & (r.conversion_at <= now)).sum()


def test_delays_shorter_than_a_batch_are_not_rounded_to_one() -> None:
    # a batch every 0.02 days (1,728 s); clicks arrive after a median of 600 s, so most of
    # a batch's clicks, but not all, are in the stats when the next batch is decided
    sc = tiny(feedback_delays={"click": {"distribution": "exponential", "median_seconds": 600}})
    r = simulate(sc, 5)
    assert r.click_at is not None
    interval = np.diff(np.unique(r.time))[0]
    arrived_by_next = (r.click_at - r.time <= interval)[r.click]
    assert 0.75 < arrived_by_next.mean() < 0.97  # 1 - 2^(-1728 / 600) = 0.864
    constant = simulate(tiny(feedback_delay_seconds=600), 5)
    assert constant.click_at is not None
    np.testing.assert_allclose((constant.click_at - constant.time)[constant.click], 600)
