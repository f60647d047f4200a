"""Feedback timing: an exact, order-independent fold; delay estimates; pending sends."""

from __future__ import annotations

import json
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector import AccountStats, Event, account_from_dict, fold
from selector.delay_estimate import estimate, exposure
from selector.reconcile import Tally
from selector.stats import Counts
from selector.timing import (
    CLICK_WINDOW,
    CONVERSION_WINDOW,
    DELAY_EDGES,
    PRIORS,
    Timing,
    delay_bin,
)
from selector.view import compile_account, posterior
from tests.conftest import make_account_dict

HOUR, DAY = 3600.0, 86_400.0


@st.composite
def timed_events(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 40))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["send", "click", "conversion"]))
        time = draw(st.floats(0, 10 * DAY))
        origin = None
        if kind != "send" and draw(st.booleans()):
            origin = time - draw(st.floats(0, 2 * DAY))
        out.append(Event(kind, draw(st.sampled_from(["a", "b"])), time, 0, origin))
    return out


@settings(max_examples=80, deadline=None)
@given(events=timed_events(), data=st.data())
def test_timing_does_not_depend_on_arrival_order(events: list[Event], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    assert fold(events).timing == fold(shuffled).timing


@settings(max_examples=40, deadline=None)
@given(first=timed_events(), second=timed_events())
def test_timing_merges_like_one_fold_and_subtracts_exactly(
    first: list[Event], second: list[Event]
) -> None:
    a, b = fold(first), fold(second)
    assert a.merge(b).timing == fold(first + second).timing
    both = fold(first + second).timing
    diff = both.merge(b.timing, -1)
    assert diff.click_delays == a.timing.click_delays
    assert diff.conversion_delays == a.timing.conversion_delays


def test_buckets_cover_only_the_recent_window_and_delays_are_binned() -> None:
    events = [Event("send", "a", t * HOUR) for t in range(0, 72)]
    events += [Event("click", "a", 71 * HOUR + 30, 0, 71 * HOUR)]
    timing = fold(events).timing
    assert timing.latest == 71 * HOUR + 30
    kept = sum(n for n, _ in timing.sends["a"].values())
    assert kept == 25  # sends within the last 24 h (and the bucket straddling its start)
    assert sum(timing.click_delays) == 1 and timing.click_delays[delay_bin(30.0)] == 1
    assert DELAY_EDGES[delay_bin(30.0)] <= 30.0 < DELAY_EDGES[delay_bin(30.0) + 1]
    assert delay_bin(-5.0) == 0 and delay_bin(1e12) == len(DELAY_EDGES) - 1
    late = fold([Event("send", "a", 0.0)], AccountStats(timing=timing)).timing
    assert late.sends == timing.sends  # older than the window: counted, not bucketed


def stream_with_delays(
    days: float, per_hour: int, median: float, seed: int
) -> tuple[AccountStats, float]:
    """Sends at a steady rate, 10% clicked after an exponential delay; events that have
    not arrived by the end are left out, as a live stream would."""
    rng = np.random.default_rng(seed)
    sends = np.sort(rng.uniform(0, days * DAY, int(days * 24 * per_hour)))
    end = days * DAY
    clicked = sends[rng.random(sends.size) < 0.10]
    arrive = clicked + rng.exponential(median / np.log(2), clicked.size)
    seen = arrive <= end
    send_part = Timing.of_columns("send", ("a",), np.zeros(sends.size, int), sends)
    click_part = Timing.of_columns(
        "click", ("a",), np.zeros(int(seen.sum()), int), arrive[seen], clicked[seen]
    )
    counts = {"a": Counts(int(sends.size), int(seen.sum()))}
    stats = AccountStats(MappingProxyType(counts), timing=send_part.merge(click_part))
    return stats, end


@pytest.mark.parametrize("median", [30 * 60.0, 6 * HOUR])
def test_the_delay_estimate_recovers_the_true_distribution(median: float) -> None:
    stats, _ = stream_with_delays(days=3, per_hour=400, median=median, seed=1)
    estimate = stats.timing.delay_cdf("click", stats.creative("a").sends)
    assert estimate is not None
    for t in (median / 4, median, 4 * median):
        truth = 1 - 2 ** (-t / median)
        # ~2,800 clicks; the censoring correction keeps the estimate within 0.04
        assert float(estimate(np.array([t]))[0]) == pytest.approx(truth, abs=0.04)
    assert estimate.quantile(0.5) == pytest.approx(median, rel=0.15)


def test_without_observed_delays_there_is_no_estimate() -> None:
    events = [Event("send", "a", 0.0), Event("click", "a", 10.0)]  # no origin time
    assert fold(events).timing.delay_cdf("click", 1) is None


def test_with_few_observed_delays_the_estimate_is_the_prior_law() -> None:
    events = [Event("send", "a", 0.0), Event("click", "a", 10.0, origin_time=0.0)]
    events += [Event("conversion", "a", 20.0, origin_time=10.0)]
    for kind, window in (("click", CLICK_WINDOW), ("conversion", CONVERSION_WINDOW)):
        estimate = fold(events).timing.delay_cdf(kind, 1)
        assert estimate is not None
        # 99% of the prior's delays fall inside the window; the median is well inside
        assert float(estimate(np.array([window]))[0]) == pytest.approx(0.99, abs=0.01)
        assert window / 20 < estimate.quantile(0.5) < window / 5


def test_the_prior_keeps_a_fit_to_the_first_short_delays_from_a_median_of_days() -> None:
    # 14 hours of clicks, 20% converting a median of a day after the click (sigma 1):
    # the ~50 conversions seen are the law's left tail, which a median of a day at a
    # low rate and one of days at a high rate explain alike
    edges = np.array(DELAY_EDGES)
    medians = {}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        ages = rng.uniform(0.0, 14 * HOUR, 2_400)
        delays = np.exp(rng.normal(np.log(DAY), 1.0, ages.size))
        seen = (rng.random(ages.size) < 0.2) & (delays < ages)
        counts = np.zeros(edges.size)
        np.add.at(counts, [delay_bin(d) for d in delays[seen]], 1)
        at_risk = exposure(edges, ages, np.ones(ages.size), 0.0)
        for prior in (None, PRIORS["conversion"]):
            fitted = estimate(edges, counts, at_risk, float(ages.size), prior)
            medians[seed, prior is None] = fitted.quantile(0.5)
    # the likelihood alone: medians from 19 hours to 7 days; with the prior 18 to 30 hours
    assert max(m for (_, alone), m in medians.items() if alone) > 2 * DAY
    assert all(DAY / 2 < m < 1.5 * DAY for (_, alone), m in medians.items() if not alone)


def test_the_posterior_counts_a_send_whose_click_may_still_arrive_as_part_of_a_send() -> None:
    # a day of history (sends and clicks, 30-min delays), then a blast of 5,000 sends a
    # minute before the decision: almost none of their clicks can have arrived yet
    stats, end = stream_with_delays(days=1, per_hour=500, median=30 * 60.0, seed=2)
    blast = Timing.of_columns("send", ("cr0",), np.zeros(5000, int), np.full(5000, end - 60))
    history = AccountStats(
        {"cr0": stats.creative("a")},  # type: ignore[arg-type]
        timing=Timing(
            stats.timing.latest,
            {"cr0": stats.timing.sends["a"]},
            stats.timing.clicks,
            stats.timing.click_delays,
        ),
    )
    after = history.merge(AccountStats({"cr0": Counts(5000)}, timing=blast))  # type: ignore[arg-type]
    view = compile_account(account_from_dict(make_account_dict(creatives=1)))
    post = posterior(view, after, end)
    plain = posterior(view, AccountStats(after.counts), end)
    n, c = after.creative("cr0").sends, after.creative("cr0").clicks
    assert plain.ctr_beta[0] == 1 + n - c
    # matured sends: the history less its last ~30 min, and none of the blast
    matured = post.ctr_beta[0] - 1 + c
    assert n - 5000 - 600 < matured < n - 5000 - 150
    assert post.ctr_alpha[0] / (post.ctr_alpha[0] + post.ctr_beta[0]) == pytest.approx(
        0.10, abs=0.01
    )
    assert plain.ctr_alpha[0] / (plain.ctr_alpha[0] + plain.ctr_beta[0]) < 0.085


@settings(max_examples=60, deadline=None)
@given(events=timed_events())
def test_the_batch_builders_and_the_daily_tally_equal_the_event_fold(events: list[Event]) -> None:
    folded = fold(events).timing
    rows = [(e.kind, e.creative_id, e.time, e.origin_time) for e in events]
    assert Timing.of_events(rows) == folded
    tally = Tally()
    for e in events:
        tally.add(e.kind, e.creative_id, e.time, e.revenue_micros, e.origin_time)
    assert tally.stats().timing == folded
    for kind in ("send", "click", "conversion"):
        mine = [e for e in events if e.kind == kind]
        origins = np.array([np.nan if e.origin_time is None else e.origin_time for e in mine])
        columns = Timing.of_columns(
            kind,
            ("a", "b"),
            np.array([("a", "b").index(e.creative_id) for e in mine], dtype=np.intp),
            np.array([e.time for e in mine]),
            origins,
        )
        alone = Timing.of_events([r for r in rows if r[0] == kind])
        assert columns == alone


def test_timing_survives_a_json_round_trip() -> None:
    stats, _ = stream_with_delays(days=1, per_hour=50, median=600.0, seed=3)
    plain = json.loads(json.dumps(stats.timing.to_plain()))
    assert Timing.from_plain(plain) == stats.timing
    assert Timing.from_plain(None) == Timing() and Timing().to_plain()["latest"] is None


def test_each_parent_is_weighted_by_its_creatives_rate_when_the_mix_shifts() -> None:
    # clicks of a 10%-converting creative for a day and a half, then of a 40% one: the
    # young clicks convert more often, which an unweighted estimate reads as short delays
    rng = np.random.default_rng(0)
    end = 3 * DAY
    clicked = np.sort(rng.uniform(0, end, 12_000))
    who = (clicked > end / 2).astype(int)
    converts = rng.random(clicked.size) < np.array([0.1, 0.4])[who]
    arrive = clicked + np.exp(rng.normal(np.log(12 * HOUR), 1.0, clicked.size))
    seen = converts & (arrive <= end)
    ids = ("low", "high")
    timing = Timing.of_columns("click", ids, who, clicked).merge(
        Timing.of_columns("conversion", ids, who[seen], arrive[seen], clicked[seen])
    )
    clicks = {c: int((who == k).sum()) for k, c in enumerate(ids)}
    conversions = {c: int((seen & (who == k)).sum()) for k, c in enumerate(ids)}
    estimate = timing.merge(Timing(end)).delay_cdf("conversion", clicks, conversions)
    pooled = timing.merge(Timing(end)).delay_cdf("conversion", sum(clicks.values()))
    assert estimate is not None and pooled is not None
    at = np.array([3 * HOUR, 12 * HOUR, 2 * DAY])
    truth = np.array([0.0828, 0.5, 0.9171])  # log-normal, median 12 h, sigma 1
    assert np.abs(estimate(at) - truth).max() < 0.04
    assert pooled(at)[1] - truth[1] > 0.06  # the case is one the weighting has to fix
