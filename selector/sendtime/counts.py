"""A contact's sends and responses per local-time slot: an exact, idempotent integer fold.

Each send is counted in the *cell* it went out in (its local slot, plus the weekday or
weekend kind of its local day when the account keeps those apart) and in the *bucket* of
its local day (`bucket_days` wide). A response (an open for email, a click for SMS, as
the account says) is counted in its send's cell and bucket, at most once per send (see
`claim_response`), so responses <= sends in every cell and the slot's posterior is
Beta(prior_a + responses, prior_b + sends - responses).

History: the value keeps the buckets that overlap the last `history_days` days before
the latest send day it has seen. Every event of those days counts, and events up to
`bucket_days - 1` days older may still count; older buckets are dropped. Because the
cut is anchored at the latest day *seen*, the same events give the same value in any
order, which the daily job relies on when it recomputes the fold from the topics.

Idempotence mirrors `selector.ingest`: the value remembers, per source topic-partition,
the highest offset applied; a re-delivered event is skipped, an upstream duplicate
(flagged by the caller's event-id dedup) is skipped but still advances the offset. The
"offsets" are item positions (`position`), so the events of one batch message each have
their own.

>>> position(41, 0) < position(41, 999) < position(42, 0)
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.claims import CLAIMS, Claim, SendRecord, claim_response

__all__ = ["CLAIMS", "Claim", "SendRecord", "claim_response"]  # re-exported from claims

Int64Array = NDArray[np.int64]
SlotEventKind = Literal["send", "response"]
SlotOutcome = Literal["applied", "replayed", "duplicate", "expired"]
SLOT_OUTCOMES: tuple[SlotOutcome, ...] = get_args(SlotOutcome)
# Where applied offsets come from; the code (position) is what the bytes encoding stores.
# "early-responses": a response that arrived before its send, counted with the send (at
# the send's partition and offset), so a send's topic position guards it too.
SOURCES: tuple[str, ...] = (
    *("sends", "opens", "clicks", "sendtime-corrections", "early-responses"),
)


ITEM_SPAN = 1024  # above the most items a batch message holds (stream.wire.batches)


def position(offset: int, place: int = 0) -> int:
    """The position of the item at `place` of the message at `offset`."""
    if not 0 <= place < ITEM_SPAN:
        raise ValueError(f"an item's place is 0-{ITEM_SPAN - 1}, got {place}")
    return offset * ITEM_SPAN + place


@dataclass(frozen=True, slots=True)
class History:
    """How much of a contact's past counts: `history_days`, kept in `bucket_days` buckets."""

    history_days: int = 365
    bucket_days: int = 7

    def __post_init__(self) -> None:
        if not (1 <= self.bucket_days <= self.history_days <= 3660):
            raise ValueError("need 1 <= bucket_days <= history_days <= 3660")

    def bucket(self, day: int) -> int:
        return day // self.bucket_days

    def first_bucket(self, latest_day: int) -> int:
        """Oldest bucket still counted when the latest day seen is `latest_day`."""
        return (latest_day - self.history_days) // self.bucket_days


@dataclass(frozen=True, slots=True)
class SlotEvent:
    """A send, or a response attributed to its send's cell and local day."""

    kind: SlotEventKind
    cell: int
    day: int
    source: int
    partition: int
    offset: int
    duplicate: bool = False


