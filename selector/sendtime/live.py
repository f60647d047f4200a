"""Measuring send-time optimization on live data: the estimates of
`selector.sendtime.measure` from what the topics hold, one row per send.

A row is a send joined to the send-time answer it followed: the launch (campaign and
launch time), the contact's group and the launch of that group (`outcomes_from`: the
control's is delayed by the control delay), the zone its local time was read in, the
contact, when it went out and when its first response came (None: none). A send counts
as answered when that response came within `window_seconds` of its group's launch, as in
the simulator, so the groups are given the same look however late each send went out.

Launches whose control went out at least `aligned_delay_seconds` after the launch form
the launch-alignment experiment (the optimized group launched about 12 hours before the
control); the other launches are the standard experiment, which the naive, same-weekday
and weekly estimates read.

Examples
--------
>>> rows = [
...     LiveSend("news", 1.7e9, 1.7e9, "optimized", "UTC", "ct-1", 1.7e9 + 3600, 1.7e9 + 4000),
...     LiveSend("news", 1.7e9, 1.7e9, "control", "UTC", "ct-2", 1.7e9, None),
... ]
>>> o = live_outcomes(rows, window_seconds=72 * 3600, account_zone="UTC")
>>> o.arm.tolist(), o.responded.tolist(), o.launch_day.tolist()
([0, 1], [True, False], [19675, 19675])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from selector.sendtime import measure
from selector.sendtime.batch import ARMS, Arm
from selector.sendtime.clock import DAY, ZoneCache
from selector.sendtime.measure import DayComparison, Estimate, Outcomes

ALIGNED_DELAY_SECONDS = 6 * 3600


@dataclass(frozen=True, slots=True)
class LiveSend:
    """One send and its answer (see the module docstring)."""

    campaign_id: str
    launch_time: float
    outcomes_from: float
    arm: Arm
    zone: str
    contact_id: str
    sent_at: float
    responded_at: float | None


@dataclass(frozen=True, slots=True)
class LiveReport:
    """The estimates over one account's sends: `estimates` in the order naive,
    same_weekday, weekly (standard launches) and launch_alignment (aligned launches;
    absent without any), the standard launches by campaign day, and the rows used."""

    estimates: tuple[Estimate, ...]
    per_launch: tuple[DayComparison, ...]
    standard_sends: int
    aligned_sends: int

    def format_table(self) -> str:
        lines = [
            f"send-time lift, optimized over control ({self.standard_sends:,} sends in "
            f"standard launches, {self.aligned_sends:,} in aligned ones; 95% intervals)"
        ]
        for e in self.estimates:
            lines.append(
                f"  {e.method:18}{e.strata:>3} strata {e.lift:>+8.1%}  "
                f"[{e.low:+.1%}, {e.high:+.1%}]  optimized {e.optimized_rate:.2%}  "
                f"control {e.control_rate:.2%}"
            )
        return "\n".join(lines)


def _local_days(times: np.ndarray, zones: Sequence[str], cache: ZoneCache) -> np.ndarray:
    seconds = np.floor(times).astype(np.int64)
    out = np.empty(seconds.size, dtype=np.int64)
    names = np.asarray(zones, dtype=object)
    for name in set(zones):
        rows = np.flatnonzero(names == name)
        out[rows] = (seconds[rows] + cache.clock(name).offset_at(seconds[rows])) // DAY
    return out


def live_outcomes(rows: Sequence[LiveSend], window_seconds: float, account_zone: str) -> Outcomes:
    """Outcomes of `rows`: launches numbered in order of launch time (then campaign),
    launch days in the account's zone, delivery days in each send's zone."""
    cache = ZoneCache()
    launches = sorted({(r.launch_time, r.campaign_id) for r in rows})
    index = {key: i for i, key in enumerate(launches)}
    contacts: dict[str, int] = {}
    launch = np.array([index[r.launch_time, r.campaign_id] for r in rows], dtype=np.int64)
    start = np.array([r.outcomes_from for r in rows], dtype=np.float64)
    answered = np.array([r.responded_at is not None for r in rows], dtype=bool)
    at = np.array([r.responded_at if r.responded_at is not None else 0.0 for r in rows])
    sent = np.array([r.sent_at for r in rows], dtype=np.float64)
    return Outcomes(
        launch=launch,
        launch_day=_local_days(
            np.array([r.launch_time for r in rows]), [account_zone] * len(rows), cache
        ),
        arm=np.array([ARMS.index(r.arm) for r in rows], dtype=np.int64),
        delivery_day=_local_days(sent, [r.zone for r in rows], cache),
        responded=answered & (at >= start) & (at <= start + window_seconds),
        contact=np.array([contacts.setdefault(r.contact_id, len(contacts)) for r in rows]),
    )


def live_report(
    rows: Sequence[LiveSend],
    *,
    window_seconds: float,
    account_zone: str,
    min_week_days: int = 5,
    aligned_delay_seconds: float = ALIGNED_DELAY_SECONDS,
) -> LiveReport:
    """The send-time estimates over one account's joined sends (module docstring)."""
    delayed = {
        (r.launch_time, r.campaign_id)
        for r in rows
        if r.arm == "control" and r.outcomes_from - r.launch_time >= aligned_delay_seconds
    }
    aligned = [r for r in rows if (r.launch_time, r.campaign_id) in delayed]
    standard = [r for r in rows if (r.launch_time, r.campaign_id) not in delayed]
    estimates: list[Estimate] = []
    per_launch: tuple[DayComparison, ...] = ()
    if standard:
        o = live_outcomes(standard, window_seconds, account_zone)
        estimates += [measure.naive(o), measure.same_weekday(o), measure.weekly(o, min_week_days)]
        per_launch = measure.per_launch(o)
    if aligned:
        estimates.append(
            measure.launch_alignment(live_outcomes(aligned, window_seconds, account_zone))
        )
    return LiveReport(tuple(estimates), per_launch, len(standard), len(aligned))
