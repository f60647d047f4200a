"""Time zones: which zone a contact's local time is read in, and that zone's UTC offsets.

A zone is an IANA name (`Europe/Berlin`, read by the standard library's `zoneinfo` from
the system's time zone database) or a fixed offset `+05:45` / `UTC-03:30`, as profiles
often store. Names are checked before they reach the file system (a bounded pattern, at
most 64 characters) and the host-dependent `localtime` is refused.

The contact's zone comes from the request, else from the profile; if neither gives a
usable one, the account's zone is used, and if even that is unusable, UTC. The result
names where the zone came from (`ZoneSource`) and why the contact's own zone was not
used (`ZoneIssue`), for the response and the fallback metric.

`ZoneClock` turns a zone into a step function of UTC offsets, so that a whole batch is
converted with one `searchsorted`. zoneinfo does not list transitions, so they are found
by sampling the offset once a day and bisecting each day where it changed down to the
second (zones change offset at most a few times a year, never twice within a day in the
tz database). Blocks of about a year are scanned when a time in them is first asked for
(only those blocks: a request for the year 2200 does not scan the years before it) and
kept by the instance. Between two scanned blocks the table is not valid, which is why
every lookup covers its blocks first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

Int64Array = NDArray[np.int64]
ZoneSource = Literal["request", "profile", "account", "utc"]
ZoneIssue = Literal["none", "missing", "invalid"]
ZONE_SOURCES: tuple[ZoneSource, ...] = get_args(ZoneSource)
ZONE_ISSUES: tuple[ZoneIssue, ...] = get_args(ZoneIssue)

DAY = 86_400
MAX_ZONE_NAME = 64
MAX_FIXED_OFFSET = 14 * 3600
BLOCK = 1 << 25  # seconds scanned at a time: about 388 days
FAR = np.int64(1) << np.int64(62)  # beyond every timestamp (the sentinel transition)
_IANA = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}")
_FIXED = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})")
_REFUSED = {"localtime", "posixrules"}


def load_zone(name: object) -> tzinfo | None:
    """The zone called `name`, or None when it is not a usable zone name.

    Examples
    --------
    >>> load_zone("Asia/Kathmandu").utcoffset(datetime(2024, 1, 1))
    datetime.timedelta(seconds=20700)
    >>> load_zone("+05:45") == load_zone("UTC+0545"), load_zone("Mars/Olympus")
    (True, None)
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ZONE_NAME:
        return None
    fixed = _FIXED.fullmatch(name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60
        if int(minutes) >= 60 or seconds > MAX_FIXED_OFFSET:
            return None
        return timezone(timedelta(seconds=seconds if sign == "+" else -seconds))
    if name in _REFUSED or not _IANA.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return None


@dataclass(frozen=True, slots=True)
class ResolvedZone:
    """The zone a contact's local time is read in, where it came from, and why the
    contact's own zone was not used (`none` when it was)."""

    name: str
    source: ZoneSource
    issue: ZoneIssue


def resolve_zone(
    request_zone: str | None, profile_zone: str | None, account_zone: str | None
) -> ResolvedZone:
    """Request, else profile, else account, else UTC.

    `issue` is `invalid` when a contact zone was given but unusable (even if the other
    one was then used), `missing` when neither was given and the account's (or UTC) was
    used, `none` otherwise.

    Examples
    --------
    >>> resolve_zone(None, "Europe/London", "America/New_York")
    ResolvedZone(name='Europe/London', source='profile', issue='none')
    >>> resolve_zone("Narnia/Cair", None, "America/New_York")
    ResolvedZone(name='America/New_York', source='account', issue='invalid')
    """
    invalid = False
    for source, name in (("request", request_zone), ("profile", profile_zone)):
        if name is None or name == "":
            continue
        if load_zone(name) is not None:
            return ResolvedZone(name, source, "invalid" if invalid else "none")  # type: ignore[arg-type]
        invalid = True
    issue: ZoneIssue = "invalid" if invalid else "missing"
    if account_zone and load_zone(account_zone) is not None:
        return ResolvedZone(account_zone, "account", issue)
    return ResolvedZone("UTC", "utc", issue)


def _offset(zone: tzinfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, UTC).astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


class ZoneClock:
    """UTC offsets of one zone as a step function, scanned lazily by blocks.

    `transitions[k]` is the first UTC second at which `offsets[k]` applies; the last
    transition is a sentinel far in the future.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._blocks: dict[int, list[tuple[int, int]]] = {}
        self.transitions: Int64Array = np.empty(0, dtype=np.int64)
        self.offsets: Int64Array = np.empty(0, dtype=np.int64)

    def _scan(self, block: int) -> list[tuple[int, int]]:
        """(second, new offset) for every change inside one block."""
        start, end = block * BLOCK, (block + 1) * BLOCK
        changes = []
        t, before = start, _offset(self.zone, start)
        while t < end:
            nxt = min(t + DAY, end)
            after = _offset(self.zone, nxt)
            if after != before:
                lo, hi = t, nxt  # offset(lo) == before, offset(hi) == after
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _offset(self.zone, mid) == before:
                        lo = mid
                    else:
                        hi = mid
                changes.append((hi, after))
            t, before = nxt, after
        return changes

    def cover(self, times: Int64Array) -> None:
        """Make `transitions`/`offsets` valid at every second of the blocks `times` fall
        in (and of the block after each, so a window starting near a block's end is
        covered: windows are far shorter than a block)."""
        touched = np.unique(np.floor_divide(times, BLOCK))
        needed = set(touched.tolist()) | set((touched + 1).tolist())
        missing = needed - self._blocks.keys()
        if not missing:
            return
        for block in missing:
            self._blocks[block] = self._scan(block)
        times_, offs = [], []
        for block in sorted(self._blocks):
            start = block * BLOCK
            times_.append(start)
            offs.append(_offset(self.zone, start))
            for t, off in self._blocks[block]:
                times_.append(t)
                offs.append(off)
        times_.append(int(FAR))
        offs.append(offs[-1])
        self.transitions = np.asarray(times_, dtype=np.int64)
        self.offsets = np.asarray(offs, dtype=np.int64)

    def offset_at(self, times: Int64Array) -> Int64Array:
        """UTC offset in seconds at each UTC second in `times`."""
        if times.size == 0:
            return np.empty(0, dtype=np.int64)
        self.cover(times)
        index = np.searchsorted(self.transitions, times, side="right") - 1
        return self.offsets[index]


class ZoneCache:
    """Zones and their clocks by name, owned by one decider (no module-level state)."""

    def __init__(self, max_zones: int = 1024) -> None:
        self._clocks: dict[str, ZoneClock] = {}
        self._max = max_zones

    def clock(self, name: str) -> ZoneClock:
        """The clock of a zone that `load_zone` accepts (UTC for anything else)."""
        clock = self._clocks.get(name)
        if clock is None:
            zone = load_zone(name) or UTC
            if len(self._clocks) >= self._max:
                self._clocks.pop(next(iter(self._clocks)))
            clock = self._clocks[name] = ZoneClock(zone)
        return clock
