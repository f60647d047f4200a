"""`creative-select demo --method model`'s parts that need no Kafka: the traffic split and
the printed comparison (tests/integration/test_model_training.py runs train -> publish ->
score on real Kafka and Redis)."""

from __future__ import annotations

from pathlib import Path

from selector import account_from_dict
from stream.commands.demo import _model_lines
from stream.commands.simulate import load_scenario
from stream.demo.sender import account_document
from stream.demo.training import MODEL_METHODS, with_model_methods

ROOT = Path(__file__).resolve().parents[3]


def test_the_model_method_splits_automated_traffic_with_thompson() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "product.yaml")
    document = with_model_methods(account_document(scenario))
    account = account_from_dict(document)
    shares = {m.method: m.traffic_pct for m in account.settings.methods}
    assert shares == MODEL_METHODS == {"model": 50.0, "thompson_single_step": 50.0}
    assert document["creatives"] == account_document(scenario)["creatives"]


def test_the_comparison_names_both_methods_the_interval_and_the_trainings() -> None:
    model = {
        "trainings": [
            {"offset_days": 1.0, "reason": "first_model", "version": 1, "sends": 9000},
            {"offset_days": 2.0, "reason": "not_better", "version": 2, "sends": 20000},
        ],
        "model_over_thompson_rps": {
            "model": 0.5, "thompson_single_step": 0.4, "lift": 0.25, "low": 0.1, "high": 0.4,
            "confidence": 0.95,
        },
    }  # fmt: skip
    text = _model_lines(model)
    assert "$0.5000 vs $0.4000, +25.0% [+10.0%, +40.0%]" in text
    assert "day 1.0 first_model v1, day 2.0 not_better v2" in text
