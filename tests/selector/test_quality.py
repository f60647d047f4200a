"""The issue's acceptance checks on the shipped scenarios (DESIGN.md section 6).

One fixed seed; the margins were measured over seeds 0-7 first. product: automated RPS
92.6-98.6% of the oracle's realized (94.9-96.6% in expectation), RPS lift interval lower
bound +10.7% to +18.8%. drift: regret with forgetting 53-78% of the regret without
(64% at seed 0); the check asks for at most 85%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from selector.batch import ARMS
from selector.report import Report, build_report
from selector.scenario import Scenario, scenario_from_dict
from selector.simulate import SimulationResult, simulate

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED = 0

pytestmark = pytest.mark.slow


def load(name: str, **settings: Any) -> Scenario:
    doc = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    doc.setdefault("settings", {}).update(settings)
    return scenario_from_dict(doc, name)


@pytest.fixture(scope="module")
def product() -> Report:
    scenario = load("product")
    assert scenario.account.settings.goal == "revenue"
    assert scenario.account.settings.methods[0].method == "thompson_single_step"
    return build_report(simulate(scenario, SEED))


def test_automated_rps_reaches_90_percent_of_the_oracle(product: Report) -> None:
    # realized revenue per automated send over the oracle's expected revenue, same sends
    assert product.share_of_oracle >= 0.90
    assert product.expected_share_of_oracle >= 0.90


def test_automated_beats_the_control_with_an_interval_excluding_zero(product: Report) -> None:
    lift = product.rps_lift
    assert lift.confidence == 0.95
    assert lift.excludes_zero and lift.low > 0
    assert product.click_lift.low > 0


def test_forgetting_lowers_regret_when_the_best_creative_fatigues() -> None:
    scenario = load("drift")
    assert scenario.account.settings.half_life_seconds is not None
    with_forgetting = build_report(simulate(scenario, SEED)).regret
    without = build_report(simulate(scenario.without_forgetting(), SEED)).regret
    assert with_forgetting < 0.85 * without


# --- warm-up: the default creative must not take the scored traffic --------------------
#
# Both scenarios at the default learning threshold (3,000 raw sends; product.yaml lowers
# it to 1,000, so it is set back here). Today's figures were measured on the code before
# this change (commit 57cf729, `learning_mode` did not exist: the seed product's learning
# pool, under which the control's sends graduate the default creative first and it then
# gets 90% of the automated traffic), with the same scenarios, seeds and simulator:
# `python -m stream.cli simulate scenarios/<name>.yaml --seed N` with the threshold set
# to 3,000. Over seeds 0-7: product 4,850-5,717 (mean 5,000), many_creatives
# 23,904-26,478 (mean 25,096); this code's default gives product 1,768-3,776 (mean
# 2,445), per seed 0.37-0.78 of today's, and many_creatives 5,962-9,229 (mean 7,502),
# 0.24-0.39 of it; the default creative's warm-up share 0.09-0.20 (mean 0.12) against a
# fair 0.167 in product, 0.003-0.03 against 0.083 in many_creatives. Product's spread per
# seed needs two seeds for a fair test.
WARMUP_SEEDS = {"product": (0, 1), "many_creatives": (0,)}
TODAY = {"product": 4967.3 + 5716.5, "many_creatives": 25185.3}


def warmup_share(scenario: Scenario, result: SimulationResult) -> tuple[float, float]:
    """The default creative's share of the first K x threshold automated sends (what
    uniform exposure needs to graduate every creative), and the fair share 1/K."""
    k = len(result.creative_ids)
    window = k * scenario.account.settings.learning_threshold
    rows = np.flatnonzero(result.arm == ARMS.index("automated"))[:window]
    default = result.creative_ids.index(scenario.account.campaigns[0].default_creative_id)
    return float(np.mean(result.creative[rows] == default)), 1.0 / k


Warmup = tuple[str, Scenario, list[SimulationResult], list[float]]


@pytest.fixture(scope="module", params=sorted(WARMUP_SEEDS))
def warmup(request: pytest.FixtureRequest) -> Warmup:
    name = request.param
    scenario = load(name, learning_threshold=3000)
    assert scenario.account.settings.learning_mode == "compete"
    seed_rule = load(name, learning_threshold=3000, learning_mode="pool")
    seeds = WARMUP_SEEDS[name]
    runs = [simulate(scenario, seed) for seed in seeds]
    return name, scenario, runs, [build_report(simulate(seed_rule, s)).regret for s in seeds]


def test_the_default_creative_gets_no_more_than_its_fair_share_in_warm_up(
    warmup: Warmup,
) -> None:
    _, scenario, runs, _ = warmup
    shares = [warmup_share(scenario, result) for result in runs]
    assert np.mean([share for share, _ in shares]) <= shares[0][1]


def test_regret_is_at_least_half_lower_than_today(warmup: Warmup) -> None:
    name, _, runs, seed_rule = warmup
    ours = sum(build_report(result).regret for result in runs)
    assert ours <= 0.5 * TODAY[name]
    # the seed's rule, still available as `learning_mode: pool`, behaves as before
    assert 0.8 * TODAY[name] <= sum(seed_rule) <= 1.2 * TODAY[name]
    assert ours <= 0.6 * sum(seed_rule)
