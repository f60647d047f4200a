"""The batch envelopes' contract: each schema is valid JSON Schema, every example
validates and opens with every item valid, each item with its `schema` and `account_id`
filled in is a valid single message of its kind, and what the schema refuses about the
envelope the codec refuses too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from stream.wire import codec
from stream.wire.batches import BATCH_SCHEMAS, Opened, open_events, open_requests, open_responses

ROOT = Path(__file__).resolve().parents[2] / "schemas"
NAMES = [name.removesuffix(".v1") for name in BATCH_SCHEMAS]
ITEMS = {
    "selection_request_batch": "requests",
    "selection_response_batch": "responses",
    "event_batch": "events",
}


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / f"{name}.v1.schema.json").read_text())
    return loaded


def single_validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(kind))


def opened_items(name: str, doc: dict[str, Any]) -> list[Any]:
    raw = orjson.dumps(doc)
    if name == "selection_response_batch":
        values = open_responses(raw)
        assert isinstance(values, list)
        return values
    result = (
        open_requests(raw) if name == "selection_request_batch" else open_events(doc["kind"], raw)
    )
    assert isinstance(result, Opened), result
    return [item.value for item in result.items]


@pytest.mark.parametrize("name", NAMES)
def test_each_batch_schema_is_valid_and_named(name: str) -> None:
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["properties"]["schema"]["const"] == f"{name}.v1"
    assert doc["title"].startswith(f"{name}.v1: ")
    assert doc["properties"][ITEMS[name]]["maxItems"] == 1000


def examples() -> list[Path]:
    return sorted(p for name in NAMES for p in (ROOT / "examples" / name).glob("*.json"))


@pytest.mark.parametrize("path", examples(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_example_validates_and_opens_item_by_item(path: Path) -> None:
    name, doc = path.parent.name, json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema(name)).validate(doc)
    values = opened_items(name, doc)
    assert values and not any(isinstance(v, codec.Rejected) for v in values)
    kind = {"selection_request_batch": "selection_request", "selection_response_batch": None}
    for item, value in zip(doc[ITEMS[name]], values, strict=True):
        single = kind.get(name, doc.get("kind")) or "selection_response"
        full = {"schema": f"{single}.v1", **item}
        if "account_id" in doc:
            full.setdefault("account_id", doc["account_id"])
        single_validator(single).validate(full)
        assert codec.decode(single, orjson.dumps(full)) == value


def with_changes(name: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(next((ROOT / "examples" / name).glob("*.json")).read_text())
    return doc | changes


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("selection_request_batch", {"requests": []}),
        ("selection_request_batch", {"account_id": ""}),
        ("selection_request_batch", {"requests": [{"request_id": "r"}] * 1001}),
        ("event_batch", {"kind": "impression"}),
        ("event_batch", {"events": "all of them"}),
        ("selection_response_batch", {"responses": {"a": 1}}),
    ],
    ids=str,
)
def test_what_the_schema_refuses_about_the_envelope_the_codec_refuses(
    name: str, changes: dict[str, Any]
) -> None:
    doc = with_changes(name, **changes)
    assert not jsonschema.Draft202012Validator(schema(name)).is_valid(doc)
    raw = orjson.dumps(doc)
    if name == "selection_response_batch":
        assert isinstance(open_responses(raw), codec.Rejected)
    elif name == "selection_request_batch":
        assert isinstance(open_requests(raw), codec.Rejected)
    else:
        assert all(isinstance(open_events(k, raw), codec.Rejected) for k in ("send", "click"))
