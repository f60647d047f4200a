"""The send-time decision: when, inside its window, each contact gets a launch.

For each request (see `selector.sendtime.hours` for the geometry):

1. **Arm.** A stable hash of (campaign@launch, contact) puts `control_pct` of each
   launch's contacts in the control group.
2. **Allowed time first.** The window's allowed pieces are worked out in the contact's
   zone before anything is sampled, grouped by slot (and day kind); a slot whose local
   time never falls inside the window and the sending hours is not a candidate.
3. **Control:** the first allowed second at or after launch + control delay (or the last
   allowed second before that, if the delay runs past the window's allowed time).
4. **Optimized:** Thompson sampling (`selector.sendtime.thompson`): a routine drawn from
   P(routine | the contact's counts), then one draw from each candidate cell's posterior
   Beta(prior + responses, prior + sends - responses); the highest wins, except that with
   probability `exploration_pct` a candidate is picked uniformly. The send goes out at a
   uniformly random second of the winner's earliest piece (spreading load within the
   slot). Propensity: exploration/candidates + (1 - exploration) * P(Thompson picks the
   winner), integrated once for the whole batch; 1 with one candidate.
5. **No allowed second in the window** (e.g. a one-hour window at night): nobody is
   dropped. The message goes at the window end nearer to allowed time: its start if the
   last allowed second before the window is no farther than the first one after it,
   else its end. Reason `no_allowed_time`.

`deferred` marks decisions whose launch instant (for the control, launch + delay) was
itself quiet: without quiet hours they could have gone out then.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from selector.hashing import pair_keys, split_units
from selector.sendtime.batch import (
    ARMS,
    REASON,
    FloatArray,
    Int64Array,
    SendTimeBatch,
    SendTimeDecision,
    SendTimeDecisions,
)
from selector.sendtime.clock import DAY, ZoneCache, ZoneClock
from selector.sendtime.hours import NONE, Pieces, allowed_pieces, is_weekend
from selector.sendtime.prior import RoutineTables, SlotPrior
from selector.sendtime.settings import SendTimeRequest, SendTimeSettings
from selector.sendtime.thompson import PendingPropensities, mixture_win_probability, thompson

FALLBACK_MARGIN = 2 * DAY
BoolArray = NDArray[np.bool_]


class SendTimeDecider:
    """Decides for one account. Holds the settings, the prior and a cache of zone clocks
    (its only state); randomness comes from the generator passed to each call.

    Examples
    --------
    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> decider = SendTimeDecider(SendTimeSettings(control_pct=0.0), SlotPrior.uniform(12))
    >>> launch = datetime(2026, 1, 1, 15, 0, tzinfo=berlin).timestamp()
    >>> request = SendTimeRequest("ct-1", "camp-1", launch, 86_400, zone="Europe/Berlin")
    >>> d = decider.decide(request, np.random.default_rng(1))
    >>> datetime.fromtimestamp(d.send_at, berlin).strftime("%a %H:%M"), d.slot, d.reason
    ('Fri 11:33', 5, 'sampled')
    >>> round(d.propensity, 3)  # a new contact: any of the 7 slots of 08:00-21:00
    0.143
    """

    def __init__(self, settings: SendTimeSettings, prior: SlotPrior) -> None:
        if prior.cells != settings.cells:
            raise ValueError(f"the prior has {prior.cells} cells; settings need {settings.cells}")
        self.settings = settings
        self.prior = prior
        self.zones = ZoneCache()
        self.tables = RoutineTables(prior)

    def decide(
        self,
        request: SendTimeRequest,
        rng: np.random.Generator,
        sends: Int64Array | None = None,
        responses: Int64Array | None = None,
    ) -> SendTimeDecision:
        """One request (with the contact's window counts per cell, if any)."""
        cells = self.settings.cells
        s = None if sends is None else np.asarray(sends, dtype=np.int64).reshape(1, cells)
        r = None if responses is None else np.asarray(responses, dtype=np.int64).reshape(1, cells)
        batch = SendTimeBatch.from_requests([request], self.settings, s, r)
        return self.decide_batch(batch, rng).row(0)

    def local_days(self, batch: SendTimeBatch) -> Int64Array:
        """Each request's local day at launch: the day its window counts are read for."""
        out = np.empty(len(batch), dtype=np.int64)
        launch = np.floor(batch.launch).astype(np.int64)
        for name, rows in _by_zone(batch.zones):
            t = launch[rows]
            out[rows] = (t + self.zones.clock(name).offset_at(t)) // DAY
        return out

    def decide_batch(self, batch: SendTimeBatch, rng: np.random.Generator) -> SendTimeDecisions:
        n = len(batch)
        lo = np.ceil(batch.launch).astype(np.int64)
        hi = np.floor(batch.launch + batch.window).astype(np.int64)
        keys = pair_keys(batch.launch_keys, batch.contact_ids)
        control = split_units(keys) * 100.0 < batch.control_pct
        send_at = np.empty(n)
        propensity = np.ones(n)
        reason = np.full(n, REASON["control"], dtype=np.uint8)
        deferred = np.zeros(n, dtype=bool)
        slot = np.empty(n, dtype=np.int64)
        day = np.empty(n, dtype=np.int64)
        pending: list[PendingPropensities] = []
        for name, rows in _by_zone(batch.zones):
            clock = self.zones.clock(name)
            part = _Zone(self, batch, rows, lo[rows], hi[rows], control[rows], clock)
            part.decide(rng)
            send_at[rows] = part.send_at
            propensity[rows], reason[rows], deferred[rows] = part.p, part.reason, part.deferred
            slot[rows], day[rows] = _local(clock, send_at[rows], self.settings.slots)
            if part.pending is not None:
                pending.append(part.pending.at(rows))
        if pending:  # one integration for the whole batch: its cost is mostly per call
            self._propensities(PendingPropensities.concatenate(pending), propensity)
        weekend = is_weekend(day)
        cell = slot + self.settings.slots * weekend if self.settings.split_weekends else slot
        return SendTimeDecisions(
            contact_ids=batch.contact_ids,
            send_at=send_at,
            slot=slot,
            cell=cell,
            weekend=weekend,
            local_day=day,
            propensity=propensity,
            reason=reason,
            arm=np.where(control, ARMS.index("control"), ARMS.index("optimized")).astype(np.uint8),
            deferred=deferred,
            zones=batch.zones,
            zone_source=batch.zone_source,
            zone_issue=batch.zone_issue,
        )

    def _propensities(self, job: PendingPropensities, out: FloatArray) -> None:
        floor = self.settings.exploration_pct / 100.0
        won = mixture_win_probability(self.prior, job)
        out[job.rows] = floor / job.count + (1.0 - floor) * won


def _by_zone(zones: tuple[str, ...]) -> list[tuple[str, Int64Array]]:
    names, which = np.unique(np.asarray(zones, dtype=object), return_inverse=True)
    if names.size == 1:
        return [(str(names[0]), np.arange(len(zones)))]
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(names.size + 1))
    return [(str(names[i]), order[bounds[i] : bounds[i + 1]]) for i in range(names.size)]


