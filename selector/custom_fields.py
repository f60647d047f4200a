"""Custom fields: contact-level data an account declares, used as model features.

An account declares each field once, in its settings' `custom_fields` (so the domain's
`SelectionSettings` holds them, and this module sits beside `selector.domain` rather than
in `selector.model`): a `NumericField` with bounds, or a `CategoricalField` with a
bounded list of values. A contact's values are stored in its profile as one float per
declared field, in declaration order ("slots"): the number itself for a numeric field,
the value's position for a categorical one, None when the value is missing (NaN in the
stored record). Values that do not fit the declaration are dropped (the slot keeps its
previous value) and reported with a named reason, never raised.

Examples
--------
>>> fields = fields_from_dicts([
...     {"name": "age", "type": "numeric", "min": 18, "max": 99},
...     {"name": "plan", "type": "categorical", "values": ["free", "pro"]},
... ])
>>> slots, problems = to_slots(fields, {"age": 41, "plan": "gold"})
>>> slots[0], problems
(41.0, (('plan', 'unknown_category'),))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from selector.errors import ConfigError

FieldReason = Literal[
    "unknown_field", "not_a_number", "out_of_bounds", "not_a_string", "unknown_category"
]
FIELD_REASONS: tuple[FieldReason, ...] = get_args(FieldReason)
MAX_FIELDS = 8
MAX_CATEGORIES = 32
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class NumericField:
    """A number within [low, high]; the model sees it scaled to [0, 1]."""

    name: str
    low: float
    high: float

    def __post_init__(self) -> None:
        _name(self.name)
        path = f"custom_fields.{self.name}"
        for bound in (self.low, self.high):
            if not _is_number(bound):
                raise ConfigError(path, f"bounds must be finite numbers; got {bound!r}")
        if not self.low < self.high:
            raise ConfigError(path, f"min must be below max; got {self.low} and {self.high}")

    def slot(self, value: object) -> float | FieldReason:
        if not _is_number(value):
            return "not_a_number"
        number = float(value)  # type: ignore[arg-type]
        return number if self.low <= number <= self.high else "out_of_bounds"


@dataclass(frozen=True, slots=True)
class CategoricalField:
    """One of a declared list of strings; the model sees one indicator per value."""

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        _name(self.name)
        path = f"custom_fields.{self.name}.values"
        if not 1 <= len(self.values) <= MAX_CATEGORIES:
            raise ConfigError(path, f"needs 1 to {MAX_CATEGORIES} values; got {len(self.values)}")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(path, "lists a value twice")
        if not all(isinstance(v, str) and v for v in self.values):
            raise ConfigError(path, "values must be non-empty strings")

    def slot(self, value: object) -> float | FieldReason:
        if not isinstance(value, str):
            return "not_a_string"
        try:
            return float(self.values.index(value))
        except ValueError:
            return "unknown_category"


CustomField = NumericField | CategoricalField


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _name(name: object) -> None:
    if not (isinstance(name, str) and 0 < len(name) <= MAX_NAME):
        raise ConfigError("custom_fields[].name", f"must be a string of 1-{MAX_NAME} characters")


def check_fields(fields: Sequence[CustomField]) -> tuple[CustomField, ...]:
    """The declarations as a tuple, after the checks that span fields."""
    if len(fields) > MAX_FIELDS:
        raise ConfigError("custom_fields", f"at most {MAX_FIELDS} fields; got {len(fields)}")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ConfigError("custom_fields", "declares a name twice")
    return tuple(fields)


def fields_from_dicts(data: Sequence[Mapping[str, Any]]) -> tuple[CustomField, ...]:
    """Declarations from catalog documents:
    `{"name", "type": "numeric", "min", "max"}` or `{"name", "type": "categorical", "values"}`.
    """
    fields: list[CustomField] = []
    for item in data:
        kind = item.get("type") if isinstance(item, Mapping) else None
        name = item.get("name", "?") if isinstance(item, Mapping) else "?"
        path = f"custom_fields.{name}"
        if kind == "numeric" and set(item) == {"name", "type", "min", "max"}:
            fields.append(NumericField(item["name"], item["min"], item["max"]))
        elif kind == "categorical" and set(item) == {"name", "type", "values"}:
            values = item["values"]
            if not isinstance(values, list | tuple):
                raise ConfigError(f"{path}.values", "must be a list of strings")
            fields.append(CategoricalField(item["name"], tuple(values)))
        else:
            raise ConfigError(
                path, "must be {name, type: numeric, min, max} or {name, type: categorical, values}"
            )
    return check_fields(fields)


def fields_to_dicts(fields: Sequence[CustomField]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in fields:
        if isinstance(f, NumericField):
            out.append({"name": f.name, "type": "numeric", "min": f.low, "max": f.high})
        else:
            out.append({"name": f.name, "type": "categorical", "values": list(f.values)})
    return out


def to_slots(
    fields: Sequence[CustomField],
    values: Mapping[str, object],
    previous: Sequence[float | None] | None = None,
) -> tuple[tuple[float | None, ...], tuple[tuple[str, FieldReason], ...]]:
    """Slots for `values` (field name -> raw value), starting from `previous` (all missing
    if None). A None value clears the slot. Returns the slots and (name, reason) for every
    value that was dropped."""
    slots: list[float | None] = list(previous) if previous is not None else []
    slots += [None] * (len(fields) - len(slots))
    index = {f.name: i for i, f in enumerate(fields)}
    problems: list[tuple[str, FieldReason]] = []
    for name, raw in values.items():
        i = index.get(name)
        if i is None:
            problems.append((str(name)[:MAX_NAME], "unknown_field"))
            continue
        if raw is None:
            slots[i] = None
            continue
        slot = fields[i].slot(raw)
        if isinstance(slot, str):
            problems.append((name, slot))
        else:
            slots[i] = slot
    return tuple(slots[: len(fields)]), tuple(problems)
