"""Report arithmetic on synthetic arrays with known answers, and interval coverage."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from selector import AccountStats
from selector.batch import ARMS, DECIDED_BY
from selector.report import Summary, build_report, ratio_lift
from selector.simulate import SimulationResult

Z95 = 1.959963984540054


def bernoulli(ones: int, n: int) -> np.ndarray:
    return (np.arange(n) < ones).astype(float)


def test_lift_and_interval_match_the_delta_method_by_hand() -> None:
    lift = ratio_lift("click_rate", bernoulli(140, 1000), bernoulli(110, 1000))
    p_t, p_c = 0.14, 0.11
    # the cluster-robust variance with one send per cluster is p(1-p)/(n-1)
    se = math.sqrt(p_t * (1 - p_t) / 999 / p_t**2 + p_c * (1 - p_c) / 999 / p_c**2)
    assert lift.treatment == pytest.approx(p_t)
    assert lift.control == pytest.approx(p_c)
    assert lift.lift == pytest.approx(p_t / p_c - 1)
    assert lift.low == pytest.approx(math.exp(math.log(p_t / p_c) - Z95 * se) - 1)
    assert lift.high == pytest.approx(math.exp(math.log(p_t / p_c) + Z95 * se) - 1)
    assert lift.low < lift.lift < lift.high


def test_a_large_sample_excludes_zero_and_an_equal_one_does_not() -> None:
    big = ratio_lift("click_rate", bernoulli(14_000, 100_000), bernoulli(11_000, 100_000))
    assert big.excludes_zero and big.low > 0.2
    same = ratio_lift("click_rate", bernoulli(1100, 10_000), bernoulli(1100, 10_000))
    assert same.lift == pytest.approx(0.0) and same.low < 0 < same.high


def test_repeated_sends_of_a_contact_do_not_count_as_independent_evidence() -> None:
    t, c = bernoulli(140, 1000), bernoulli(110, 1000)
    base = ratio_lift("click_rate", t, c)
    twice_t, twice_c = np.repeat(t, 2), np.repeat(c, 2)
    naive = ratio_lift("click_rate", twice_t, twice_c)
    clusters = np.repeat(np.arange(1000), 2)
    clustered = ratio_lift("click_rate", twice_t, twice_c, clusters, clusters)
    assert naive.high - naive.low < 0.75 * (base.high - base.low)
    assert clustered.low == pytest.approx(base.low)
    assert clustered.high == pytest.approx(base.high)


@pytest.mark.parametrize(
    ("metric", "draw", "truth"),
    [
        ("click_rate", lambda rng, p, n: (rng.random(n) < p).astype(float), 0.14 / 0.11 - 1),
        # revenue: rare conversions at a $20 payout, the skewed case
        ("rps", lambda rng, p, n: 20.0 * (rng.random(n) < p / 5), 0.14 / 0.11 - 1),
    ],
)
def test_the_interval_covers_the_truth_about_95_percent_of_the_time(
    metric: str, draw: Any, truth: float
) -> None:
    rng = np.random.default_rng(20240601)
    reps, covered = 400, 0
    for _ in range(reps):
        lift = ratio_lift(metric, draw(rng, 0.14, 4000), draw(rng, 0.11, 4000))
        covered += lift.low <= truth <= lift.high
    # sd of the coverage over 400 repetitions is 1.1 points; the band is +-4 points
    assert 0.91 <= covered / reps <= 0.99


def test_a_missing_or_zero_control_gives_no_lift() -> None:
    empty = ratio_lift("rps", bernoulli(5, 10), np.zeros(0))
    zero = ratio_lift("rps", bernoulli(5, 10), np.zeros(10))
    assert math.isnan(empty.lift) and math.isnan(zero.lift) and not zero.excludes_zero


def test_summary_rates() -> None:
    s = Summary("x", sends=200, clicks=20, conversions=5, revenue=50.0, expected_value=0.3)
    assert (s.click_rate, s.conversion_rate, s.revenue_per_send) == (0.1, 0.25, 0.25)
    assert math.isnan(Summary("y", 0, 0, 0, 0.0, math.nan).click_rate)


def synthetic_result() -> SimulationResult:
    """Four sends a day for two days: automated sends 0-5, control 6-7."""
    auto, ctl = ARMS.index("automated"), ARMS.index("control")
    ts, rand = DECIDED_BY.index("thompson_single_step"), DECIDED_BY.index("random")
    n = 8
    columns: dict[str, Any] = {
        "time": np.repeat([0.0, 86_400.0], 4),
        "contact": np.arange(n),
        "segment": np.zeros(n, dtype=np.uint8),
        "creative": np.array([0, 1, 1, 1, 0, 1, 0, 0]),
        "arm": np.array([auto] * 6 + [ctl] * 2, dtype=np.uint8),
        "method": np.array([ts, ts, ts, rand, ts, ts] + [DECIDED_BY.index("default")] * 2),
        "pool": np.zeros(n, dtype=np.uint8),
        "propensity": np.ones(n),
        "click": np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool),
        "conversion": np.array([0, 1, 0, 0, 0, 1, 0, 0], dtype=bool),
        "revenue": np.array([0, 10, 0, 0, 0, 10, 0, 0], dtype=float),
        "expected": np.array([1, 2, 2, 2, 1, 2, 1, 1], dtype=float),
        "oracle": np.full(n, 2.0),
    }
    return SimulationResult(
        scenario="synthetic",
        seed=0,
        goal="revenue",
        creative_ids=("a", "b"),
        final_stats=AccountStats(),
        **columns,
    )


def test_build_report_on_known_arrays() -> None:
    report = build_report(synthetic_result(), buckets=2)
    arms = {s.name: s for s in report.arms}
    assert (arms["automated"].sends, arms["automated"].clicks, arms["automated"].revenue) == (
        6, 4, 20.0,
    )  # fmt: skip
    assert arms["control"].click_rate == 0.5
    assert {s.name: s.sends for s in report.methods} == {
        "thompson_single_step": 5, "random": 1, "default": 2,
    }  # fmt: skip
    assert {s.name: s.sends for s in report.creatives} == {"a": 4, "b": 4}
    assert report.oracle_value == 2.0
    assert report.automated_value == pytest.approx(20 / 6)
    assert report.share_of_oracle == pytest.approx(20 / 12)
    assert report.expected_share_of_oracle == pytest.approx(10 / 12)
    assert report.regret == pytest.approx(2.0)  # the two automated sends of a
    assert report.timeline.starts == (0.0, 43_200.0)
    assert report.timeline.creative_share == ((0.25, 0.75), (0.5, 0.5))
    assert report.timeline.cumulative_regret == (1.0, 2.0)
    assert report.timeline.rps_by_arm["control"][0] != report.timeline.rps_by_arm["control"][0]


def test_to_dict_is_strict_json_and_the_table_reads_well() -> None:
    report = build_report(synthetic_result(), buckets=2)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["rps_lift"]["metric"] == "revenue_per_send"
    assert {"lift", "low", "high", "excludes_zero"} <= set(data["click_lift"])
    assert data["arms"][0]["revenue_per_send"] == pytest.approx(20 / 6)
    table = report.format_table()
    assert table.splitlines()[1].startswith("Automated 66.7% click, $3.333/send; Control 50.0%")
    assert "thompson_single_step" in table and "Oracle over the automated sends" in table


def test_clicks_goal_regret_is_printed_as_expected_clicks_not_a_percentage() -> None:
    result = synthetic_result()
    clicks = SimulationResult(
        **{**{f: getattr(result, f) for f in result.__dataclass_fields__}, "goal": "clicks"}
    )
    table = build_report(clicks, buckets=2).format_table()
    assert "regret 2.0 expected clicks" in table
    assert "regret 200.0%" not in table
    assert "regret $2.00" in build_report(result, buckets=2).format_table()
