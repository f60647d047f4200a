"""Send-time settings of an account, overrides of a campaign, and one request.

Everything validates itself on construction (`ConfigError` naming the field), so a bad
setting fails where it is loaded, not inside a decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from selector.domain import ConfigError
from selector.sendtime.clock import DAY, load_zone
from selector.sendtime.counts import History
from selector.sendtime.hours import QuietHours

ResponseKind = Literal["open", "click"]
RESPONSE_KINDS: tuple[ResponseKind, ...] = get_args(ResponseKind)
Rejection = Literal["bad_launch_time", "bad_window", "bad_contact_id", "bad_campaign_id"]
REJECTIONS: tuple[Rejection, ...] = get_args(Rejection)
MAX_TIME = 10_000_000_000.0  # as the event schemas: Unix seconds before the year 2286
MAX_ID = 200
MAX_WINDOW = 31 * DAY  # far below a zone clock's block (see selector.sendtime.clock)


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(path, message)


def _pct(value: object, path: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    _require(ok and 0.0 <= float(value) <= 100.0, path, f"must be 0-100; got {value!r}")  # type: ignore[arg-type]
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SendTimeSettings:
    """An account's send-time optimization settings.

    `slots` local-time slots per day (a divisor of 24: 12 two-hour slots by default);
    `split_weekends` keeps weekday and weekend posteriors apart; `hours` are the sending
    hours (quiet outside them); `exploration_pct` of optimized decisions pick a slot
    uniformly; `control_pct` of each launch's contacts form the control group, sent at
    the launch (plus `control_delay_seconds`: 43200 launches the optimized group 12 h
    before the control, so the control goes out in the middle of its spread); `response`
    is what counts as a response (opens for email, clicks for SMS); `zone` is the
    account's time zone, used for contacts without a usable one.
    """

    slots: int = 12
    split_weekends: bool = False
    hours: QuietHours = field(default_factory=QuietHours)
    exploration_pct: float = 5.0
    control_pct: float = 10.0
    control_delay_seconds: int = 0
    response: ResponseKind = "open"
    zone: str = "UTC"
    history: History = field(default_factory=History)
    max_window_seconds: int = 7 * DAY

    def __post_init__(self) -> None:
        ok = isinstance(self.slots, int) and 1 <= self.slots <= 24 and 24 % self.slots == 0
        _require(ok, "slots", f"must divide 24 (1, 2, 3, 4, 6, 8, 12, 24); got {self.slots!r}")
        _pct(self.exploration_pct, "exploration_pct")
        _pct(self.control_pct, "control_pct")
        delay = self.control_delay_seconds
        ok = isinstance(delay, int) and 0 <= delay <= self.max_window_seconds
        _require(ok, "control_delay_seconds", f"must be 0..max_window_seconds; got {delay!r}")
        _require(
            self.response in RESPONSE_KINDS,
            "response",
            f"must be open or click; got {self.response!r}",
        )
        _require(load_zone(self.zone) is not None, "zone", f"unknown time zone {self.zone!r}")
        ok = isinstance(self.max_window_seconds, int) and 0 < self.max_window_seconds <= MAX_WINDOW
        _require(
            ok, "max_window_seconds", f"must be 1..{MAX_WINDOW}; got {self.max_window_seconds!r}"
        )

    @property
    def cells(self) -> int:
        """Posterior cells: slots, times two with weekday/weekend posteriors."""
        return self.slots * (2 if self.split_weekends else 1)

    @property
    def slot_seconds(self) -> int:
        return DAY // self.slots


@dataclass(frozen=True, slots=True)
class SendTimeRequest:
    """When should `contact_id` get `campaign_id`, launched at `launch_time` (Unix
    seconds), to be delivered within `window_seconds`? `zone` is the request's zone for
    the contact, `profile_zone` the profile's (looked up by the caller). `launch_id`
    tells launches of one campaign apart for the control split (default: the launch
    time). `hours`, `control_pct` and `control_delay_seconds` override the account's
    settings for this campaign."""

    contact_id: str
    campaign_id: str
    launch_time: float
    window_seconds: float
    zone: str | None = None
    profile_zone: str | None = None
    launch_id: str | None = None
    hours: QuietHours | None = None
    control_pct: float | None = None
    control_delay_seconds: int | None = None

    @property
    def launch_key(self) -> str:
        launch = self.launch_id if self.launch_id is not None else f"{self.launch_time:.0f}"
        return f"{self.campaign_id}@{launch}"


def rejection(request: SendTimeRequest, settings: SendTimeSettings) -> Rejection | None:
    """Why a request cannot be answered, or None. Zones are never a reason: an unusable
    zone falls back to the account's."""
    for value, reason in (
        (request.contact_id, "bad_contact_id"),
        (request.campaign_id, "bad_campaign_id"),
    ):
        if not isinstance(value, str) or not 0 < len(value) <= MAX_ID:
            return reason  # type: ignore[return-value]
    t = request.launch_time
    if not isinstance(t, int | float) or not math.isfinite(t) or not 0 <= t <= MAX_TIME:
        return "bad_launch_time"
    w = request.window_seconds
    if not isinstance(w, int | float) or not math.isfinite(w):
        return "bad_window"
    if not 0 <= w <= settings.max_window_seconds:
        return "bad_window"
    return None