def _empty() -> Int64Array:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class ContactSlots:
    """One contact's counts: parallel arrays sorted by (bucket, cell), plus the highest
    applied offset per (source, partition) and the latest send day seen."""

    bucket: Int64Array = field(default_factory=_empty)
    cell: Int64Array = field(default_factory=_empty)
    sends: Int64Array = field(default_factory=_empty)
    responses: Int64Array = field(default_factory=_empty)
    applied: tuple[tuple[int, int, int], ...] = ()
    latest_day: int = -(1 << 31)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContactSlots):
            return NotImplemented
        return (
            self.applied == other.applied
            and self.latest_day == other.latest_day
            and all(
                np.array_equal(getattr(self, k), getattr(other, k))
                for k in ("bucket", "cell", "sends", "responses")
            )
        )

    def applied_offset(self, source: int, partition: int) -> int:
        for s, p, offset in self.applied:
            if (s, p) == (source, partition):
                return offset
        return -1

    def window(self, cells: int, history: History, today: int) -> tuple[Int64Array, Int64Array]:
        """Sends and responses per cell over the buckets counted on `today` (the
        decision's local day; the newer of it and the latest send day anchors the cut)."""
        keep = (self.bucket >= history.first_bucket(max(today, self.latest_day))) & (
            self.cell < cells
        )
        sends = np.bincount(self.cell[keep], weights=self.sends[keep], minlength=cells)
        resp = np.bincount(self.cell[keep], weights=self.responses[keep], minlength=cells)
        return sends[:cells].astype(np.int64), resp[:cells].astype(np.int64)


def apply_slot_events(
    state: ContactSlots, events: Iterable[SlotEvent], history: History
) -> tuple[ContactSlots, Counter[tuple[SlotEventKind, SlotOutcome]]]:
    """Apply events in order; returns the new value and a count per (kind, outcome).

    `expired`: the event's day is older than the history kept (its offset still counts
    as applied).
    """
    outcome: Counter[tuple[SlotEventKind, SlotOutcome]] = Counter()
    applied = {(s, p): o for s, p, o in state.applied}
    latest = state.latest_day
    adds: dict[tuple[int, int], list[int]] = {}
    for e in events:
        key = (e.source, e.partition)
        if e.offset <= applied.get(key, -1):
            outcome[e.kind, "replayed"] += 1
            continue
        applied[key] = e.offset
        if e.duplicate:
            outcome[e.kind, "duplicate"] += 1
            continue
        if e.kind == "send":
            latest = max(latest, e.day)
        pair = adds.setdefault((history.bucket(e.day), e.cell), [0, 0])
        pair[0 if e.kind == "send" else 1] += 1
        outcome[e.kind, "applied"] += 1
    if applied == {(s, p): o for s, p, o in state.applied}:
        return state, outcome
    new = _merged(state, adds, history.first_bucket(latest), latest)
    expired = _expired(adds, history.first_bucket(latest))
    for kind, count in expired.items():
        outcome[kind, "applied"] -= count
        outcome[kind, "expired"] += count
    ordered = tuple(sorted((s, p, o) for (s, p), o in applied.items()))
    return ContactSlots(new.bucket, new.cell, new.sends, new.responses, ordered, latest), outcome


