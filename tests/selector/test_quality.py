"""The issue's acceptance checks on the shipped scenarios (DESIGN.md section 6).

One fixed seed; the margins were measured over seeds 0-7 first. product: automated RPS
92.6-98.6% of the oracle's realized (94.9-96.6% in expectation), RPS lift interval lower
bound +10.7% to +18.8%. drift: regret with forgetting 53-78% of the regret without
(64% at seed 0); the check asks for at most 85%.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from selector.report import Report, build_report
from selector.scenario import Scenario, scenario_from_dict
from selector.simulate import simulate

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED = 0

pytestmark = pytest.mark.slow


def load(name: str) -> Scenario:
    return scenario_from_dict(yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text()), name)


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
