"""Simulated contacts whose own features drive creative-specific rates.

A scenario may give its contacts what a real contact profile would reveal:
- `custom_fields` (declared as in a catalog) whose values each segment sets for its
  contacts (`segments[].custom`), filled for a share of them (`custom_known_share`);
- a usual engagement hour per contact, around its segment's `engagement_hour` with
  `contact_effects.engagement_spread_hours` of spread: a send at hour h has its click
  rates multiplied by 1 + `hour_amplitude` cos(2 pi (h - contact hour) / 24), so clicks
  cluster around the contact's hour and the profile's engagement hour points at it;
- `repeat_click_multiplier`: a contact's click rate for a creative it clicked before.
Segments whose creative rankings differ then make the best creative depend on the
contact, so a contextual oracle beats any single creative. Without these fields every
multiplier is 1 and the simulation is the one of a plain scenario, draw for draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.custom_fields import CustomField, fields_from_dicts, to_slots
from selector.domain import DAY_SECONDS, ConfigError
from selector.model.profile import MAX_CUSTOM

Array = NDArray[Any]
SEGMENT_FIELDS = {"custom", "custom_known_share", "engagement_hour"}
EFFECT_FIELDS = {"hour_amplitude", "engagement_spread_hours", "repeat_click_multiplier"}


@dataclass(frozen=True, slots=True)
class SegmentContacts:
    slots: tuple[float | None, ...]
    known_share: float
    engagement_hour: float | None


@dataclass(frozen=True, slots=True)
class ContactModel:
    """How a scenario's contacts differ, beyond their segment's rates."""

    fields: tuple[CustomField, ...] = ()
    segments: tuple[SegmentContacts, ...] = ()
    hour_amplitude: float = 0.0
    engagement_spread_hours: float = 2.0
    repeat_click_multiplier: float = 1.0

    @property
    def varies_rates(self) -> bool:
        return self.hour_amplitude > 0 or self.repeat_click_multiplier != 1.0


@dataclass(frozen=True, slots=True, eq=False)
class Contacts:
    """Each simulated contact's hour (NaN: none) and custom slots (NaN: missing)."""

    hour: Array
    custom: Array


def _number(value: object, path: str, low: float, high: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise ConfigError(path, f"must be a number between {low:g} and {high:g}; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def contact_model_from_dict(
    fields_doc: object, effects_doc: object, segments_doc: Sequence[Mapping[str, Any]], rows: int
) -> ContactModel:
    """Validate the scenario's contact parts; `rows` counts segments plus the rest."""
    if not isinstance(fields_doc, list):
        raise ConfigError("custom_fields", "must be a list")
    fields = fields_from_dicts(fields_doc)
    if not isinstance(effects_doc, Mapping):
        raise ConfigError("contact_effects", "must be an object")
    unknown = sorted(set(effects_doc) - EFFECT_FIELDS)
    if unknown:
        raise ConfigError("contact_effects", f"unknown field(s) {', '.join(unknown)}")
    segments = [_segment(s, i, fields) for i, s in enumerate(segments_doc)]
    segments += [SegmentContacts((), 1.0, None)] * (rows - len(segments))

    def effect(name: str, default: float, high: float) -> float:
        return _number(effects_doc.get(name, default), f"contact_effects.{name}", 0.0, high)

    return ContactModel(
        fields=fields,
        segments=tuple(segments),
        hour_amplitude=effect("hour_amplitude", 0.0, 1.0),
        engagement_spread_hours=effect("engagement_spread_hours", 2.0, 12.0),
        repeat_click_multiplier=effect("repeat_click_multiplier", 1.0, 10.0),
    )


def _segment(doc: Mapping[str, Any], i: int, fields: tuple[CustomField, ...]) -> SegmentContacts:
    path = f"segments[{i}]"
    values = doc.get("custom", {})
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path}.custom", "must map field names to values")
    slots, problems = to_slots(fields, values)
    if problems:
        name, reason = problems[0]
        raise ConfigError(f"{path}.custom.{name}", f"does not fit its declaration ({reason})")
    hour = doc.get("engagement_hour")
    return SegmentContacts(
        slots,
        _number(doc.get("custom_known_share", 1.0), f"{path}.custom_known_share", 0.0, 1.0),
        None if hour is None else _number(hour, f"{path}.engagement_hour", 0.0, 24.0),
    )


def draw_contacts(model: ContactModel, segment_of: Array, rng: np.random.Generator) -> Contacts:
    """Each contact's own hour and custom slots, drawn once for the run."""
    n = segment_of.size
    hour = np.full(n, np.nan)
    custom = np.full((n, MAX_CUSTOM), np.nan)
    known = rng.random(n)
    spread = rng.normal(0.0, model.engagement_spread_hours, n)
    anywhere = rng.uniform(0.0, 24.0, n)
    for s, seg in enumerate(model.segments):
        rows = segment_of == s
        if seg.engagement_hour is not None:
            hour[rows] = np.mod(seg.engagement_hour + spread[rows], 24.0)
        elif model.hour_amplitude > 0:
            hour[rows] = anywhere[rows]
        filled = rows & (known < seg.known_share)
        for j, value in enumerate(seg.slots):
            if value is not None:
                custom[filled, j] = value
    return Contacts(hour, custom)


def click_multipliers(
    model: ContactModel, hours: Array, now: float, clicked_before: Array
) -> Array:
    """(n x K) factors on the segment click rates of n contacts sent at `now`."""
    n, k = clicked_before.shape
    factor = np.ones((n, k))
    if model.hour_amplitude > 0:
        send_hour = (now % DAY_SECONDS) / DAY_SECONDS * 24.0
        angle = 2.0 * np.pi * (send_hour - np.nan_to_num(hours)) / 24.0
        factor *= np.where(np.isnan(hours), 1.0, 1.0 + model.hour_amplitude * np.cos(angle))[
            :, None
        ]
    if model.repeat_click_multiplier != 1.0:
        factor = np.where(clicked_before, factor * model.repeat_click_multiplier, factor)
    return factor
