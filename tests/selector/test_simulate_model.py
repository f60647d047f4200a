"""The simulator as the stream and trainer: profiles, the example log, retraining."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector.batch import DECIDED_BY, REASONS
from selector.contacts import draw_contacts
from selector.model.profile import EMPTY, add_event
from selector.model.record import records_of
from selector.scenario import Scenario, scenario_from_dict
from selector.simulate import simulate
from selector.simulate_model import ModelLoop


def contextual(**overrides: Any) -> Scenario:
    """Two segments that want opposite creatives, told apart by a custom field."""
    doc: dict[str, Any] = {
        "name": "tiny-contextual",
        "settings": {"learning_threshold": 200, "cooldown_seconds": 0, "payout_floor": 1,
                     "methods": {"model": 50, "thompson_single_step": 50},
                     "model_training_interval_seconds": 21600},
        "campaign": {"campaign_id": "c", "default_creative_id": "a", "automated_percent": 100},
        "offers": [{"offer_id": "o", "payout": 10}],
        "creatives": [
            {"creative_id": "a", "offer_id": "o", "click_rate": 0.1, "conversion_rate": 0.5},
            {"creative_id": "b", "offer_id": "o", "click_rate": 0.1, "conversion_rate": 0.5},
        ],
        "custom_fields": [{"name": "likes", "type": "categorical", "values": ["a", "b"]}],
        "segments": [
            {"name": "likes-a", "share": 0.5, "custom": {"likes": "a"},
             "creatives": {"a": {"click_rate": 0.25}, "b": {"click_rate": 0.05}}},
            {"name": "likes-b", "share": 0.5, "custom": {"likes": "b"},
             "creatives": {"a": {"click_rate": 0.05}, "b": {"click_rate": 0.25}}},
        ],
        "contacts": 4000,
        "horizon": {"sends": 40_000, "sends_per_day": 20_000},
        "feedback_delay_seconds": 600,
        "batch_size": 500,
    }  # fmt: skip
    doc.update(overrides)
    return scenario_from_dict(doc)


@pytest.fixture(scope="module")
def run() -> Any:
    return simulate(contextual(), seed=2)


@pytest.mark.slow
def test_the_model_retrains_at_the_interval_and_is_promoted(run: Any) -> None:
    assert [t.time for t in run.trainings] == [21600.0 * i for i in range(1, 8)]
    assert [t.version for t in run.trainings] == list(range(1, 8))
    assert any(t.verdict.promote for t in run.trainings)
    assert all(t.verdict.reason in ("first_model", "better", "not_better", "miscalibrated")
               for t in run.trainings)  # fmt: skip


@pytest.mark.slow
def test_model_traffic_falls_back_until_a_model_is_promoted(run: Any) -> None:
    first = min(t.time for t in run.trainings if t.verdict.promote)
    model = run.method == DECIDED_BY.index("model")
    unavailable = run.reason == REASONS.index("model_unavailable")
    assert (unavailable[model] == (run.time[model] < first)).all()
    assert not unavailable[~model].any()


@pytest.mark.slow
def test_the_model_serves_each_segment_its_creative(run: Any) -> None:
    decided = (run.method == DECIDED_BY.index("model")) & (
        run.reason != REASONS.index("model_unavailable")
    )
    for segment in (0, 1):
        rows = decided & (run.segment == segment)
        assert np.mean(run.creative[rows] == segment) > 0.85


def test_plain_scenarios_keep_no_profiles_and_never_train() -> None:
    plain = contextual(settings={"learning_threshold": 200, "cooldown_seconds": 0},
                       custom_fields=[],
                       segments=[], horizon={"sends": 2000, "sends_per_day": 20_000})  # fmt: skip
    result = simulate(plain, seed=1)
    assert result.trainings == () and result.reason is not None
    assert set(result.reason.tolist()) == {REASONS.index("none")}


def test_profiles_are_the_streams_fold_of_the_contacts_events() -> None:
    sc = contextual()
    people = draw_contacts(sc.contact_model, np.zeros(sc.contacts, dtype=np.intp),
                           np.random.default_rng(0))  # fmt: skip
    loop = ModelLoop(sc, people)
    contacts, creative = np.array([3, 7]), np.array([0, 1])
    loop.sent(loop.records(contacts), contacts, creative, 100.0)
    nan = float("nan")
    loop.outcomes(creative, np.array([700.0, nan]), np.array([700.0, nan]),
                  (np.zeros(2), np.array([10.0, 0.0])))  # fmt: skip
    # contact 3: its click, then its conversion, both at 700 s
    loop.feedback(np.array([700.0, 700.0]), np.array([3, 3]), np.array([0, 0]),
                  np.array([False, True]), np.array([0, 10_000_000]))  # fmt: skip
    expected = add_event(EMPTY.with_custom((0.0,)), "send", "a", 100.0, 0)
    expected = add_event(expected, "click", "a", 700.0, 0)
    expected = add_event(expected, "conversion", "a", 700.0, 10_000_000)
    assert loop.profile(3) == expected
    assert len(loop.profile(7).recent) == 1
    assert records_of([loop.profile(3)]).tobytes() == loop.records(np.array([3])).tobytes()
    assert loop.log.column("clicked").tolist() == [1.0, 0.0]
    assert loop.log.column("revenue").tolist() == [10.0, 0.0]
    assert loop.window == 600.0  # the scenario's constant click delay, no conversion delay
