"""Where in a delivery window a message may go out: quiet hours, slots and DST, in UTC.

A request's window is the whole seconds of [T, T + W]. Sending is allowed when the
recipient's local wall-clock time lies inside the sending hours (`QuietHours`, default
08:00-21:00; the rest of the day is quiet). The local time of a UTC second u is
u + offset(u), with the zone's offset a step function (`ZoneClock`). Within one step
(a segment of constant offset o) the seconds whose local time lies in the local interval
[a, b) are exactly [a - o, b - o), so:

    allowed pieces = union over segments, local days, slots and sending-hour intervals of
                     [day + max(slot start, hours start), day + min(slot end, hours end))
                     - o, intersected with the segment and the window.

This handles DST without special cases: a local time skipped by a spring-forward gap has
no UTC second in any segment, and a repeated fall-back hour yields two pieces (both are
genuinely that local time). Pieces are grouped by slot (and, with weekday/weekend
posteriors, by the kind of local day); each group keeps its earliest piece.

Everything is computed for a whole batch of one zone at once, on arrays shaped
(requests, segments, local days, slots, sending-hour intervals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.clock import DAY, FAR, Int64Array, ZoneClock

MINUTES_PER_DAY = 1440
NONE = -1  # "no such second" in start/end arrays


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Sending is allowed from `start_minute` to `end_minute` (minutes after local
    midnight, end excluded); the rest of the day is quiet. `start > end` wraps past
    midnight (e.g. 22:00-02:00); (0, 1440) allows the whole day."""

    start_minute: int = 8 * 60
    end_minute: int = 21 * 60

    def __post_init__(self) -> None:
        ok = (
            isinstance(self.start_minute, int)
            and isinstance(self.end_minute, int)
            and 0 <= self.start_minute < MINUTES_PER_DAY
            and 0 < self.end_minute <= MINUTES_PER_DAY
            and self.start_minute != self.end_minute
        )
        if not ok:
            raise ValueError(
                "sending hours need 0 <= start < 1440, 0 < end <= 1440 minutes and "
                f"start != end; got {self.start_minute!r}-{self.end_minute!r}"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        """From "HH:MM" strings; "24:00" is the end of the day.

        >>> QuietHours.parse("08:00", "21:30")
        QuietHours(start_minute=480, end_minute=1290)
        """
        return cls(clock_minute(start), clock_minute(end))

    def intervals(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Allowed seconds of the local day as two intervals (the second may be empty)."""
        a, b = self.start_minute * 60, self.end_minute * 60
        if a < b:
            return (a, b), (0, 0)
        return (0, b), (a, DAY)

    def allows(self, second_of_day: int) -> bool:
        return any(lo <= second_of_day < hi for lo, hi in self.intervals())


def clock_minute(text: str) -> int:
    """Minutes after midnight of an 'HH:MM' time ('24:00' is the end of the day)."""
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"expected HH:MM; got {text!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"expected a time between 00:00 and 24:00; got {text!r}")
    return value


def local_weekday(day: Int64Array) -> Int64Array:
    """Monday = 0 for local day numbers (days since 1970-01-01, a Thursday)."""
    return (day + 3) % 7


def is_weekend(day: Int64Array) -> NDArray[np.bool_]:
    return local_weekday(day) >= 5


@dataclass(frozen=True, slots=True, eq=False)
class Pieces:
    """All allowed pieces of a batch, shaped (N, segments, local days, slots, intervals):
    start and exclusive end seconds (start >= end when empty), and whether each
    (request, segment, day) is a weekend day."""

    start: Int64Array
    end: Int64Array
    weekend: NDArray[np.bool_]

    def earliest(self, split_weekends: bool) -> tuple[Int64Array, Int64Array]:
        """Per (request, group): start and end of the group's earliest piece, or NONE.
        Groups are the slots, or slot + slots * weekend with `split_weekends`.

        The (segment, day, interval) axes are short, so they are walked in a loop of
        whole-array minimums: numpy's reductions over a short inner axis are slow.
        """
        n, k, d, s, q = self.start.shape
        kinds = 2 if split_weekends else 1
        first = np.full((kinds, n, s), FAR, dtype=np.int64)
        last = np.full((kinds, n, s), NONE, dtype=np.int64)
        for seg, day, part in np.ndindex(k, d, q):
            start, end = self.start[:, seg, day, :, part], self.end[:, seg, day, :, part]
            kind = self.weekend[:, seg, day].astype(np.intp) if split_weekends else None
            for which in range(kinds):
                better = (start < end) & (start < first[which])
                if kind is not None:
                    better &= (kind == which)[:, None]
                first[which] = np.where(better, start, first[which])
                last[which] = np.where(better, end, last[which])
        first_, last_ = np.concatenate(list(first), axis=1), np.concatenate(list(last), axis=1)
        absent = first_ == FAR
        first_[absent], last_[absent] = NONE, NONE
        return first_, last_

    def subset(self, rows: Int64Array) -> Pieces:
        return Pieces(self.start[rows], self.end[rows], self.weekend[rows])

    def _walk(self) -> list[tuple[Int64Array, Int64Array]]:
        n = self.start.shape[0]
        start = self.start.reshape(n, -1)
        end = self.end.reshape(n, -1)
        return [(start[:, j], end[:, j]) for j in range(start.shape[1])]

    def first_at_or_after(self, target: Int64Array) -> Int64Array:
        """First allowed second >= target, per request, or NONE."""
        best = np.full(target.shape, FAR, dtype=np.int64)
        for start, end in self._walk():
            value = np.where((start < end) & (end > target), np.maximum(start, target), FAR)
            np.minimum(best, value, out=best)
        return np.where(best == FAR, NONE, best)

    def last_at_or_before(self, target: Int64Array) -> Int64Array:
        """Last allowed second <= target, per request, or NONE."""
        best = np.full(target.shape, -FAR, dtype=np.int64)
        for start, end in self._walk():
            value = np.where((start < end) & (start <= target), np.minimum(end - 1, target), -FAR)
            np.maximum(best, value, out=best)
        return np.where(best == -FAR, NONE, best)


def allowed_pieces(
    clock: ZoneClock,
    lo: Int64Array,
    hi: Int64Array,
    hours: Int64Array,
    slots: int,
) -> Pieces:
    """Allowed pieces of the windows [lo, hi] (whole seconds, inclusive) of requests in
    one zone; `hours` is (N, 4): each request's two allowed intervals of the local day in
    seconds, (a0, b0, a1, b1) (see `QuietHours.intervals`)."""
    seg_lo, seg_hi, offset = _segments(clock, lo, hi)  # (N, K)
    first_day = (seg_lo + offset) // DAY
    days = int(((seg_hi - 1 + offset) // DAY - first_day).max()) + 1
    day = first_day[:, :, None] + np.arange(days)[None, None, :]  # (N, K, D)
    length = DAY // slots
    slot_lo = (np.arange(slots, dtype=np.int64) * length)[None, None, None, :, None]
    # the second interval is empty unless the sending hours wrap past midnight
    q = 2 if (hours[:, 2] < hours[:, 3]).any() else 1
    a = hours[:, 0:4:2][:, None, None, None, :q]  # (N, 1, 1, 1, Q)
    b = hours[:, 1:4:2][:, None, None, None, :q]
    base = (day * DAY - offset[:, :, None])[:, :, :, None, None]  # UTC of local midnight
    low = np.maximum(seg_lo, lo[:, None])[:, :, None, None, None]
    high = np.minimum(seg_hi, hi[:, None] + 1)[:, :, None, None, None]
    start = np.maximum(base + np.maximum(slot_lo, a), low)
    end = np.minimum(base + np.minimum(slot_lo + length, b), high)
    return Pieces(start, end, is_weekend(day))


def _segments(
    clock: ZoneClock, lo: Int64Array, hi: Int64Array
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Per request, the constant-offset segments meeting [lo, hi]: (N, K) starts,
    exclusive ends and offsets (rows with fewer segments repeat their last one)."""
    clock.cover(np.concatenate([lo, hi]))
    trans, offs = clock.transitions, clock.offsets
    k0 = np.searchsorted(trans, lo, side="right") - 1
    k1 = np.searchsorted(trans, hi, side="right") - 1
    # a window shorter than a second (hi < lo) right at a transition has k1 = k0 - 1: it
    # still gets one (empty) segment, as it does anywhere else
    width = max(int((k1 - k0).max()) + 1, 1)
    k = np.minimum(k0[:, None] + np.arange(width)[None, :], k1[:, None])
    seg_lo = np.maximum(trans[k], lo[:, None])
    seg_hi = np.minimum(trans[k + 1], hi[:, None] + 1)
    return seg_lo, seg_hi, offs[k]


def local_cells(
    clock: ZoneClock, times: Int64Array, slots: int, split_weekends: bool
) -> tuple[Int64Array, Int64Array]:
    """Slot group and local day number of each UTC second in `times`."""
    local = times + clock.offset_at(times)
    day = local // DAY
    slot = (local - day * DAY) // (DAY // slots)
    if split_weekends:
        slot = slot + slots * is_weekend(day)
    return slot, day
