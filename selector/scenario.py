"""A simulation scenario: an account, the true behaviour of its contacts, and a horizon.

The document (YAML or JSON, `schemas/scenario.v1.schema.json`) reuses the account's own
shapes for `offers`, `campaign` and `settings`, so a scenario is also a worked example of
a real configuration. What only a simulation knows is added beside them: each creative's
true click rate and conversion rate (conversions given a click), contact `segments` that
behave differently, `changes` to the truth over time (fatigue, a creative activated
mid-run), the number of distinct `contacts` (so cooldowns bite), the `horizon`, the
`feedback_delay_seconds` before clicks and conversions reach the stats, and the batch size.
Contacts can also carry features that drive creative-specific rates (custom fields, an
engagement hour, repeat clicks): `selector.contacts`.

Everything is validated here, with a `ConfigError` naming the field, so that a bad
scenario fails when it is loaded and not half-way through a long run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, get_args

import numpy as np
from numpy.typing import NDArray

from selector.contacts import SEGMENT_FIELDS, ContactModel, contact_model_from_dict
from selector.delays import NO_DELAY, DelayDistribution, delay_from_dict
from selector.domain import DAY_SECONDS, Account, CreativeStatus, account_from_dict
from selector.fields import count as _count
from selector.fields import mapping as _mapping
from selector.fields import number as _number
from selector.fields import require as _require

FloatMatrix = NDArray[np.float64]
TOP_LEVEL = {
    *("version", "name", "description", "account_id", "settings", "campaign", "offers"),
    *("creatives", "segments", "changes", "contacts", "horizon", "feedback_delay_seconds"),
    *("feedback_delays", "batch_size", "custom_fields", "contact_effects"),
}
REQUIRED = ("offers", "creatives", "campaign", "contacts", "horizon")
RATE_FIELDS = {"click_rate", "conversion_rate", "click_multiplier", "conversion_multiplier"}


@dataclass(frozen=True, slots=True)
class RateChange:
    """New rates for one creative: absolute rates, or multipliers of the current ones."""

    click_rate: float | None = None
    conversion_rate: float | None = None
    click_multiplier: float | None = None
    conversion_multiplier: float | None = None

    def applied(self, click: float, conversion: float) -> tuple[float, float]:
        return (
            _adjust(click, self.click_rate, self.click_multiplier),
            _adjust(conversion, self.conversion_rate, self.conversion_multiplier),
        )


def _adjust(current: float, absolute: float | None, multiplier: float | None) -> float:
    if absolute is not None:
        return absolute
    return current * multiplier if multiplier is not None else current


def _rate_change(data: Mapping[str, Any], path: str) -> RateChange:
    values: dict[str, float] = {}
    for kind in ("click", "conversion"):
        rate, mult = f"{kind}_rate", f"{kind}_multiplier"
        _require(not (rate in data and mult in data), path, f"give {rate} or {mult}, not both")
        if rate in data:
            values[rate] = _number(data[rate], f"{path}.{rate}", 0.0, 1.0)
        if mult in data:
            values[mult] = _number(data[mult], f"{path}.{mult}", 0.0)
    return RateChange(**values)


@dataclass(frozen=True, slots=True)
class Segment:
    """A share of the contacts whose rates differ for some creatives."""

    name: str
    share: float
    creatives: Mapping[str, RateChange]


@dataclass(frozen=True, slots=True)
class Change:
    """At `at_seconds`, a creative's status and/or its true rates (in every segment) change."""

    at_seconds: float
    creative_id: str
    status: CreativeStatus | None
    rates: RateChange


