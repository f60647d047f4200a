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
# it to 1,000, so it is set back here). "Today" is the seed product's learning pool,
# `learning_mode: pool`, under which the control's sends graduate the default creative
# first and it then gets 90% of the automated traffic. Measured over seeds 0-7 first:
# product: regret 2,335 (compete) against 4,773 (pool; 5,000 on the code before this
# change), per seed 0.40-0.59 of it; the default creative's warm-up share 0.09-0.16
# against a fair 0.167. many_creatives: 8,263 against 26,026 (25,096 before the change),
# per seed at most 0.4 of it; share 0.01 against 0.083. Product's per-seed spread needs
# two seeds for the mean to be a fair test.
WARMUP_SEEDS = {"product": (0, 1), "many_creatives": (0,)}


def warmup_share(scenario: Scenario, result: SimulationResult) -> tuple[float, float]:
    """The default creative's share of the first K x threshold automated sends (what
    uniform exposure needs to graduate every creative), and the fair share 1/K."""
    k = len(result.creative_ids)
    window = k * scenario.account.settings.learning_threshold
    rows = np.flatnonzero(result.arm == ARMS.index("automated"))[:window]
    default = result.creative_ids.index(scenario.account.campaigns[0].default_creative_id)
    return float(np.mean(result.creative[rows] == default)), 1.0 / k


Warmup = tuple[Scenario, list[SimulationResult], list[float]]


@pytest.fixture(scope="module", params=sorted(WARMUP_SEEDS))
def warmup(request: pytest.FixtureRequest) -> Warmup:
    scenario = load(request.param, learning_threshold=3000)
    assert scenario.account.settings.learning_mode == "compete"
    seed_rule = load(request.param, learning_threshold=3000, learning_mode="pool")
    seeds = WARMUP_SEEDS[request.param]
    runs = [simulate(scenario, seed) for seed in seeds]
    return scenario, runs, [build_report(simulate(seed_rule, seed)).regret for seed in seeds]


def test_the_default_creative_gets_no_more_than_its_fair_share_in_warm_up(
    warmup: Warmup,
) -> None:
    scenario, runs, _ = warmup
    for result in runs:
        share, fair = warmup_share(scenario, result)
        assert share <= fair


def test_regret_is_at_least_half_lower_than_under_the_seed_learning_pool(warmup: Warmup) -> None:
    _, runs, seed_rule = warmup
    ours = [build_report(result).regret for result in runs]
    assert sum(ours) <= 0.5 * sum(seed_rule)
