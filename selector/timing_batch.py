"""`Timing.add` over many events at once: the same value as adding them one by one, with
mutable buckets copied once per batch instead of once per event (the stats agent adds
tens of thousands of events a second)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from selector.timing import (
    CLICK_BUCKET,
    CLICK_WINDOW,
    CONVERSION_BUCKET,
    CONVERSION_WINDOW,
    Timing,
    _oldest_bucket,
    delay_bin,
)

TimingEvent = tuple[str, str, float, float | None]  # kind, creative, time, origin time
Rows = Mapping[int, tuple[int, int]]


class _Buckets:
    """One kind's buckets, copied on write: per creative, the rows changed in this batch
    are private dicts, the others still the value's own."""

    __slots__ = ("out", "private", "width", "window")

    def __init__(self, buckets: Mapping[str, Rows], window: float, width: float) -> None:
        self.out: dict[str, Rows] = dict(buckets)
        self.private: set[str] = set()
        self.window, self.width = window, width

    def bump(self, creative_id: str, time: float, latest: float) -> None:
        """`_bumped`: one event counted in its bucket, if within the window."""
        width = self.width
        bucket = math.floor(time / width)
        if bucket < _oldest_bucket(latest, self.window, width):
            return
        rows = self.out.get(creative_id)
        if creative_id not in self.private:
            rows = self.out[creative_id] = dict(rows or {})
            self.private.add(creative_id)
        assert isinstance(rows, dict)
        count, offsets = rows.get(bucket, (0, 0))
        rows[bucket] = (count + 1, offsets + 1 * math.floor(time - bucket * width))

    def prune(self, latest: float) -> None:
        """`_merged` with nothing: the rows older than the window dropped, the creatives
        in the order `_merged` gives them."""
        oldest = _oldest_bucket(latest, self.window, self.width)
        a: dict[str, Rows] = self.out
        out: dict[str, Rows] = {}
        # a value's buckets are always a mappingproxy, and a set made from one iterates in
        # another order than a set made from a dict (which is sized at once)
        for cid in set(MappingProxyType(a)) | set(MappingProxyType({})):
            rows = {k: v for k, v in a.get(cid, {}).items() if k >= oldest}
            rows = {k: v for k, v in rows.items() if v != (0, 0)}
            if rows:
                out[cid] = rows
        self.out, self.private = out, set(out)

    def frozen(self) -> Mapping[str, Rows]:
        private = self.private
        return MappingProxyType(
            {c: MappingProxyType(r) if c in private else r for c, r in self.out.items()}
        )


def add_all(timing: Timing, events: Iterable[TimingEvent]) -> Timing:
    """`timing.add(*event)` for each event in order, as one new value."""
    latest = timing.latest
    sends = _Buckets(timing.sends, CLICK_WINDOW, CLICK_BUCKET)
    clicks = _Buckets(timing.clicks, CONVERSION_WINDOW, CONVERSION_BUCKET)
    click_delays, conversion_delays = list(timing.click_delays), list(timing.conversion_delays)
    oldest = _oldest_bucket(latest, CLICK_WINDOW, CLICK_BUCKET)
    for kind, creative_id, time, origin_time in events:
        latest = max(latest, time)
        if kind == "send":
            sends.bump(creative_id, time, latest)
        elif kind == "click":
            clicks.bump(creative_id, time, latest)
        now_oldest = _oldest_bucket(latest, CLICK_WINDOW, CLICK_BUCKET)
        if now_oldest > oldest:
            sends.prune(latest)
            clicks.prune(latest)
        oldest = now_oldest
        if kind != "send" and origin_time is not None and math.isfinite(origin_time):
            j = delay_bin(time - origin_time)
            (click_delays if kind == "click" else conversion_delays)[j] += 1
    return Timing(
        latest, sends.frozen(), clicks.frozen(), tuple(click_delays), tuple(conversion_delays)
    )