class SlotFold:
    """One contact's counts taking events one at a time, with the outcome of each exactly
    as `apply_slot_events(value, [event], history)` gives it, but merged into the arrays
    only when `value` is asked for: a batch's events of one contact cost one merge.

    The same value: the latest day only grows, so dropping the buckets below its first
    bucket at every event is dropping them once, at the end, with the last one; and a
    merge (so a drop) happens only when some event advanced the applied offsets, as
    `apply_slot_events` returns the value unchanged otherwise. `changed`: `value` is not
    the value the fold started from (an event advanced the offsets, or `replace`)."""

    __slots__ = ("_adds", "_applied", "_history", "_latest", "_pending", "_state", "changed")

    def __init__(self, state: ContactSlots, history: History) -> None:
        self._history = history
        self.changed = False
        self._reset(state)

    def _reset(self, state: ContactSlots) -> None:
        self._state = state
        self._applied = {(s, p): o for s, p, o in state.applied}
        self._latest = state.latest_day
        self._adds: dict[tuple[int, int], list[int]] = {}
        self._pending = False

    def apply(
        self,
        kind: SlotEventKind,
        cell: int,
        day: int,
        source: int,
        partition: int,
        offset: int,
        duplicate: bool = False,
    ) -> SlotOutcome:
        """Apply one event (the fields of a `SlotEvent`); its outcome."""
        key = (source, partition)
        if offset <= self._applied.get(key, -1):
            return "replayed"
        self._applied[key] = offset
        self._pending = True
        if duplicate:
            return "duplicate"
        if kind == "send" and day > self._latest:
            self._latest = day
        history = self._history
        bucket = day // history.bucket_days
        if bucket < history.first_bucket(self._latest):
            return "expired"
        counts = self._adds.get((bucket, cell))
        if counts is None:
            counts = self._adds[bucket, cell] = [0, 0]
        counts[0 if kind == "send" else 1] += 1
        return "applied"

    def value(self) -> ContactSlots:
        """The counts with every event applied so far."""
        if self._pending:
            latest = self._latest
            new = _merged(self._state, self._adds, self._history.first_bucket(latest), latest)
            applied = tuple(sorted((s, p, o) for (s, p), o in self._applied.items()))
            self._reset(
                ContactSlots(new.bucket, new.cell, new.sends, new.responses, applied, latest)
            )
            self.changed = True
        return self._state

    def replace(self, state: ContactSlots) -> None:
        """Go on from `state` (e.g. `apply_slot_correction` of `value()`)."""
        self.value()
        self._reset(state)
        self.changed = True


def _expired(adds: dict[tuple[int, int], list[int]], first_bucket: int) -> Counter[SlotEventKind]:
    out: Counter[SlotEventKind] = Counter()
    for (bucket, _), (sends, responses) in adds.items():
        if bucket < first_bucket:
            out["send"] += sends
            out["response"] += responses
    return out


def _merged(
    state: ContactSlots, adds: dict[tuple[int, int], list[int]], first_bucket: int, latest: int
) -> ContactSlots:
    """The state's entries plus `adds`, summed per (bucket, cell), old buckets dropped."""
    if state.bucket.size + len(adds) <= SMALL:  # in plain Python, from the lists
        rows = zip(
            state.bucket.tolist(), state.cell.tolist(), state.sends.tolist(),
            state.responses.tolist(), strict=True,
        )  # fmt: skip
        entries = [(b, c, s, r) for b, c, s, r in rows if b >= first_bucket]
        entries += [(b, c, s, r) for (b, c), (s, r) in adds.items() if b >= first_bucket]
        return ContactSlots(*_summed_rows(entries), state.applied, latest)
    if adds:
        keys = np.array(list(adds.keys()), dtype=np.int64).reshape(-1, 2)
        values = np.array(list(adds.values()), dtype=np.int64).reshape(-1, 2)
        bucket = np.concatenate([state.bucket, keys[:, 0]])
        cell = np.concatenate([state.cell, keys[:, 1]])
        sends = np.concatenate([state.sends, values[:, 0]])
        responses = np.concatenate([state.responses, values[:, 1]])
    else:
        bucket, cell, sends, responses = state.bucket, state.cell, state.sends, state.responses
    keep = bucket >= first_bucket
    b, c, s, r = _summed(bucket[keep], cell[keep], sends[keep], responses[keep])
    return ContactSlots(b, c, s, r, state.applied, latest)


SMALL = 48  # entries up to which summing in plain Python beats numpy's sort
Columns = tuple[Int64Array, Int64Array, Int64Array, Int64Array]


