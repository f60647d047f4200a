"""The wire contract: every schema is valid JSON Schema, every example validates and
decodes, topics.yaml and schemas/ list the same files, and the enumerations and catalog
field sets are the ones `selector` and `stream.wire.reasons` define."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import yaml

from selector import domain
from selector.batch import ARMS, DECIDED_BY, POOLS, REASONS
from stream.wire import codec
from stream.wire.batches import BATCH_SCHEMAS
from stream.wire.messages import KINDS, SCHEMAS, TOPICS, encode, to_dict
from stream.wire.reasons import DECODE_REJECTIONS, REJECTIONS

ROOT = Path(__file__).resolve().parents[2] / "schemas"
# Documents that are not messages on a topic (the simulator reads scenario files).
NOT_ON_A_TOPIC = {"scenario.v1.schema.json", "sendtime_scenario.v1.schema.json"}
# Batch envelopes beside a topic's single messages (tests/schemas/test_batch_schemas.py).
BATCHES = {f"{name.removesuffix('.v1')}.v1.schema.json" for name in BATCH_SCHEMAS}
# Documents on a topic that are not wire messages: `selector.model.artifact` and
# `stream.handlers.sendtime_priors` read them (tests/stream/job/test_train.py and
# tests/stream/handlers/test_sendtime_priors.py validate them against their schemas).
ARTIFACTS = {"contextual_model.v1.schema.json", "send_time_prior.v1.schema.json"}
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def load_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((ROOT / f"{kind}.v1.schema.json").read_text())
    return schema


def example_paths() -> list[Path]:
    batches = {name.removesuffix(".v1") for name in BATCH_SCHEMAS}
    return sorted(p for p in ROOT.glob("examples/*/*.json") if p.parent.name not in batches)


def validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_a_valid_draft_2020_12_schema(kind: str) -> None:
    schema = load_schema(kind)
    assert schema["$schema"] == DRAFT
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"] == {
        "const": SCHEMAS[kind],  # type: ignore[index]
        "description": "Message name and version.",
    }
    assert "schema" in schema["required"]
    assert schema["title"].startswith(f"{kind}.v1: ")


def test_there_is_no_schema_file_without_a_kind() -> None:
    files = {p.name for p in ROOT.glob("*.schema.json")} - NOT_ON_A_TOPIC - BATCHES - ARTIFACTS
    assert files == {f"{kind}.v1.schema.json" for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_examples(kind: str) -> None:
    assert list((ROOT / "examples" / kind).glob("*.json")), f"no examples for {kind}"


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_example_validates_decodes_and_re_encodes_to_a_valid_message(path: Path) -> None:
    kind = path.parent.name
    raw = path.read_bytes()
    validator(kind).validate(json.loads(raw))
    message = codec.decode(kind, raw)
    assert not isinstance(message, codec.Rejected), message
    assert message.kind == kind
    again = encode(message)
    validator(kind).validate(json.loads(again))
    assert codec.decode(kind, again) == message
    assert to_dict(message) == json.loads(again)


# --- topics.yaml --------------------------------------------------------------------


def topics() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load((ROOT / "topics.yaml").read_text())["topics"]
    return entries


def test_topics_yaml_lists_every_schema_file_and_every_listed_file_exists() -> None:
    listed = [t["schema"] for t in topics()]
    on_topics = {p.name for p in ROOT.glob("*.schema.json")} - NOT_ON_A_TOPIC - BATCHES
    assert sorted(listed) == sorted(on_topics)
    assert len(set(listed)) == len(listed)
    assert {t["batch_schema"] for t in topics() if "batch_schema" in t} == BATCHES


def test_topics_yaml_entries_are_complete_and_match_the_code() -> None:
    required = {"name", "key", "cleanup_policy", "schema", "producers", "consumers"}
    by_schema = {t["schema"]: t for t in topics()}
    for kind in KINDS:
        topic = by_schema[f"{kind}.v1.schema.json"]
        assert required <= set(topic) and topic["description"].strip()
        assert topic["name"] == TOPICS[kind]
        assert topic["cleanup_policy"] in ("delete", "compact")
        assert topic["producers"] and topic["consumers"]
        compacted = kind in ("account_settings", "campaigns", "creatives", "offers")
        compacted = compacted or kind == "params_snapshot"
        assert (topic["cleanup_policy"] == "compact") == compacted, kind
        assert topic["key"] == ("original message key" if kind == "dead_letter" else "account_id")
    assert len({t["name"] for t in topics()}) == len(topics())


# --- literal sets stay in sync with selector and stream.wire.reasons ---------------------


def enum_at(kind: str, *path: str) -> tuple[str, ...]:
    node: Any = load_schema(kind)
    for step in path:
        node = node[step]
    return tuple(node["enum"])


def test_response_enumerations_are_selectors_literals() -> None:
    then = ("then", "properties")
    assert enum_at("selection_response", *then, "arm") == ARMS
    assert enum_at("selection_response", *then, "method") == DECIDED_BY
    assert enum_at("selection_response", *then, "pool") == POOLS
    assert enum_at("selection_response", *then, "reason") == REASONS
    error = ("else", "properties", "error", "properties", "reason")
    assert enum_at("selection_response", *error) == REJECTIONS
    assert enum_at("dead_letter", "properties", "reason") == REJECTIONS


def test_catalog_enumerations_are_the_domain_literals() -> None:
    settings = ("properties", "settings", "properties")
    assert enum_at("account_settings", *settings, "goal") == get_args(domain.Goal)
    method = (*settings, "methods", "items", "properties", "method")
    assert enum_at("account_settings", *method) == domain.METHODS
    item = ("properties", "creatives", "items", "properties")
    assert enum_at("creatives", *item, "type") == get_args(domain.CreativeType)
    assert enum_at("creatives", *item, "status") == get_args(domain.CreativeStatus)
    item = ("properties", "campaigns", "items", "properties")
    assert enum_at("campaigns", *item, "mode") == get_args(domain.CampaignMode)
    assert enum_at("campaigns", *item, "rotation") == get_args(domain.Rotation)
    item = ("properties", "offers", "items", "properties")
    assert enum_at("offers", *item, "payout_type") == get_args(domain.PayoutType)


def test_the_codec_reasons_come_first_in_the_bounded_set() -> None:
    assert set(DECODE_REJECTIONS) <= set(REJECTIONS)
    assert len(set(REJECTIONS)) == len(REJECTIONS)


CATALOG_OBJECTS = [
    ("account_settings", ("properties", "settings"), domain.SelectionSettings),
    ("account_settings", ("properties", "settings", "properties", "prior"), domain.BetaPrior),
    (
        "account_settings",
        ("properties", "settings", "properties", "methods", "items"),
        domain.MethodShare,
    ),
    ("campaigns", ("properties", "campaigns", "items"), domain.Campaign),
    ("creatives", ("properties", "creatives", "items"), domain.Creative),
    ("offers", ("properties", "offers", "items"), domain.Offer),
]


@pytest.mark.parametrize(("kind", "path", "cls"), CATALOG_OBJECTS, ids=lambda x: str(x))
def test_catalog_objects_have_the_domain_fields_and_require_those_without_defaults(
    kind: str, path: tuple[str, ...], cls: type
) -> None:
    node: Any = load_schema(kind)
    for step in path:
        node = node[step]
    fields = dataclasses.fields(cls)
    extra = ["sending_hours"] if cls is domain.Campaign else []  # the send-time override
    assert list(node["properties"]) == [f.name for f in fields] + extra
    no_default = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert node["required"] == no_default
    assert node["additionalProperties"] is False


def test_the_account_send_time_block_is_the_scenarios() -> None:
    """A scenario's send_time is written as an account's configuration is."""
    scenario = json.loads((ROOT / "sendtime_scenario.v1.schema.json").read_text())["$defs"]
    settings = load_schema("account_settings")
    assert settings["properties"]["send_time"]["$ref"] == "#/$defs/send_time"
    assert settings["$defs"] == {"send_time": scenario["send_time"], "hours": scenario["hours"]}
    assert load_schema("campaigns")["$defs"] == {"hours": scenario["hours"]}


def test_a_send_times_selection_is_the_selection_response_without_its_schema_field() -> None:
    """The `selection` a send-time answer carries (`select_creative`) is written and read
    as the selection response is, so its schema is that one's, less `schema`."""
    selection = load_schema("send_time_response")["$defs"]["selection"]
    response = load_schema("selection_response")
    assert selection["required"] == [r for r in response["required"] if r != "schema"]
    assert selection["properties"] == {
        k: v for k, v in response["properties"].items() if k != "schema"
    }
    for key in ("if", "then", "else", "unevaluatedProperties"):
        assert selection[key] == response[key]
    ok = load_schema("send_time_response")["then"]["properties"]["selection"]
    assert ok["$ref"] == "#/$defs/selection"
