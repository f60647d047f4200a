"""`schemas/scenario.v1.schema.json`: the shipped scenarios validate and parse; invalid
documents are rejected naming the field; every field is described."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from selector.scenario import scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "scenario.v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
# send-time scenarios (`kind: sendtime`) have their own schema and tests
SCENARIO_FILES = sorted(
    p
    for p in (ROOT / "scenarios").glob("*.yaml")
    if yaml.safe_load(p.read_text()).get("kind") != "sendtime"
)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{path}[{i}]")


def test_every_field_has_a_description() -> None:
    missing = [path for path, sub in _properties(SCHEMA) if "description" not in sub]
    assert missing == []


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_shipped_scenarios_validate_and_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert scenario_from_dict(doc).sends > 0


def test_both_acceptance_scenarios_are_shipped() -> None:
    assert {p.stem for p in SCENARIO_FILES} >= {"product", "drift"}


def _product() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "scenarios" / "product.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["creatives"][1].update(click_rate=1.4), ["creatives", 1, "click_rate"]),
        (lambda d: d["horizon"].pop("sends_per_day"), ["horizon"]),
        (lambda d: d["settings"].update(goal="likes"), ["settings", "goal"]),
        (lambda d: d.update(contacts="many"), ["contacts"]),
        (lambda d: d["offers"][2].update(payout_type="cpc"), ["offers", 2, "payout_type"]),
        (lambda d: d.update(colour="red"), []),
    ],
)
def test_an_invalid_document_is_rejected_naming_the_field(edit: Any, field: list[Any]) -> None:
    doc = _product()
    edit(doc)
    errors = list(VALIDATOR.iter_errors(doc))
    assert errors, "the schema accepted an invalid document"
    assert field in [list(e.absolute_path) for e in errors]
