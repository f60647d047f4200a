"""A send-time simulation scenario: the account's send-time settings and what only a
simulation knows about its contacts and its calendar.

The document (YAML or JSON, `schemas/sendtime_scenario.v1.schema.json`, `kind: sendtime`)
gives the account's `send_time` settings in the same shape as a real configuration,
then the truth: contact `routines` (the local hour each group responds best at, on
weekdays and at weekends), the `response` model (each contact's best rate, how much less
it responds far from its best hour, how long it takes), the account-wide
`weekday_factors` (Monday to Sunday), each contact's `history` before the experiment,
the `campaigns` (a daily series of launches and its outcome window) and the `alignment`
variant (the optimized group launched earlier, the control delayed).

Everything is checked here with a `ConfigError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from selector.domain import ConfigError
from selector.fields import count as _count
from selector.fields import mapping as _mapping
from selector.fields import number as _number
from selector.fields import require as _require
from selector.sendtime.clock import load_zone
from selector.sendtime.hours import clock_minute
from selector.sendtime.settings import SendTimeSettings, sendtime_settings_from_dict

TOP_LEVEL = {
    *("kind", "version", "name", "description", "send_time", "contacts", "zones"),
    *("routines", "response", "weekday_factors", "history", "campaigns", "alignment"),
    *("measurement", "seed"),
}
EPOCH = date(1970, 1, 1)


def _clock(value: object, path: str) -> int:
    """'HH:MM' to seconds after midnight."""
    _require(isinstance(value, str), path, f"must be 'HH:MM'; got {value!r}")
    try:
        return clock_minute(str(value)) * 60
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


@dataclass(frozen=True, slots=True)
class Routine:
    """A share of contacts responding best around `best_hour` on weekdays and
    `weekend_best_hour` at weekends (local hours), each contact within `spread_hours`."""

    name: str
    share: float
    best_hour: float
    weekend_best_hour: float
    spread_hours: float


@dataclass(frozen=True, slots=True)
class ResponseModel:
    """A contact's rate at its best hour ~ Beta(mean, strength); far from it the rate is
    `off_peak` times that, in between a Gaussian bump of `width_hours`; responses come
    an exponential time (mean `delay_hours`) after delivery."""

    mean: float
    strength: float
    off_peak: float
    width_hours: float
    delay_hours: float


@dataclass(frozen=True, slots=True)
class Campaigns:
    """Daily launches from `first_day` at `launch_time` (account zone), `launches` of
    them (skipping `skip_weekdays`, Monday = 0), each delivered within `window_hours` and
    measured over `outcome_window_hours` from its launch; `launch_sd` varies each
    launch's appeal (log scale, the same for both groups)."""

    first_day: int
    launches: int
    launch_time: int
    window_hours: float
    outcome_window_hours: float
    skip_weekdays: tuple[int, ...]
    launch_sd: float


@dataclass(frozen=True, slots=True)
class SendTimeScenario:
    """A validated scenario; build it with `sendtime_scenario_from_dict`."""

    name: str
    description: str
    settings: SendTimeSettings
    contacts: int
    zones: tuple[tuple[str, float], ...]
    routines: tuple[Routine, ...]
    response: ResponseModel
    weekday_factors: tuple[float, ...]
    history_sends: int
    history_days: int
    campaigns: Campaigns
    aligned_launch_time: int
    aligned_control_delay: int
    min_week_days: int
    seed: int


def _routines(data: object) -> tuple[Routine, ...]:
    _require(isinstance(data, list) and len(data) > 0, "routines", "must be a non-empty list")
    assert isinstance(data, list)
    out = []
    for i, item in enumerate(data):
        path = f"routines[{i}]"
        fields = {"name", "share", "best_hour", "weekend_best_hour", "spread_hours"}
        d = _mapping(item, path, fields)
        for key in ("name", "share", "best_hour"):
            _require(key in d, path, f"needs {key}")
        best = _number(d["best_hour"], f"{path}.best_hour", 0.0, 24.0)
        out.append(
            Routine(
                str(d["name"]),
                _number(d["share"], f"{path}.share", 0.0, 1.0),
                best,
                _number(d.get("weekend_best_hour", best), f"{path}.weekend_best_hour", 0.0, 24.0),
                _number(d.get("spread_hours", 1.0), f"{path}.spread_hours", 0.0, 12.0),
            )
        )
    total = sum(r.share for r in out)
    _require(abs(total - 1.0) < 1e-9, "routines", f"shares must sum to 1; got {total:g}")
    return tuple(out)


def _zones(data: object, default: str) -> tuple[tuple[str, float], ...]:
    if data is None:
        return ((default, 1.0),)
    _require(isinstance(data, list) and len(data) > 0, "zones", "must be a non-empty list")
    assert isinstance(data, list)
    out = []
    for i, item in enumerate(data):
        d = _mapping(item, f"zones[{i}]", {"zone", "share"})
        zone = d.get("zone")
        _require(load_zone(zone) is not None, f"zones[{i}].zone", f"unknown time zone {zone!r}")
        out.append((str(zone), _number(d.get("share"), f"zones[{i}].share", 0.0, 1.0)))
    total = sum(s for _, s in out)
    _require(abs(total - 1.0) < 1e-9, "zones", f"shares must sum to 1; got {total:g}")
    return tuple(out)


