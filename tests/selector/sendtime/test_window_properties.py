"""The acceptance property: no send time outside the sending hours or the delivery window,
over every UTC offset and across DST transitions.

Local times are checked with `zoneinfo` directly (`datetime.fromtimestamp`), not with the
offsets the decider computed, and a `no_allowed_time` answer is checked by scanning the
window every 30 seconds: allowed time only starts or ends on a local minute or at the
window's ends, so no allowed stretch inside a window can hide between two scan points.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector.sendtime.batch import REASONS, SendTimeBatch
from selector.sendtime.clock import load_zone
from selector.sendtime.decide import SendTimeDecider
from selector.sendtime.hours import QuietHours
from selector.sendtime.prior import SlotPrior
from selector.sendtime.settings import SendTimeRequest, SendTimeSettings

# DST zones with unusual rules: 30-minute DST (Lord_Howe), 45-minute offsets (Chatham,
# Eucla, Kathmandu), negative DST (Dublin), DST during Ramadan (Casablanca), two-hour
# DST (Troll), southern hemisphere (Santiago, Sydney), a date-line jump in the past (Apia).
DST_ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Santiago",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "Pacific/Apia",
    "Asia/Tehran",
)
FIXED_ZONES = (
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Australia/Eucla",
    "Pacific/Marquesas",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
)
# every quarter-hour offset from UTC-12:00 to UTC+14:00
OFFSETS = tuple(
    f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in range(-720, 841, 15)
)
YEARS = range(2018, 2031)


def _transitions(name: str) -> list[int]:
    """UTC seconds (to the hour) where the zone's offset changes, found with zoneinfo:
    a daily scan, then the hour within each day that changed."""
    zone = ZoneInfo(name)

    def offset(t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, zone).utcoffset()

    out = []
    t = int(datetime(YEARS[0], 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(YEARS[-1], 12, 31, tzinfo=UTC).timestamp())
    while t < end:
        if offset(t) != offset(t + 86_400):
            out += [h for h in range(t + 3600, t + 86_401, 3600) if offset(h) != offset(h - 3600)]
        t += 86_400
    return out


TRANSITIONS = {name: _transitions(name) for name in DST_ZONES}


def _local_second(t: float, zone: str) -> int:
    local = datetime.fromtimestamp(math.floor(t), UTC).astimezone(load_zone(zone))
    return local.hour * 3600 + local.minute * 60 + local.second


def _window_has_allowed_time(request: SendTimeRequest, hours: QuietHours) -> bool:
    lo = math.ceil(request.launch_time)
    hi = math.floor(request.launch_time + request.window_seconds)
    points = [*range(lo, hi + 1, 30), hi] if hi >= lo else []
    return any(hours.allows(_local_second(t, request.zone or "UTC")) for t in points)


def check(requests: list[SendTimeRequest], settings_: SendTimeSettings, seed: int) -> None:
    decider = SendTimeDecider(settings_, SlotPrior.uniform(settings_.cells))
    rng = np.random.default_rng(seed)
    cells = settings_.cells
    sends = rng.integers(0, 40, size=(len(requests), cells))
    responses = rng.binomial(sends, 0.3)
    batch = SendTimeBatch.from_requests(requests, settings_, sends, responses)
    decisions = decider.decide_batch(batch, rng)
    slot_seconds = 86_400 // settings_.slots
    for i, request in enumerate(requests):
        send_at, reason = float(decisions.send_at[i]), REASONS[decisions.reason[i]]
        window = (request.launch_time, request.launch_time + request.window_seconds)
        assert window[0] <= send_at <= window[1], (request, send_at)
        second = _local_second(send_at, request.zone or "UTC")
        assert decisions.slot[i] == second // slot_seconds, (request, send_at)
        if reason == "no_allowed_time":
            assert not _window_has_allowed_time(request, settings_.hours), request
        else:
            assert settings_.hours.allows(second), (request, send_at, second)
            assert send_at == math.floor(send_at)
        assert 0.0 < decisions.propensity[i] <= 1.0


@st.composite
def quiet_hours(draw: st.DrawFn) -> QuietHours:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(1, 1440).filter(lambda e: e != start))
    return QuietHours(start, end)


@st.composite
def sendtime_settings(draw: st.DrawFn) -> SendTimeSettings:
    return SendTimeSettings(
        slots=draw(st.sampled_from((1, 2, 3, 4, 6, 8, 12, 24))),
        split_weekends=draw(st.booleans()),
        hours=draw(st.one_of(st.just(QuietHours()), quiet_hours())),
        exploration_pct=draw(st.sampled_from((0.0, 5.0, 100.0))),
        control_pct=draw(st.sampled_from((0.0, 30.0, 100.0))),
        control_delay_seconds=draw(st.sampled_from((0, 3600, 43_200, 86_400 * 3))),
    )


windows = st.one_of(
    st.sampled_from((0.0, 0.4, 1.0, 59.0, 3600.0, 4 * 3600.0, 86_400.0)),
    st.floats(0.0, 7 * 86_400.0),
)


@st.composite
def near_transition(draw: st.DrawFn) -> SendTimeRequest:
    zone = draw(st.sampled_from(DST_ZONES))
    moments = TRANSITIONS[zone]
    base = draw(st.sampled_from(moments)) if moments else 1_700_000_000
    launch = base + draw(st.floats(-2 * 86_400.0, 2 * 86_400.0))
    return SendTimeRequest(f"ct-{draw(st.integers(0, 99))}", "camp", launch, draw(windows), zone)


@st.composite
def anywhere(draw: st.DrawFn) -> SendTimeRequest:
    zone = draw(st.sampled_from((*DST_ZONES, *FIXED_ZONES, *OFFSETS)))
    launch = draw(st.floats(0.0, 4_102_444_800.0))  # 1970 to 2100
    return SendTimeRequest(f"ct-{draw(st.integers(0, 99))}", "camp", launch, draw(windows), zone)


@pytest.mark.slow
@settings(max_examples=250, deadline=None, derandomize=True)
@given(
    requests=st.lists(st.one_of(near_transition(), anywhere()), min_size=1, max_size=6),
    settings_=sendtime_settings(),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_send_time_outside_sending_hours_or_the_window(
    requests: list[SendTimeRequest], settings_: SendTimeSettings, seed: int
) -> None:
    check(requests, settings_, seed)


@pytest.mark.parametrize("zone", OFFSETS)
def test_every_quarter_hour_utc_offset(zone: str) -> None:
    rng = np.random.default_rng(len(zone) + OFFSETS.index(zone))
    launches = rng.uniform(1.6e9, 1.9e9, size=40)
    requests = [
        SendTimeRequest(f"ct-{i}", "camp", float(t), float(w), zone)
        for i, (t, w) in enumerate(zip(launches, rng.choice([3600.0, 86_400.0], 40), strict=True))
    ]
    check(requests, SendTimeSettings(control_pct=20.0), OFFSETS.index(zone))


@pytest.mark.parametrize("zone", DST_ZONES)
def test_hours_that_dst_skips_or_repeats(zone: str) -> None:
    """Sending hours that start or end inside the skipped or repeated local hour of the
    zone's transitions (02:00-03:00 in most zones, 00:00-01:00 or 02:30 elsewhere)."""
    requests, moments = [], TRANSITIONS[zone][:12]
    for i, t in enumerate(moments):
        for start in range(-2 * 3600, 2 * 3600, 1800):
            requests.append(SendTimeRequest(f"ct-{i}", "camp", float(t + start), 3 * 3600.0, zone))
    for hours in (
        QuietHours(150, 1260),
        QuietHours(0, 150),
        QuietHours(60, 120),
        QuietHours(1380, 90),
    ):
        check(requests, SendTimeSettings(hours=hours, control_pct=25.0), len(requests))


