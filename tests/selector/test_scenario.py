"""Scenario parsing, the truth over time, and every validation error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from selector import ConfigError
from selector.scenario import scenario_from_dict


def scenario_doc(**overrides: Any) -> dict[str, Any]:
    """A small valid document; keyword arguments replace top-level fields."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "settings": {"goal": "revenue", "half_life_seconds": 3600},
        "campaign": {"campaign_id": "spring", "default_creative_id": "a"},
        "offers": [
            {"offer_id": "o1", "payout": 20},
            {"offer_id": "o2", "payout": 4, "payout_type": "cto"},
        ],
        "creatives": [
            {"creative_id": "a", "offer_id": "o1", "click_rate": 0.1, "conversion_rate": 0.2},
            {"creative_id": "b", "offer_id": "o2", "click_rate": 0.2, "conversion_rate": 0.5},
            {
                "creative_id": "c",
                "offer_id": "o1",
                "click_rate": 0.3,
                "conversion_rate": 0.1,
                "status": "paused",
            },
        ],
        "contacts": 100,
        "horizon": {"sends": 1000, "sends_per_day": 1000},
        "batch_size": 10,
    }
    doc.update(overrides)
    return doc


def test_a_minimal_document_parses_with_defaults() -> None:
    sc = scenario_from_dict(scenario_doc())
    assert sc.name == "tiny"
    assert sc.sends == 1000
    assert sc.duration_seconds == 86_400
    assert sc.feedback_delay_seconds == 0
    assert sc.click_rate == (0.1, 0.2, 0.3)
    assert sc.conversion_rate == (0.2, 0.5, 0.1)
    assert [c.creative_id for c in sc.account.creatives] == ["a", "b", "c"]
    assert sc.account.campaigns[0].automated_percent == 80
    assert sc.segment_names == ("(rest)",)
    assert sc.segment_shares().tolist() == [1.0]


def test_a_horizon_in_seconds_becomes_sends_at_the_rate() -> None:
    sc = scenario_from_dict(scenario_doc(horizon={"seconds": 43_200, "sends_per_day": 1000}))
    assert sc.sends == 500


def test_segments_override_or_scale_rates_and_the_rest_keeps_the_base() -> None:
    segments = [
        {"name": "fans", "share": 0.25, "creatives": {"a": {"click_multiplier": 2}}},
        {"name": "skeptics", "share": 0.25, "creatives": {"b": {"click_rate": 0.05}}},
    ]
    sc = scenario_from_dict(scenario_doc(segments=segments))
    assert sc.segment_names == ("fans", "skeptics", "(rest)")
    assert sc.segment_shares().tolist() == [0.25, 0.25, 0.5]
    click = sc.phases()[0].click_rate
    expected = [[0.2, 0.2, 0.3], [0.1, 0.05, 0.3], [0.1, 0.2, 0.3]]
    np.testing.assert_allclose(click, expected)


def test_segments_covering_everyone_leave_no_rest() -> None:
    sc = scenario_from_dict(scenario_doc(segments=[{"name": "all", "share": 1.0}]))
    assert sc.segment_names == ("all",)


def test_changes_make_phases_in_time_order() -> None:
    changes = [
        {"at_seconds": 7200, "creative_id": "c", "status": "active"},
        {"at_seconds": 3600, "creative_id": "a", "click_multiplier": 0.5},
        {"at_seconds": 7200, "creative_id": "b", "conversion_rate": 0.25},
    ]
    phases = scenario_from_dict(scenario_doc(changes=changes)).phases()
    assert [p.start_seconds for p in phases] == [0.0, 3600.0, 7200.0]
    assert [p.click_rate[0, 0] for p in phases] == pytest.approx([0.1, 0.05, 0.05])
    assert [p.conversion_rate[0, 1] for p in phases] == pytest.approx([0.5, 0.5, 0.25])
    assert [p.account.creatives[2].status for p in phases] == ["paused", "paused", "active"]


def test_without_forgetting_drops_only_the_half_life() -> None:
    sc = scenario_from_dict(scenario_doc())
    plain = sc.without_forgetting()
    assert sc.account.settings.half_life_seconds == 3600
    assert plain.account.settings.half_life_seconds is None
    assert plain.account.settings.goal == sc.account.settings.goal
    assert plain.click_rate == sc.click_rate


