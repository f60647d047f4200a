"""Simulated contacts: the scenario's contact fields, the draws, the rate multipliers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector.contacts import ContactModel, click_multipliers, draw_contacts
from selector.domain import ConfigError
from selector.scenario import scenario_from_dict


def doc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "campaign": {"campaign_id": "c", "default_creative_id": "a"},
        "offers": [{"offer_id": "o", "payout": 10}],
        "creatives": [
            {"creative_id": "a", "offer_id": "o", "click_rate": 0.1, "conversion_rate": 0.2},
            {"creative_id": "b", "offer_id": "o", "click_rate": 0.1, "conversion_rate": 0.2},
        ],
        "contacts": 100,
        "horizon": {"sends": 100, "sends_per_day": 100},
        "batch_size": 10,
        "custom_fields": [{"name": "tier", "type": "categorical", "values": ["x", "y"]}],
        "contact_effects": {"hour_amplitude": 0.5, "repeat_click_multiplier": 2.0},
        "segments": [
            {"name": "early", "share": 0.5, "custom": {"tier": "y"}, "custom_known_share": 0.5,
             "engagement_hour": 6},
        ],
    }  # fmt: skip
    base.update(extra)
    return base


def test_the_contact_model_is_read_from_the_scenario() -> None:
    cm = scenario_from_dict(doc()).contact_model
    assert cm.varies_rates and cm.fields[0].name == "tier"
    assert cm.segments[0].slots == (1.0,) and cm.segments[0].engagement_hour == 6
    assert cm.segments[1].slots == ()  # the rest of the contacts
    plain = scenario_from_dict({k: v for k, v in doc().items()
                                if k not in ("custom_fields", "contact_effects")} |
                               {"segments": []})  # fmt: skip
    assert plain.contact_model == ContactModel(segments=plain.contact_model.segments)
    assert not plain.contact_model.varies_rates


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        ({"contact_effects": {"hour_amplitude": 2}}, "contact_effects.hour_amplitude"),
        ({"contact_effects": {"colour": 1}}, "contact_effects"),
        ({"custom_fields": "tier"}, "custom_fields"),
        ({"segments": [{"name": "s", "share": 0.5, "custom": {"tier": "z"}}]},
         "segments[0].custom.tier"),
        ({"segments": [{"name": "s", "share": 0.5, "custom_known_share": 1.5}]},
         "segments[0].custom_known_share"),
        ({"segments": [{"name": "s", "share": 0.5, "engagement_hour": 25}]},
         "segments[0].engagement_hour"),
    ],
)  # fmt: skip
def test_every_invalid_contact_field_is_named(edit: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        scenario_from_dict(doc(**edit))
    assert err.value.path == path


def test_contacts_get_their_segments_values_and_hours() -> None:
    cm = scenario_from_dict(doc()).contact_model
    segment = np.array([0] * 2000 + [1] * 2000)
    people = draw_contacts(cm, segment, np.random.default_rng(0))
    filled = ~np.isnan(people.custom[:2000, 0])
    assert 0.45 < filled.mean() < 0.55 and (people.custom[:2000][filled, 0] == 1.0).all()
    assert np.isnan(people.custom[2000:, 0]).all()
    early = people.hour[:2000]
    assert abs(np.median(early) - 6.0) < 0.3 and 1.5 < early.std() < 2.5
    rest = people.hour[2000:]
    assert rest.min() >= 0 and rest.max() < 24 and rest.std() > 5  # uniform over the day


def test_multipliers_follow_the_hour_and_repeat_clicks() -> None:
    cm = scenario_from_dict(doc()).contact_model
    hours = np.array([6.0, 18.0, np.nan])
    before = np.array([[True, False], [False, False], [False, False]])
    factor = click_multipliers(cm, hours, 6 * 3600.0, before)
    np.testing.assert_allclose(factor, [[3.0, 1.5], [0.5, 0.5], [1.0, 1.0]])