@dataclass(frozen=True, slots=True)
class Phase:
    """The truth between two changes: the catalog in force and rates per segment x creative."""

    start_seconds: float
    account: Account
    click_rate: FloatMatrix
    conversion_rate: FloatMatrix


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario; build it with `scenario_from_dict`."""

    name: str
    description: str
    account: Account
    click_rate: tuple[float, ...]
    conversion_rate: tuple[float, ...]
    segments: tuple[Segment, ...]
    changes: tuple[Change, ...]
    contacts: int
    sends: int
    sends_per_day: float
    feedback_delay_seconds: float
    batch_size: int
    click_delay: DelayDistribution = NO_DELAY
    conversion_delay: DelayDistribution = NO_DELAY
    contact_model: ContactModel = field(default_factory=ContactModel)

    def __post_init__(self) -> None:
        _require(
            self.contacts >= self.batch_size,
            "contacts",
            (
                f"must be >= batch_size ({self.batch_size}): a batch sends to distinct contacts; "
                f"got {self.contacts}"
            ),
        )
        self.phases()  # validates that every changed rate stays a probability

    @property
    def duration_seconds(self) -> float:
        return self.sends / self.sends_per_day * DAY_SECONDS

    @property
    def segment_names(self) -> tuple[str, ...]:
        rest = () if math.isclose(sum(s.share for s in self.segments), 1.0) else ("(rest)",)
        return (*(s.name for s in self.segments), *rest)

    def segment_shares(self) -> NDArray[np.float64]:
        """Share of contacts per segment; contacts in no listed segment form the last one."""
        shares = [s.share for s in self.segments]
        if len(self.segment_names) > len(shares):
            shares.append(1.0 - sum(shares))
        return np.array(shares, dtype=np.float64)

    def without_forgetting(self) -> Scenario:
        """The same scenario with the account's half-life removed (for comparisons)."""
        settings = replace(self.account.settings, half_life_seconds=None)
        return replace(self, account=replace(self.account, settings=settings))

    def phases(self) -> tuple[Phase, ...]:
        """The truth over time: one phase from 0, then one per distinct change time."""
        click, conv = self._segment_rates()
        account = self.account
        phases = [Phase(0.0, account, click.copy(), conv.copy())]
        index = {c.creative_id: i for i, c in enumerate(account.creatives)}
        for change in self.changes:
            k = index[change.creative_id]
            for s in range(click.shape[0]):
                click[s, k], conv[s, k] = change.rates.applied(click[s, k], conv[s, k])
            where = f"changes ({change.creative_id} at {change.at_seconds:g} s)"
            _check_probabilities(click, conv, where)
            if change.status is not None:
                account = _with_status(account, change.creative_id, change.status)
            if phases[-1].start_seconds == change.at_seconds:
                phases.pop()
            phases.append(Phase(change.at_seconds, account, click.copy(), conv.copy()))
        return tuple(phases)

    def _segment_rates(self) -> tuple[FloatMatrix, FloatMatrix]:
        base_click, base_conv = np.array(self.click_rate), np.array(self.conversion_rate)
        rows = len(self.segment_names)
        click, conv = np.tile(base_click, (rows, 1)), np.tile(base_conv, (rows, 1))
        index = {c.creative_id: i for i, c in enumerate(self.account.creatives)}
        for s, segment in enumerate(self.segments):
            for creative_id, change in segment.creatives.items():
                k = index[creative_id]
                click[s, k], conv[s, k] = change.applied(base_click[k], base_conv[k])
        _check_probabilities(click, conv, "segments")
        return click, conv


def _check_probabilities(click: FloatMatrix, conv: FloatMatrix, path: str) -> None:
    worst = max(float(click.max(initial=0.0)), float(conv.max(initial=0.0)))
    _require(worst <= 1.0, path, f"a multiplier makes a rate exceed 1 ({worst:.3g})")


def _with_status(account: Account, creative_id: str, status: CreativeStatus) -> Account:
    creatives = tuple(
        replace(c, status=status) if c.creative_id == creative_id else c for c in account.creatives
    )
    return replace(account, creatives=creatives)


# --- construction from the document ------------------------------------------------------


def scenario_from_dict(data: Mapping[str, Any], name: str = "scenario") -> Scenario:
    """Build and validate a `Scenario` from a YAML/JSON-shaped document."""
    doc = _mapping(data, "scenario", TOP_LEVEL)
    for key in REQUIRED:
        _require(key in doc, key, "is required")
    _require(doc.get("version", 1) == 1, "version", f"must be 1; got {doc.get('version')!r}")
    creatives = doc["creatives"]
    _require(isinstance(creatives, list) and len(creatives) > 0, "creatives", "needs a list")
    rates = [_creative_rates(c, i) for i, c in enumerate(creatives)]
    account = account_from_dict(
        {
            "account_id": doc.get("account_id", "simulated"),
            "settings": doc.get("settings", {}),
            "offers": doc["offers"],
            "creatives": [{k: v for k, v in c.items() if k not in RATE_FIELDS} for c in creatives],
            "campaigns": [doc["campaign"]],
        }
    )
    known = {c.creative_id for c in account.creatives}
    sends, per_day = _horizon(doc["horizon"])
    segments = _segments(doc.get("segments", []), known)
    return Scenario(
        name=str(doc.get("name", name)),
        description=str(doc.get("description", "")),
        account=account,
        click_rate=tuple(r[0] for r in rates),
        conversion_rate=tuple(r[1] for r in rates),
        segments=segments,
        changes=_changes(doc.get("changes", []), known, sends / per_day * DAY_SECONDS),
        contacts=_count(doc["contacts"], "contacts"),
        sends=sends,
        sends_per_day=per_day,
        batch_size=_count(doc.get("batch_size", 1000), "batch_size"),
        **_delays(doc),
        contact_model=_contact_model(doc, segments),
    )


def _contact_model(doc: Mapping[str, Any], segments: tuple[Segment, ...]) -> ContactModel:
    rest = not math.isclose(sum(s.share for s in segments), 1.0)
    return contact_model_from_dict(
        doc.get("custom_fields", []),
        doc.get("contact_effects", {}),
        doc.get("segments", []),
        len(segments) + rest,
    )