def test_a_spring_forward_gap_is_never_chosen() -> None:
    """New York, 2024-03-10: 02:00-03:00 does not exist; with sending allowed only from
    02:00 to 03:00 that day has no allowed time, and the decision says so."""
    zone = "America/New_York"
    launch = datetime(2024, 3, 10, 1, 0, tzinfo=ZoneInfo(zone)).timestamp()
    request = SendTimeRequest("ct-1", "camp", launch, 3 * 3600.0, zone)
    settings_ = SendTimeSettings(hours=QuietHours(120, 180), control_pct=0.0)
    decision = SendTimeDecider(settings_, SlotPrior.uniform(12)).decide(
        request, np.random.default_rng(0)
    )
    assert decision.reason == "no_allowed_time"
    # the window (01:00-05:00 EDT) is nearer allowed time before it (the day before's
    # 02:59:59 is a day away) or after it (the next day's 02:00): the next day is nearer
    next_allowed = datetime(2024, 3, 11, 2, 0, tzinfo=ZoneInfo(zone)).timestamp()
    assert next_allowed - (launch + 3 * 3600) < launch - (next_allowed - 2 * 86_400)
    assert decision.send_at == launch + 3 * 3600


def test_a_fall_back_hour_is_allowed_twice() -> None:
    """London, 2024-10-27: 01:00-02:00 happens twice; both are genuinely 01:xx local."""
    zone = "Europe/London"
    first = datetime(2024, 10, 27, 1, 0, tzinfo=ZoneInfo(zone)).timestamp()
    settings_ = SendTimeSettings(hours=QuietHours(60, 120), control_pct=100.0)
    decider = SendTimeDecider(settings_, SlotPrior.uniform(12))
    second_pass = first + 3600 + 1800  # 01:30 GMT, the repeated hour
    decision = decider.decide(
        SendTimeRequest("ct-1", "camp", second_pass, 600.0, zone), np.random.default_rng(0)
    )
    assert decision.send_at == second_pass
    assert decision.reason == "control" and not decision.deferred
    assert datetime.fromtimestamp(decision.send_at, ZoneInfo(zone)).hour == 1
    assert datetime.fromtimestamp(decision.send_at, ZoneInfo(zone)).utcoffset() == timedelta(0)


def test_a_window_shorter_than_a_second_on_a_transition_is_answered() -> None:
    """ceil(launch) is the transition's second and floor(launch + window) the one before."""
    transition = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()  # Berlin: +1 to +2
    request = SendTimeRequest("ct-1", "camp", transition - 0.5, 0.0, "Europe/Berlin")
    decider = SendTimeDecider(SendTimeSettings(control_pct=0.0), SlotPrior.uniform(12))
    d = decider.decide(request, np.random.default_rng(0))
    assert (d.send_at, d.reason) == (transition - 0.5, "no_allowed_time")
