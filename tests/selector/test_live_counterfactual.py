"""The counterfactual "all automated traffic to thompson_single_step" from time-stamped
snapshots: exact values on synthetic logs, rows covered by logged propensities, and rows
without a snapshot named, never guessed."""

from __future__ import annotations

import doctest
import math
from typing import Any

import numpy as np
import pytest

from selector import live_counterfactual
from selector.live_counterfactual import TimedSnapshots, counterfactual_rows
from selector.live_ope import OpeOptions
from selector.live_report import report_from_records
from tests.selector.test_live_report import DAY, T0, Click, Response, Send

MEANS = {"x": 0.2, "y": 0.6}
# thompson_single_step's probabilities over (x, y): from T0 on, then from T0 + 1 day
SNAPSHOTS = TimedSnapshots((T0, T0 + DAY), ("x", "y"), np.array([[0.9, 0.1], [0.2, 0.8]]))


def log(n: int, seed: int, start: float, span: float, method: str = "random") -> list[Any]:
    """Automated decisions uniform over x and y (propensity 0.5), clicks at MEANS."""
    rng = np.random.default_rng(seed)
    pool = "uniform" if method == "random" else "scored"
    out: list[Any] = []
    for i in range(n):
        creative, t = ("x", "y")[int(rng.integers(2))], start + span * i / n
        rid, sid = f"{method}-{seed}-{i}", f"s-{method}-{seed}-{i}"
        out += [
            Response(rid, "a", "camp", creative, "automated", method, pool, "none", 0.5, 1, t),
            Send(sid, "a", "camp", f"c{seed}-{i}", creative, t + 1, rid),
        ]
        if rng.random() < MEANS[creative]:
            out.append(Click(f"k{sid}", "a", f"c{seed}-{i}", creative, t + 60, sid))
    return out


def value_of(records: list[Any], snapshots: TimedSnapshots | None) -> Any:
    timed = {} if snapshots is None else {"a": snapshots}
    ope = OpeOptions(resamples=300, goals={"a": "clicks"}, timed=timed)
    report = report_from_records(records, rng=np.random.default_rng(2), ope=ope)
    return next(v for v in report.accounts[0].ope if v.coverage is not None)


def test_the_module_example_runs() -> None:
    assert doctest.testmod(live_counterfactual).failed == 0


def test_estimates_cover_the_exact_value_of_the_snapshot_policy() -> None:
    records = log(6000, seed=1, start=T0, span=2 * DAY)  # half under each snapshot
    value = value_of(records, SNAPSHOTS)
    exact = 0.5 * (0.9 * 0.2 + 0.1 * 0.6) + 0.5 * (0.2 * 0.2 + 0.8 * 0.6)  # = 0.38
    assert value.coverage.by_snapshot == 6000 and value.coverage.left_out == {}
    assert set(value.estimates) == {"ips", "snips", "dr", "replay"}
    for estimate in value.estimates.values():
        assert estimate.low <= exact <= estimate.high
        assert estimate.high - estimate.low < 0.06
        assert estimate.rows == 6000
    # far from the logging policy's own value (0.4 = uniform) only if the policies differ:
    # the first day alone is worth 0.24
    first_day = value_of(log(3000, seed=4, start=T0, span=DAY * 0.99), SNAPSHOTS)
    assert first_day.estimates["snips"].covers(0.24)
    assert not first_day.estimates["snips"].covers(0.4)


def test_rows_before_any_snapshot_or_after_an_old_one_are_left_out_by_reason() -> None:
    before = log(500, seed=2, start=T0 - DAY, span=DAY / 2)
    inside = log(1000, seed=3, start=T0, span=DAY)
    stale = log(300, seed=5, start=T0 + 4 * DAY, span=DAY)  # the last snapshot is 3+ days old
    value = value_of(before + inside + stale, SNAPSHOTS)
    c = value.coverage
    assert c.by_snapshot == 1000 and c.by_logged == 0
    assert c.left_out == {"no_snapshot": 500, "snapshot_too_old": 300}
    assert c.first_left_out == pytest.approx(T0 - DAY)
    assert c.last_left_out == pytest.approx(T0 + 5 * DAY - DAY / 300)
    assert all(e.rows == 1000 for e in value.estimates.values())


def test_rows_logged_under_thompson_keep_weight_one_without_a_snapshot() -> None:
    records = log(800, seed=6, start=T0 - DAY, span=DAY / 2, method="thompson_single_step")
    value = value_of(records, SNAPSHOTS)
    assert value.coverage.by_logged == 800 and value.coverage.left_out == {}
    clicks = sum(isinstance(r, Click) for r in records)
    # weight exactly 1 on every row: IPS and SNIPS are the logged click rate
    assert value.estimates["ips"].value == pytest.approx(clicks / 800)
    assert value.estimates["snips"].value == pytest.approx(clicks / 800)
    assert value.estimates["ips"].effective_sample_size == pytest.approx(800)
    assert "dr" not in value.estimates  # no snapshot row: no full target row to use


def test_without_any_snapshot_the_report_says_so() -> None:
    value = value_of(log(200, seed=7, start=T0, span=DAY), None)
    assert value.estimates == {}
    assert value.coverage.left_out == {"no_snapshot": 200}
    assert value.coverage.by_snapshot == value.coverage.by_logged == 0
    assert not math.isnan(value.coverage.first_left_out)


def test_a_creative_the_snapshot_never_names_is_unsupported_mass() -> None:
    snaps = TimedSnapshots((0.0,), ("x", "z"), np.array([[0.5, 0.5]]), max_age=10.0)
    rows = counterfactual_rows(
        snaps,
        ("x", "y"),
        action=np.array([0, 1]),
        propensity=np.array([0.5, 0.5]),
        decided=np.array([1.0, 2.0]),
        thompson=np.array([False, False]),
    )
    assert rows.target.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert rows.coverage.unsupported_mass == pytest.approx(0.5)