def _delays(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`feedback_delays` (a distribution per kind), or the older constant delay for both."""
    constant = _number(doc.get("feedback_delay_seconds", 0), "feedback_delay_seconds", 0.0)
    if "feedback_delays" not in doc:
        fixed = DelayDistribution("constant", constant)
        return {"feedback_delay_seconds": constant, "click_delay": fixed}
    _require(
        "feedback_delay_seconds" not in doc,
        "feedback_delays",
        "give feedback_delays or feedback_delay_seconds, not both",
    )
    laws = _mapping(doc["feedback_delays"], "feedback_delays", {"click", "conversion"})
    none = {"distribution": "constant", "seconds": 0}
    click, conversion = (
        delay_from_dict(laws.get(kind, none), f"feedback_delays.{kind}")
        for kind in ("click", "conversion")
    )
    return {
        "feedback_delay_seconds": click.median_seconds,
        "click_delay": click,
        "conversion_delay": conversion,
    }


def _creative_rates(data: object, i: int) -> tuple[float, float]:
    path = f"creatives[{i}]"
    _require(isinstance(data, Mapping), path, "must be an object")
    assert isinstance(data, Mapping)
    for key in ("click_rate", "conversion_rate"):
        _require(key in data, f"{path}.{key}", "is required: the creative's true rate")
    extra = sorted(set(data) & {"click_multiplier", "conversion_multiplier"})
    _require(not extra, path, f"{', '.join(extra)} belong in segments or changes")
    return (
        _number(data["click_rate"], f"{path}.click_rate", 0.0, 1.0),
        _number(data["conversion_rate"], f"{path}.conversion_rate", 0.0, 1.0),
    )


def _horizon(data: object) -> tuple[int, float]:
    horizon = _mapping(data, "horizon", {"sends", "seconds", "sends_per_day"})
    _require("sends_per_day" in horizon, "horizon.sends_per_day", "is required")
    per_day = _number(horizon["sends_per_day"], "horizon.sends_per_day", 1e-9)
    has_sends, has_seconds = "sends" in horizon, "seconds" in horizon
    _require(has_sends != has_seconds, "horizon", "give exactly one of sends or seconds")
    if has_sends:
        return _count(horizon["sends"], "horizon.sends"), per_day
    seconds = _number(horizon["seconds"], "horizon.seconds", 0.0)
    sends = math.floor(seconds / DAY_SECONDS * per_day)
    _require(sends >= 1, "horizon.seconds", f"is too short for one send at {per_day:g}/day")
    return sends, per_day


def _segments(data: object, known: set[str]) -> tuple[Segment, ...]:
    _require(isinstance(data, list), "segments", "must be a list")
    assert isinstance(data, list)
    segments: list[Segment] = []
    for i, raw in enumerate(data):
        path = f"segments[{i}]"
        item = _mapping(raw, path, {"name", "share", "creatives", *SEGMENT_FIELDS})
        _require(
            isinstance(item.get("name"), str) and item["name"] != "",
            f"{path}.name",
            "is required: a non-empty string",
        )
        share = _number(item.get("share"), f"{path}.share", 0.0, 1.0)
        _require(share > 0, f"{path}.share", "must be > 0")
        per_creative = _mapping(item.get("creatives", {}), f"{path}.creatives", known, "creative")
        where = {cid: f"{path}.creatives.{cid}" for cid in per_creative}
        changes = {
            cid: _rate_change(_mapping(v, where[cid], RATE_FIELDS), where[cid])
            for cid, v in per_creative.items()
        }
        segments.append(Segment(item["name"], share, changes))
    names = [s.name for s in segments]
    _require(len(set(names)) == len(names), "segments", "a segment name appears twice")
    total = sum(s.share for s in segments)
    _require(total <= 1.0 + 1e-9, "segments", f"shares must sum to at most 1; got {total:g}")
    return tuple(segments)


def _changes(data: object, known: set[str], end_seconds: float) -> tuple[Change, ...]:
    _require(isinstance(data, list), "changes", "must be a list")
    assert isinstance(data, list)
    changes: list[Change] = []
    for i, raw in enumerate(data):
        path = f"changes[{i}]"
        item = _mapping(raw, path, {"at_seconds", "creative_id", "status"} | RATE_FIELDS)
        at = _number(item.get("at_seconds"), f"{path}.at_seconds", 0.0)
        _require(
            at < end_seconds,
            f"{path}.at_seconds",
            f"{at:g} is not before the horizon's end ({end_seconds:g} s), so it would never apply",
        )
        creative_id = item.get("creative_id")
        _require(
            creative_id in known,
            f"{path}.creative_id",
            f"must name a creative of the scenario; got {creative_id!r}",
        )
        status = item.get("status")
        allowed = get_args(CreativeStatus)
        _require(
            status is None or status in allowed,
            f"{path}.status",
            f"must be one of {', '.join(allowed)}; got {status!r}",
        )
        rates = _rate_change(item, path)
        _require(
            status is not None or rates != RateChange(),
            path,
            "changes nothing: give a status or new rates",
        )
        changes.append(Change(at, str(creative_id), status, rates))
    return tuple(sorted(changes, key=lambda c: c.at_seconds))
