"""Zones: names that are accepted or refused, the fallback order and its reasons, and the
offset table against zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from selector.sendtime.clock import ResolvedZone, ZoneCache, ZoneClock, load_zone, resolve_zone


@pytest.mark.parametrize(
    ("name", "offset_minutes"),
    [("Asia/Kathmandu", 345), ("+05:45", 345), ("UTC+0545", 345), ("-09:30", -570),
     ("GMT-3:00", -180), ("UTC", 0), ("Etc/GMT+12", -720), ("+14:00", 840)],
)  # fmt: skip
def test_usable_zone_names(name: str, offset_minutes: int) -> None:
    zone = load_zone(name)
    assert zone is not None
    assert zone.utcoffset(datetime(2023, 1, 15)).total_seconds() == offset_minutes * 60


@pytest.mark.parametrize(
    "name",
    ["", "Mars/Olympus", "America", "../etc/passwd", "/etc/localtime", "localtime",
     "Europe/London\x00", "x" * 65, "+15:00", "+05:75", "Europe/london", None, 42],
)  # fmt: skip
def test_unusable_zone_names_are_refused_without_raising(name: object) -> None:
    assert load_zone(name) is None


@pytest.mark.parametrize(
    ("request_zone", "profile", "account", "expected"),
    [
        ("Asia/Tokyo", "Europe/Paris", "UTC", ResolvedZone("Asia/Tokyo", "request", "none")),
        (None, "Europe/Paris", "UTC", ResolvedZone("Europe/Paris", "profile", "none")),
        ("", "Europe/Paris", "UTC", ResolvedZone("Europe/Paris", "profile", "none")),
        ("Bad/Zone", "Europe/Paris", "UTC", ResolvedZone("Europe/Paris", "profile", "invalid")),
        ("Bad/Zone", None, "America/Denver", ResolvedZone("America/Denver", "account", "invalid")),
        (None, None, "America/Denver", ResolvedZone("America/Denver", "account", "missing")),
        (None, None, "Bad/Zone", ResolvedZone("UTC", "utc", "missing")),
        ("Bad/Zone", "Also/Bad", None, ResolvedZone("UTC", "utc", "invalid")),
    ],
)
def test_resolution_order_and_reasons(
    request_zone: str | None, profile: str | None, account: str | None, expected: ResolvedZone
) -> None:
    assert resolve_zone(request_zone, profile, account) == expected


@pytest.mark.parametrize(
    "name", ["America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Africa/Casablanca"]
)
def test_offsets_match_zoneinfo_at_random_seconds_and_around_transitions(name: str) -> None:
    clock = ZoneClock(ZoneInfo(name))
    rng = np.random.default_rng(3)
    times = rng.integers(1_500_000_000, 1_900_000_000, size=3000)
    # seconds around the transitions of 2024: each second of the hour either side
    hours = np.arange(1_704_067_200, 1_735_689_600, 3600)
    offsets = clock.offset_at(hours)
    changes = hours[1:][offsets[1:] != offsets[:-1]]
    assert changes.size >= 2 or name == "Africa/Casablanca"
    near = (changes[:, None] + np.arange(-3600, 3601)[None, :]).ravel()
    for t in (times, near):
        expected = [
            datetime.fromtimestamp(int(s), UTC).astimezone(ZoneInfo(name)).utcoffset() for s in t
        ]
        got = clock.offset_at(t)
        assert got.tolist() == [int(e.total_seconds()) for e in expected]


def test_a_far_future_lookup_scans_only_its_own_blocks() -> None:
    clock = ZoneClock(ZoneInfo("Europe/Berlin"))
    clock.offset_at(np.array([1_700_000_000, 9_000_000_000]))
    assert len(clock._blocks) == 4  # each time's block and the one after it


def test_the_cache_falls_back_to_utc_for_unusable_names_and_is_bounded() -> None:
    cache = ZoneCache(max_zones=2)
    assert cache.clock("Nope/Nope").offset_at(np.array([1_700_000_000])).tolist() == [0]
    for name in ("Europe/Paris", "Asia/Tokyo", "America/Lima"):
        cache.clock(name)
    assert len(cache._clocks) == 2