def _local(clock: ZoneClock, send_at: FloatArray, slots: int) -> tuple[Int64Array, Int64Array]:
    t = np.floor(send_at).astype(np.int64)
    local = t + clock.offset_at(t)
    day = local // DAY
    return (local - day * DAY) // (DAY // slots), day


class _Zone:
    """The requests of one zone within a batch, decided together."""

    def __init__(
        self,
        decider: SendTimeDecider,
        batch: SendTimeBatch,
        rows: Int64Array,
        lo: Int64Array,
        hi: Int64Array,
        control: BoolArray,
        clock: ZoneClock,
    ) -> None:
        self.settings, self.prior, self.clock = decider.settings, decider.prior, clock
        self.tables = decider.tables
        self.rows, self.lo, self.hi, self.control = rows, lo, hi, control
        self.launch, self.window = batch.launch[rows], batch.window[rows]
        self.hours = batch.hours[rows]
        self.delay = batch.control_delay[rows]
        self.sends, self.responses = batch.sends[rows], batch.responses[rows]
        m = rows.size
        self.send_at = np.empty(m)
        self.p = np.ones(m)
        self.reason = np.full(m, REASON["control"], dtype=np.uint8)
        self.deferred = np.zeros(m, dtype=bool)
        self.pending: PendingPropensities | None = None

    def decide(self, rng: np.random.Generator) -> None:
        pieces = allowed_pieces(self.clock, self.lo, self.hi, self.hours, self.settings.slots)
        first, end = pieces.earliest(self.settings.split_weekends)
        available = first != NONE
        some = available.any(axis=1)
        ctl = np.flatnonzero(self.control & some)
        if ctl.size:
            self._control(pieces.subset(ctl), ctl)
        opt = np.flatnonzero(~self.control & some)
        if opt.size:
            self._optimize(opt, first[opt], end[opt], available[opt], rng)
            lo = self.lo[opt]
            self.deferred[opt] = pieces.subset(opt).first_at_or_after(lo) != lo
        none = np.flatnonzero(~some)
        if none.size:
            self._no_allowed_time(none)

    def _control(self, pieces: Pieces, rows: Int64Array) -> None:
        """The first allowed second at or after launch + delay, else the last before."""
        lo, hi = self.lo[rows], self.hi[rows]
        target = np.clip(np.ceil(self.launch[rows] + self.delay[rows]).astype(np.int64), lo, hi)
        send = pieces.first_at_or_after(target)
        late = np.flatnonzero(send == NONE)
        if late.size:
            send[late] = pieces.subset(late).last_at_or_before(target[late])
        self.send_at[rows] = send
        self.deferred[rows] = send != target

    def _optimize(
        self,
        rows: Int64Array,
        first: Int64Array,
        end: Int64Array,
        available: BoolArray,
        rng: np.random.Generator,
    ) -> None:
        responses = np.clip(self.responses[rows], 0, None)
        sends = np.maximum(self.sends[rows], responses)
        winner, chance = thompson(self.prior, self.tables, sends, responses, available, rng)
        floor = self.settings.exploration_pct / 100.0
        explore = rng.random(rows.size) < floor
        if explore.any():
            keys = rng.random((int(explore.sum()), available.shape[1]))
            winner[explore] = np.where(available[explore], keys, -1.0).argmax(axis=1)
        count = available.sum(axis=1)
        several = np.flatnonzero(count > 1)
        if several.size:  # integrated later, once for the whole batch
            self.pending = PendingPropensities(
                rows[several], sends[several], responses[several], available[several],
                winner[several], chance[several], count[several],
            )  # fmt: skip
        reason = np.where(explore, REASON["explored"], REASON["sampled"])
        self.reason[rows] = np.where(count > 1, reason, REASON["only_slot"])
        self.p[rows] = 1.0
        picked = np.arange(rows.size)
        start, stop = first[picked, winner], end[picked, winner]
        offset = np.floor(rng.random(rows.size) * (stop - start)).astype(np.int64)
        self.send_at[rows] = start + np.minimum(offset, stop - start - 1)

    def _no_allowed_time(self, rows: Int64Array) -> None:
        lo, hi = self.lo[rows], self.hi[rows]
        wide = allowed_pieces(
            self.clock,
            np.minimum(lo, hi) - FALLBACK_MARGIN,
            np.maximum(lo, hi) + FALLBACK_MARGIN,
            self.hours[rows],
            self.settings.slots,
        )
        before = wide.last_at_or_before(lo)
        after = wide.first_at_or_after(hi)
        far = np.float64(np.inf)
        gap_before = np.where(before != NONE, lo - before, far)
        gap_after = np.where(after != NONE, after - hi, far)
        launch, window = self.launch[rows], self.window[rows]
        self.send_at[rows] = np.where(gap_before <= gap_after, launch, launch + window)
        self.reason[rows] = REASON["no_allowed_time"]
        self.p[rows] = 1.0
        self.deferred[rows] = True