def _summed(
    bucket: Int64Array, cell: Int64Array, sends: Int64Array, responses: Int64Array
) -> Columns:
    """One entry per (bucket, cell), sorted by (bucket, cell), its sends and responses
    summed. Small inputs are summed in a dict; larger ones sorted on one combined key,
    bucket * span + (cell - lowest cell) with every cell's term below the span, whose
    order is the (bucket, cell) order."""
    n = bucket.size
    if n == 0:
        return _empty(), _empty(), _empty(), _empty()
    if n <= SMALL:
        columns = (bucket.tolist(), cell.tolist(), sends.tolist(), responses.tolist())
        return _summed_rows(list(zip(*columns, strict=True)))
    lowest, highest = int(cell.min()), int(cell.max())
    span = highest - lowest + 1
    reach = max(abs(int(bucket.min())), abs(int(bucket.max()))) + 1
    if reach * span >= 1 << 62:  # the combined key would overflow: sort the pairs
        found, which = np.unique(np.stack([bucket, cell], axis=1), axis=0, return_inverse=True)
        out_bucket, out_cell = found[:, 0].copy(), found[:, 1].copy()
    else:
        found, which = np.unique(bucket * span + (cell - lowest), return_inverse=True)
        out_bucket, out_cell = found // span, found % span + lowest
    which = which.reshape(-1)
    m = out_bucket.size
    summed_sends = np.bincount(which, weights=sends, minlength=m).astype(np.int64)
    summed_resp = np.bincount(which, weights=responses, minlength=m).astype(np.int64)
    return out_bucket, out_cell, summed_sends, summed_resp


def _summed_rows(rows: list[tuple[int, int, int, int]]) -> Columns:
    """`_summed` of (bucket, cell, sends, responses) rows, in plain Python."""
    sums: dict[tuple[int, int], list[int]] = {}
    for b, c, sent, answered in rows:
        entry = sums.get((b, c))
        if entry is None:
            sums[b, c] = [sent, answered]
        else:
            entry[0] += sent
            entry[1] += answered
    if not sums:
        return _empty(), _empty(), _empty(), _empty()
    table = np.array([(*k, *sums[k]) for k in sorted(sums)], dtype=np.int64)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), table[:, 3].copy()


@dataclass(frozen=True, slots=True, eq=False)
class SlotDelta:
    """Per-(bucket, cell) differences between two values: what the daily job publishes
    when its recomputation disagrees with the streamed counts."""

    bucket: Int64Array
    cell: Int64Array
    sends: Int64Array
    responses: Int64Array

    def is_zero(self) -> bool:
        return not (self.sends.any() or self.responses.any())


def slot_delta(recomputed: ContactSlots, streamed: ContactSlots) -> SlotDelta:
    """recomputed - streamed, entries that differ only."""
    bucket = np.concatenate([recomputed.bucket, streamed.bucket])
    cell = np.concatenate([recomputed.cell, streamed.cell])
    sends = np.concatenate([recomputed.sends, -streamed.sends])
    responses = np.concatenate([recomputed.responses, -streamed.responses])
    b, c, ds, dr = _summed(bucket, cell, sends, responses)
    nz = (ds != 0) | (dr != 0)
    return SlotDelta(b[nz], c[nz], ds[nz], dr[nz])


def apply_slot_correction(
    state: ContactSlots, delta: SlotDelta, source: int, partition: int, offset: int
) -> tuple[ContactSlots, Literal["applied", "replayed"]]:
    """Add a correction once: at or below the applied offset of its topic-partition it is
    a re-delivery and changes nothing. Counts are additive, so events that arrived after
    the job's cut stay counted."""
    if offset <= state.applied_offset(source, partition):
        return state, "replayed"
    adds: dict[tuple[int, int], list[int]] = {}
    for b, c, s, r in zip(delta.bucket, delta.cell, delta.sends, delta.responses, strict=True):
        adds[int(b), int(c)] = [int(s), int(r)]
    applied = {(s, p): o for s, p, o in state.applied} | {(source, partition): offset}
    merged = _merged(state, adds, -(1 << 62), state.latest_day)
    live = (merged.sends != 0) | (merged.responses != 0)
    ordered = tuple(sorted((s, p, o) for (s, p), o in applied.items()))
    return (
        ContactSlots(
            merged.bucket[live],
            merged.cell[live],
            merged.sends[live],
            merged.responses[live],
            ordered,
            state.latest_day,
        ),
        "applied",
    )
