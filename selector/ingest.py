"""Idempotent application of outcome events to an account's stats.

Kafka delivers at least once: after a crash, events after the last committed offset come
again. The stats value therefore remembers, per source topic-partition, the highest
offset it has applied; anything at or below it is a re-delivery and is skipped. Events
that upstream published twice (same `event_id`, different offset) are flagged by the
caller's dedup store and skipped too, but still advance the offset. Both the stats agent
and the daily recomputation use this one function, so they cannot disagree.

A Kafka message may hold a batch of events (one offset, items `index` 0, 1, ...). The
items of one message are applied together, in one call and in order: an event is new
when `(offset, index)` comes after the last one applied in this call, and everything at
or below the ledger's offset was applied before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from selector.stats import AccountStats, EventKind, StatsEvent

Outcome = Literal["applied", "replayed", "duplicate"]
CorrectionOutcome = Literal["applied", "replayed"]
OUTCOMES: tuple[Outcome, ...] = ("applied", "replayed", "duplicate")
EVERY_INDEX = 2**62  # the ledger's offset: every item of that message was applied


def partition_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


@dataclass(frozen=True, slots=True)
class SourcedEvent:
    """An outcome event and where it was read from."""

    kind: EventKind
    creative_id: str
    time: float
    revenue_micros: int
    topic: str
    partition: int
    offset: int
    duplicate: bool = False
    origin_time: float | None = None  # a click's send time, a conversion's click time
    index: int = 0  # the event's place in its message's batch (0 for a single event)


@dataclass(frozen=True, slots=True)
class Ledger:
    """The stats table value: stats plus the highest applied offset per topic-partition."""

    stats: AccountStats = field(default_factory=AccountStats)
    applied: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def applied_offset(self, topic: str, partition: int) -> int:
        return self.applied.get(partition_key(topic, partition), -1)


# One event as `apply_rows` takes it: a `SourcedEvent`'s fields, (kind, creative_id,
# time, revenue_micros, topic, partition, offset, duplicate, origin_time, index).
Row = tuple[EventKind, str, float, int, str, int, int, bool, float | None, int]


def apply_events(
    ledger: Ledger, events: Iterable[SourcedEvent]
) -> tuple[Ledger, Counter[tuple[EventKind, Outcome]]]:
    """Apply events in order; returns the new ledger and a count per (kind, outcome)."""
    rows = [
        (e.kind, e.creative_id, e.time, e.revenue_micros, e.topic, e.partition, e.offset,
         e.duplicate, e.origin_time, e.index)
        for e in events
    ]  # fmt: skip
    new, outcome, _ = apply_rows(ledger, rows)
    return new, outcome


def apply_rows(
    ledger: Ledger, rows: Iterable[Row]
) -> tuple[Ledger, Counter[tuple[EventKind, Outcome]], list[bool]]:
    """`apply_events` on events given as `Row` tuples, and which of them were applied
    (past the ledger's offsets and not duplicates)."""
    outcome: Counter[tuple[EventKind, Outcome]] = Counter()
    applied = dict(ledger.applied)
    last: dict[str, tuple[int, int]] = {}  # per partition: (offset, index) applied last
    keys: dict[tuple[str, int], str] = {}
    events: list[StatsEvent] = []
    flags: list[bool] = []
    changed = False
    for kind, creative_id, time, revenue, topic, partition, offset, dup, origin, index in rows:
        key = keys.get((topic, partition))
        if key is None:
            key = keys[topic, partition] = partition_key(topic, partition)
        seen = last.get(key)
        if seen is None:
            seen = (applied.get(key, -1), EVERY_INDEX)
        if (offset, index) <= seen:
            outcome[kind, "replayed"] += 1
            flags.append(False)
            continue
        last[key] = (offset, index)
        applied[key] = offset
        changed = True
        if dup:
            outcome[kind, "duplicate"] += 1
            flags.append(False)
            continue
        events.append((kind, creative_id, time, revenue, origin))
        outcome[kind, "applied"] += 1
        flags.append(True)
    if not changed:
        return ledger, outcome, flags
    return Ledger(ledger.stats.apply_all(events), MappingProxyType(applied)), outcome, flags


def advance(ledger: Ledger, through: Mapping[str, int]) -> Ledger:
    """The ledger with the applied offset of each `"topic:partition"` in `through` raised
    to the given offset, where every event of that topic-partition up to it has been
    seen: this account's applied or skipped, the others' not its own. Skipping works as
    before; the offsets now also say, for accounts quiet in a topic-partition, how far
    the agent has read it, so a resume from the lowest applied offset reads little.

    >>> ledger = Ledger(applied=MappingProxyType({"sends:0": 4}))
    >>> dict(advance(ledger, {"sends:0": 9, "clicks:0": 7, "opens:0": -1}).applied)
    {'sends:0': 9, 'clicks:0': 7}
    >>> advance(ledger, {"sends:0": 3}) is ledger
    True
    """
    raised = {k: v for k, v in through.items() if v > ledger.applied.get(k, -1)}
    if not raised:
        return ledger
    return Ledger(ledger.stats, MappingProxyType({**ledger.applied, **raised}))


def totals(outcome: Counter[tuple[EventKind, Outcome]]) -> dict[Outcome, int]:
    """Outcome counts summed over event kinds."""
    out: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
    for (_, name), count in outcome.items():
        out[name] += count
    return out


def apply_correction(
    ledger: Ledger, delta: AccountStats, topic: str, partition: int, offset: int
) -> tuple[Ledger, CorrectionOutcome]:
    """Add a correction from the daily job (counts are additive), once: a correction at or
    below the applied offset of its topic-partition is a re-delivery and changes nothing.
    """
    key = partition_key(topic, partition)
    if offset <= ledger.applied.get(key, -1):
        return ledger, "replayed"
    applied = dict(ledger.applied)
    applied[key] = offset
    return Ledger(ledger.stats.merge(delta), MappingProxyType(applied)), "applied"
