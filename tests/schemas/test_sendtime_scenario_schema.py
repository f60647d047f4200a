"""`schemas/sendtime_scenario.v1.schema.json`: the shipped send-time scenarios and the
schema's own examples validate and parse; invalid documents are rejected naming the
field, by the schema and by the parser alike; every field is described."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from selector.domain import ConfigError
from selector.sendtime.scenario import sendtime_scenario_from_dict

from .test_scenario_schema import _properties

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "sendtime_scenario.v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FILES = sorted(
    p
    for p in (ROOT / "scenarios").glob("*.yaml")
    if yaml.safe_load(p.read_text()).get("kind") == "sendtime"
)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_field_has_a_description() -> None:
    assert [path for path, sub in _properties(SCHEMA) if "description" not in sub] == []


def test_the_pitfall_scenario_is_shipped() -> None:
    assert [p.name for p in FILES] == ["sendtime_pitfall.yaml"]


@pytest.mark.parametrize(
    "doc",
    [*SCHEMA["examples"], *(yaml.safe_load(p.read_text()) for p in FILES)],
    ids=lambda d: d.get("name", "?"),
)
def test_examples_and_shipped_scenarios_validate_and_parse(doc: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(doc)) == []
    scenario = sendtime_scenario_from_dict(doc)
    assert scenario.contacts == doc["contacts"]


def _pitfall() -> dict[str, Any]:
    doc = yaml.safe_load(FILES[0].read_text())
    assert isinstance(doc, dict)
    return copy.deepcopy(doc)


@pytest.mark.parametrize(
    ("edit", "field", "path"),
    [
        (lambda d: d["send_time"].update(slots=5), ["send_time", "slots"], "send_time.slots"),
        (
            lambda d: d["send_time"]["hours"].update(start="8am"),
            ["send_time", "hours", "start"],
            "send_time.hours",
        ),
        (
            lambda d: d["routines"][1].update(best_hour=30),
            ["routines", 1, "best_hour"],
            "routines[1].best_hour",
        ),
        (lambda d: d.update(weekday_factors=[1, 2]), ["weekday_factors"], "weekday_factors"),
        (
            lambda d: d["campaigns"].update(launches=0),
            ["campaigns", "launches"],
            "campaigns.launches",
        ),
        (lambda d: d.update(kind="creative"), ["kind"], "kind"),
        (lambda d: d.update(colour="red"), [], "scenario"),
    ],
)
def test_an_invalid_document_is_rejected_naming_the_field(
    edit: Any, field: list[Any], path: str
) -> None:
    doc = _pitfall()
    edit(doc)
    assert field in [list(e.absolute_path) for e in VALIDATOR.iter_errors(doc)]
    with pytest.raises(ConfigError) as error:
        sendtime_scenario_from_dict(doc)
    assert error.value.path == path


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["routines"][0].update(share=0.1), "routines"),
        (lambda d: d.update(zones=[{"zone": "Mars/Base", "share": 1.0}]), "zones[0].zone"),
        (lambda d: d["send_time"].update(zone="Nowhere/Land"), "send_time.zone"),
    ],
)
def test_what_the_schema_cannot_express_is_checked_by_the_parser(edit: Any, path: str) -> None:
    doc = _pitfall()
    edit(doc)
    with pytest.raises(ConfigError) as error:
        sendtime_scenario_from_dict(doc)
    assert error.value.path == path