def _response(data: object) -> ResponseModel:
    fields = {"best_rate", "off_peak", "width_hours", "delay_hours"}
    d = _mapping(data, "response", fields)
    best = _mapping(d.get("best_rate", {}), "response.best_rate", {"mean", "strength"})
    return ResponseModel(
        _number(best.get("mean", 0.25), "response.best_rate.mean", 0.001, 0.999),
        _number(best.get("strength", 20.0), "response.best_rate.strength", 0.1),
        _number(d.get("off_peak", 0.85), "response.off_peak", 0.0, 1.0),
        _number(d.get("width_hours", 2.5), "response.width_hours", 0.1, 24.0),
        _number(d.get("delay_hours", 2.0), "response.delay_hours", 0.0, 48.0),
    )


def _campaigns(data: object) -> Campaigns:
    fields = {"first_day", "launches", "launch_time", "window_hours", "outcome_window_hours"}
    d = _mapping(data, "campaigns", fields | {"skip_weekdays", "launch_sd"})
    try:
        first = (date.fromisoformat(str(d.get("first_day"))) - EPOCH).days
    except ValueError:
        raise ConfigError("campaigns.first_day", "must be a date YYYY-MM-DD") from None
    skip = d.get("skip_weekdays", [])
    ok = isinstance(skip, list) and all(isinstance(x, int) and 0 <= x <= 6 for x in skip)
    _require(
        ok and len(set(skip)) < 7, "campaigns.skip_weekdays", "must list weekdays 0-6 (not all)"
    )
    return Campaigns(
        first_day=first,
        launches=_count(d.get("launches"), "campaigns.launches"),
        launch_time=_clock(d.get("launch_time", "14:00"), "campaigns.launch_time"),
        window_hours=_number(d.get("window_hours", 24.0), "campaigns.window_hours", 0.0, 168.0),
        outcome_window_hours=_number(
            d.get("outcome_window_hours", 72.0), "campaigns.outcome_window_hours", 1.0, 720.0
        ),
        skip_weekdays=tuple(skip),
        launch_sd=_number(d.get("launch_sd", 0.0), "campaigns.launch_sd", 0.0, 2.0),
    )


def sendtime_scenario_from_dict(
    data: Mapping[str, Any], name: str = "sendtime"
) -> SendTimeScenario:
    """Validate and build a scenario."""
    d = _mapping(data, "scenario", TOP_LEVEL)
    _require(d.get("kind") == "sendtime", "kind", "must be 'sendtime'")
    _require(d.get("version", 1) == 1, "version", "must be 1")
    for key in ("send_time", "contacts", "routines", "campaigns"):
        _require(key in d, key, "is required")
    _require(isinstance(d["send_time"], Mapping), "send_time", "must be an object")
    try:
        settings = sendtime_settings_from_dict(d["send_time"])
    except ConfigError as exc:
        raise ConfigError(f"send_time.{exc.path}", exc.message) from None
    factors = d.get("weekday_factors", [1.0] * 7)
    ok = isinstance(factors, list) and len(factors) == 7
    _require(ok, "weekday_factors", "must list 7 numbers, Monday to Sunday")
    history = _mapping(d.get("history", {}), "history", {"sends", "days"})
    alignment = _mapping(
        d.get("alignment", {}), "alignment", {"launch_time", "control_delay_hours"}
    )
    measurement = _mapping(d.get("measurement", {}), "measurement", {"min_week_days"})
    return SendTimeScenario(
        name=str(d.get("name", name)),
        description=str(d.get("description", "")),
        settings=settings,
        contacts=_count(d["contacts"], "contacts"),
        zones=_zones(d.get("zones"), settings.zone),
        routines=_routines(d["routines"]),
        response=_response(d.get("response", {})),
        weekday_factors=tuple(
            _number(f, f"weekday_factors[{i}]", 0.0, 4.0) for i, f in enumerate(factors)
        ),
        history_sends=_count(history.get("sends", 0), "history.sends", 0),
        history_days=_count(history.get("days", 300), "history.days", 1),
        campaigns=_campaigns(d["campaigns"]),
        aligned_launch_time=_clock(alignment.get("launch_time", "00:00"), "alignment.launch_time"),
        aligned_control_delay=int(
            3600
            * _number(
                alignment.get("control_delay_hours", 12.0),
                "alignment.control_delay_hours",
                0.0,
                72.0,
            )
        ),
        min_week_days=_count(measurement.get("min_week_days", 5), "measurement.min_week_days"),
        seed=_count(d.get("seed", 0), "seed", 0),
    )