def hours_from_dict(data: Any, path: str) -> QuietHours:
    """Sending hours from `{"start": "HH:MM", "end": "HH:MM"}`; `ConfigError` at `path`."""
    _require(isinstance(data, Mapping), path, "must be an object with start and end")
    try:
        return QuietHours.parse(str(data["start"]), str(data["end"]))
    except (KeyError, ValueError) as exc:
        raise ConfigError(path, str(exc)) from None


def sendtime_settings_from_dict(data: Mapping[str, Any]) -> SendTimeSettings:
    """Build settings from a plain document (e.g. the account settings' `send_time`)."""
    allowed = {
        *("slots", "split_weekends", "hours", "exploration_pct", "control_pct"),
        *("control_delay_seconds", "response", "zone", "history_days", "bucket_days"),
    }
    unknown = sorted(set(data) - allowed)
    _require(not unknown, "send_time", f"unknown field(s) {', '.join(unknown)}")
    values = {k: v for k, v in data.items() if k not in {"hours", "history_days", "bucket_days"}}
    if "hours" in data:
        values["hours"] = hours_from_dict(data["hours"], "hours")
    try:
        history = History(int(data.get("history_days", 365)), int(data.get("bucket_days", 7)))
    except (TypeError, ValueError) as exc:
        raise ConfigError("history_days", str(exc)) from None
    return SendTimeSettings(history=history, **values)


@dataclass(frozen=True, slots=True)
class AccountSendTime:
    """An account's send-time settings and its campaigns' own sending hours, as its
    catalog gives them (the defaults where it gives none)."""

    settings: SendTimeSettings = field(default_factory=SendTimeSettings)
    campaign_hours: Mapping[str, QuietHours] = field(default_factory=dict)
    declared: bool = False  # the catalog has a send_time block (CS_SENDTIME_LEARNING)

    def hours_for(self, campaign_id: str) -> QuietHours | None:
        """The campaign's sending hours, None for the account's."""
        return self.campaign_hours.get(campaign_id)


def account_send_time(
    block: Mapping[str, Any] | None, campaign_hours: Mapping[str, Any]
) -> AccountSendTime:
    """From the account settings' `send_time` block (None: the defaults) and each
    campaign's `sending_hours`; a `ConfigError` names the field (`send_time.slots`,
    `campaign news.sending_hours`).

    >>> found = account_send_time({"slots": 24}, {"news": {"start": "10:00", "end": "12:00"}})
    >>> found.settings.slots, found.hours_for("news"), found.hours_for("other"), found.declared
    (24, QuietHours(start_minute=600, end_minute=720), None, True)
    >>> account_send_time({"slots": 5}, {})
    Traceback (most recent call last):
    ...
    selector.errors.ConfigError: send_time.slots: must divide 24 (1, 2, 3, 4, 6, 8, 12, 24); got 5
    """
    settings = SendTimeSettings()
    if block is not None:
        _require(isinstance(block, Mapping), "send_time", "must be an object")
        try:
            settings = sendtime_settings_from_dict(block)
        except ConfigError as exc:
            path = exc.path if exc.path == "send_time" else f"send_time.{exc.path}"
            raise ConfigError(path, exc.message) from None
        except TypeError as exc:  # a field of the wrong type
            raise ConfigError("send_time", str(exc)) from None
    hours = {
        cid: hours_from_dict(raw, f"campaign {cid}.sending_hours")
        for cid, raw in campaign_hours.items()
    }
    return AccountSendTime(settings, hours, block is not None)