def test_phases_are_fresh_arrays() -> None:
    sc = scenario_from_dict(scenario_doc())
    sc.phases()[0].click_rate[:] = 1.0
    assert np.all(sc.phases()[0].click_rate < 1.0)


# --- every validation error -------------------------------------------------------------

Edit = Callable[[dict[str, Any]], object]


def _set(path: str, value: Any) -> Edit:
    """An edit that sets doc[a][b]... (list indices as ints) to value."""

    def edit(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for p in parents:
            target = target[p]
        target[last] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for p in parents:
            target = target[p]
        del target[last]

    return edit


SEGMENT = {"name": "s", "share": 0.5, "creatives": {"a": {"click_multiplier": 2}}}
CHANGE = {"at_seconds": 10, "creative_id": "a", "click_multiplier": 0.5}

INVALID: list[tuple[str, Edit, str, str]] = [
    ("unknown top-level field", _set("colour", "red"), "scenario", "unknown field(s) colour"),
    ("wrong version", _set("version", 2), "version", "must be 1"),
    *[
        (f"missing {key}", _drop(key), key, "is required")
        for key in ("offers", "creatives", "campaign", "contacts", "horizon")
    ],
    ("no creatives", _set("creatives", []), "creatives", "needs a list"),
    ("creative not an object", _set("creatives.0", "a"), "creatives[0]", "must be an object"),
    ("missing click rate", _drop("creatives.0.click_rate"), "creatives[0].click_rate", "required"),
    ("missing conversion rate", _drop("creatives.1.conversion_rate"),
     "creatives[1].conversion_rate", "required"),
    ("click rate above 1", _set("creatives.0.click_rate", 1.5), "creatives[0].click_rate",
     "between 0 and 1"),
    ("conversion rate not a number", _set("creatives.0.conversion_rate", "high"),
     "creatives[0].conversion_rate", "finite number"),
    ("rate given as a bool", _set("creatives.0.click_rate", True), "creatives[0].click_rate",
     "finite number"),
    ("multiplier on a creative", _set("creatives.0.click_multiplier", 2), "creatives[0]",
     "belong in segments or changes"),
    ("creative of an unknown offer", _set("creatives.0.offer_id", "o9"), "creative a.offer_id",
     "not in this account"),
    ("unknown default creative", _set("campaign.default_creative_id", "z"),
     "campaign spring.default_creative_id", "not in this account"),
    ("bad goal", _set("settings.goal", "likes"), "settings.goal", "must be one of"),
    ("zero contacts", _set("contacts", 0), "contacts", "whole number >= 1"),
    ("fewer contacts than a batch", _set("contacts", 5), "contacts", "must be >= batch_size"),
    ("zero batch size", _set("batch_size", 0), "batch_size", "whole number >= 1"),
    ("fractional batch size", _set("batch_size", 2.5), "batch_size", "whole number"),
    ("negative delay", _set("feedback_delay_seconds", -1), "feedback_delay_seconds", "between 0"),
    ("horizon without a rate", _drop("horizon.sends_per_day"), "horizon.sends_per_day",
     "required"),
    ("zero send rate", _set("horizon.sends_per_day", 0), "horizon.sends_per_day", "between"),
    ("horizon with sends and seconds", _set("horizon.seconds", 100), "horizon", "exactly one"),
    ("horizon with neither", _drop("horizon.sends"), "horizon", "exactly one"),
    ("horizon of zero sends", _set("horizon.sends", 0), "horizon.sends", "whole number >= 1"),
    ("horizon too short", _set("horizon", {"seconds": 1, "sends_per_day": 10}), "horizon.seconds",
     "too short"),
    ("unknown horizon field", _set("horizon.days", 3), "horizon", "unknown field(s) days"),
    ("segments not a list", _set("segments", {"s": 1}), "segments", "must be a list"),
    ("segment without a name", _set("segments", [{"share": 0.5}]), "segments[0].name",
     "required"),
    ("segment share zero", _set("segments", [{**SEGMENT, "share": 0}]), "segments[0].share",
     "must be > 0"),
    ("segment share above 1", _set("segments", [{**SEGMENT, "share": 1.5}]),
     "segments[0].share", "between 0 and 1"),
    ("segment shares above 1", _set("segments", [SEGMENT, {**SEGMENT, "name": "t", "share": 0.6}]),
     "segments", "sum to at most 1"),
    ("duplicate segment names", _set("segments", [SEGMENT, SEGMENT]), "segments", "twice"),
    ("segment of an unknown creative", _set("segments", [{**SEGMENT, "creatives": {"z": {}}}]),
     "segments[0].creatives", "unknown creative(s) z"),
    ("segment rate and multiplier", _set("segments", [{**SEGMENT, "creatives": {
        "a": {"click_rate": 0.1, "click_multiplier": 2}}}]), "segments[0].creatives.a",
     "not both"),
    ("segment negative multiplier", _set("segments", [{**SEGMENT, "creatives": {
        "a": {"conversion_multiplier": -1}}}]), "segments[0].creatives.a.conversion_multiplier",
     "between 0"),
    ("segment multiplier above a rate of 1", _set("segments", [{**SEGMENT, "creatives": {
        "a": {"click_multiplier": 20}}}]), "segments", "exceed 1"),
    ("changes not a list", _set("changes", CHANGE), "changes", "must be a list"),
    ("change before time 0", _set("changes", [{**CHANGE, "at_seconds": -1}]),
     "changes[0].at_seconds", "between 0"),
    ("change after the horizon", _set("changes", [{**CHANGE, "at_seconds": 86_400}]),
     "changes[0].at_seconds", "never apply"),
    ("change of an unknown creative", _set("changes", [{**CHANGE, "creative_id": "z"}]),
     "changes[0].creative_id", "must name a creative"),
    ("change to a bad status", _set("changes", [{**CHANGE, "status": "live"}]),
     "changes[0].status", "must be one of"),
    ("change that changes nothing", _set("changes", [{"at_seconds": 1, "creative_id": "a"}]),
     "changes[0]", "changes nothing"),
    ("change rate and multiplier", _set("changes", [{**CHANGE, "click_rate": 0.2}]),
     "changes[0]", "not both"),
    ("change multiplier above a rate of 1", _set("changes", [{**CHANGE, "click_multiplier": 11}]),
     "changes (a at 10 s)", "exceed 1"),
    ("unknown change field", _set("changes", [{**CHANGE, "when": 3}]), "changes[0]",
     "unknown field(s) when"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "path", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])  # fmt: skip
def test_every_invalid_document_names_its_field(edit: Edit, path: str, message: str) -> None:
    doc = copy.deepcopy(scenario_doc())
    edit(doc)
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict(doc)
    assert caught.value.path == path
    assert message in caught.value.message


def test_a_document_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(ConfigError, match="must be an object"):
        scenario_from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_feedback_delays_give_a_distribution_per_kind() -> None:
    laws = {
        "click": {"distribution": "lognormal", "median_seconds": 1800, "sigma": 1.4},
        "conversion": {"distribution": "exponential", "median_seconds": 86_400},
    }
    sc = scenario_from_dict(scenario_doc(feedback_delays=laws))
    assert (sc.click_delay.kind, sc.click_delay.seconds, sc.click_delay.sigma) == (
        "lognormal", 1800.0, 1.4,
    )  # fmt: skip
    assert sc.conversion_delay.kind == "exponential"
    only_clicks = scenario_from_dict(scenario_doc(feedback_delays={"click": laws["click"]}))
    assert only_clicks.conversion_delay.kind == "constant"
    assert only_clicks.conversion_delay.seconds == 0
    plain = scenario_from_dict(scenario_doc(feedback_delay_seconds=600))
    assert (plain.click_delay.kind, plain.click_delay.seconds) == ("constant", 600.0)


def test_feedback_delays_and_a_constant_delay_exclude_each_other() -> None:
    doc = scenario_doc(
        feedback_delay_seconds=60,
        feedback_delays={"click": {"distribution": "constant", "seconds": 5}},
    )
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(doc)
    assert info.value.path == "feedback_delays" and "not both" in info.value.message
    with pytest.raises(ConfigError) as bad:
        scenario_from_dict(scenario_doc(feedback_delays={"open": {}}))
    assert bad.value.path == "feedback_delays" and "open" in bad.value.message
