"""Custom field declarations validate themselves; bad values get named reasons."""

from __future__ import annotations

from typing import Any

import pytest

from selector.custom_fields import (
    CategoricalField,
    NumericField,
    fields_from_dicts,
    fields_to_dicts,
    to_slots,
)
from selector.domain import ConfigError

FIELDS = (NumericField("age", 18, 99), CategoricalField("plan", ("free", "pro")))


def test_values_become_slots_in_declaration_order() -> None:
    assert to_slots(FIELDS, {"plan": "pro", "age": 30}) == ((30.0, 1.0), ())
    assert to_slots(FIELDS, {}) == ((None, None), ())


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"height": 2}, ("height", "unknown_field")),
        ({"age": "old"}, ("age", "not_a_number")),
        ({"age": True}, ("age", "not_a_number")),
        ({"age": float("nan")}, ("age", "not_a_number")),
        ({"age": 120}, ("age", "out_of_bounds")),
        ({"plan": 3}, ("plan", "not_a_string")),
        ({"plan": "gold"}, ("plan", "unknown_category")),
    ],
)
def test_a_bad_value_is_dropped_with_its_reason(values: dict[str, Any], problem: Any) -> None:
    slots, problems = to_slots(FIELDS, values, previous=(40.0, 0.0))
    assert problems == (problem,)
    assert slots == (40.0, 0.0)  # the previous value stays


def test_none_clears_a_slot() -> None:
    assert to_slots(FIELDS, {"age": None}, previous=(40.0, 0.0))[0] == (None, 0.0)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ([{"name": "x", "type": "numeric", "min": 5, "max": 5}], "custom_fields.x"),
        ([{"name": "x", "type": "numeric", "min": 0}], "custom_fields.x"),
        ([{"name": "x", "type": "categorical", "values": []}], "custom_fields.x.values"),
        ([{"name": "x", "type": "categorical", "values": ["a", "a"]}], "custom_fields.x.values"),
        ([{"name": "x", "type": "categorical", "values": "ab"}], "custom_fields.x.values"),
        ([{"name": "x", "type": "date"}], "custom_fields.x"),
        ([{"name": "", "type": "numeric", "min": 0, "max": 1}], "custom_fields[].name"),
        ([{"name": "x", "type": "numeric", "min": 0, "max": 1}] * 2, "custom_fields"),
        ([{"name": f"f{i}", "type": "numeric", "min": 0, "max": 1} for i in range(9)],
         "custom_fields"),
    ],
)  # fmt: skip
def test_every_invalid_declaration_names_its_field(doc: list[Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        fields_from_dicts(doc)
    assert err.value.path == path


def test_declarations_round_trip_through_documents() -> None:
    assert fields_from_dicts(fields_to_dicts(FIELDS)) == FIELDS
