"""The per-event profile fold as it was before `fold_rows` (one `ContactProfile` per
event, `dataclasses.replace` for the offsets), kept to prove the faster fold gives the
same values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from selector.ingest import Outcome, SourcedEvent
from selector.model.profile import (
    DEFAULT_RETENTION_SECONDS,
    MAX_SOURCES,
    ContactProfile,
    add_event,
    source_key,
)
from selector.model.record import Records, from_record, records


def remember_offset(p: ContactProfile, key: int, offset: int, time: float) -> ContactProfile:
    entries = {k: (o, t) for k, o, t in p.sources}
    previous = entries.get(key, (offset, time))
    entries[key] = (max(previous[0], offset), max(previous[1], time))
    if len(entries) > MAX_SOURCES:
        del entries[min(entries, key=lambda k: (entries[k][1], k))]
    return replace(p, sources=tuple((k, o, t) for k, (o, t) in sorted(entries.items())))


def apply_profile_events(
    profile: ContactProfile,
    events: Iterable[SourcedEvent],
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> tuple[ContactProfile, Counter[Outcome]]:
    outcome: Counter[Outcome] = Counter()
    last: dict[int, tuple[int, int]] = {}
    for e in events:
        key = source_key(e.topic, e.partition)
        seen = last.get(key)
        if seen is None:
            seen = (next((o for k, o, _ in profile.sources if k == key), -1), 2**62)
        if (e.offset, e.index) <= seen:
            outcome["replayed"] += 1
            continue
        last[key] = (e.offset, e.index)
        profile = remember_offset(profile, key, e.offset, e.time)
        if e.duplicate:
            outcome["duplicate"] += 1
            continue
        profile = add_event(
            profile, e.kind, e.creative_id, e.time, e.revenue_micros, retention_seconds
        )
        outcome["applied"] += 1
    return profile, outcome


def decode(blob: bytes) -> ContactProfile | str:
    """The batch decode of one value."""
    recs: Records
    recs, reasons = records([blob])
    return reasons[0] or from_record(recs)
