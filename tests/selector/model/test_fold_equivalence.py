"""The profile fold and decode the stream uses give exactly the values of the per-event
fold and the batch decode (`reference_fold`), on random histories and stored values."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from selector.ingest import SourcedEvent
from selector.model.profile import (
    EMPTY,
    MAX_CUSTOM,
    MAX_RECENT,
    MAX_SOURCES,
    ContactProfile,
    Recent,
    apply_profile_events,
)
from selector.model.record import SIZE, _to_bytes, decode, encode, to_bytes
from tests.selector.model import reference_fold

KINDS = ("send", "click", "conversion")
TOPICS = ("sends", "clicks", "conversions", "old-sends")


def random_events(rng: np.random.Generator, n: int) -> list[SourcedEvent]:
    """Events over up to 8 sources (forgetting some), with replays, duplicates, batch
    items of one offset, times out of order and gaps longer than the retention."""
    offsets: dict[tuple[str, int], int] = {}
    clock = float(rng.uniform(0, 1e6))
    events = []
    for _ in range(n):
        kind = KINDS[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        topic = TOPICS[int(rng.integers(len(TOPICS)))]
        partition = int(rng.integers(2))
        offset = offsets.get((topic, partition), int(rng.integers(0, 5)))
        roll = rng.random()
        if roll < 0.1:
            offset = max(0, offset - int(rng.integers(1, 4)))  # a re-delivery
        elif roll < 0.8:
            offset += 1
        offsets[topic, partition] = max(offset, offsets.get((topic, partition), 0))
        gap = rng.random()
        clock += 1e5 if gap < 0.02 else float(rng.exponential(600))
        time = clock - float(rng.exponential(3000)) if rng.random() < 0.3 else clock
        revenue = int(rng.integers(0, 10**8)) if kind == "conversion" else 0
        events.append(
            SourcedEvent(
                kind,  # type: ignore[arg-type]
                f"c{int(rng.integers(12))}",
                round(max(time, 0.0), 3),
                revenue,
                topic,
                partition,
                offset,
                bool(rng.random() < 0.08),
                index=int(rng.integers(3)),
            )
        )
    return events


@pytest.mark.parametrize("seed", range(40))
def test_the_fold_matches_the_per_event_fold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    events = random_events(rng, int(rng.integers(1, 120)))
    retention = float(rng.choice([5e4, 1e9]))
    mine = theirs = EMPTY
    if rng.random() < 0.5:
        custom = (1.5, None, -2.0) if rng.random() < 0.5 else ()
        mine = theirs = ContactProfile(custom=custom)
    cuts = sorted(rng.integers(0, len(events) + 1, size=3).tolist())
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        part = events[max(0, a - int(rng.integers(3))) : b]  # overlapping: re-deliveries
        mine, got = apply_profile_events(decode_or_empty(encode(mine)), part, retention)
        theirs, expected = reference_fold.apply_profile_events(
            reference_fold_decode(encode(theirs)), part, retention
        )
        assert mine == theirs
        assert encode(mine) == encode(theirs)
        assert dict(got) == dict(expected)
    assert len(mine.recent) <= MAX_RECENT


def decode_or_empty(blob: bytes) -> ContactProfile:
    value = decode(blob)
    assert not isinstance(value, str)
    return value


def reference_fold_decode(blob: bytes) -> ContactProfile:
    value = reference_fold.decode(blob)
    assert not isinstance(value, str)
    return value


def test_an_unchanged_profile_is_the_same_object() -> None:
    """(With at most four sources: none is forgotten.)"""
    events = [e for e in random_events(np.random.default_rng(3), 60) if e.topic in TOPICS[:2]]
    once, _ = apply_profile_events(EMPTY, events)
    again, outcome = apply_profile_events(once, events)
    assert again is once and set(outcome) == {"replayed"}


def _mutations(rng: np.random.Generator, blob: bytes) -> list[bytes]:
    full = bytearray(blob.ljust(SIZE, b"\0"))
    out = [blob, b"", blob[:1], bytes(full), bytes(full) + b"\1", b"\2" + blob[1:]]
    for _ in range(12):
        b = bytearray(full)
        at = int(rng.integers(1, SIZE - 8))
        if rng.random() < 0.5:
            b[at] = int(rng.integers(256))
        else:
            b[at : at + 8] = struct.pack("<d", float(rng.choice([math.nan, math.inf, -math.inf])))
        out.append(bytes(b).rstrip(b"\0"))
    for field in (1, 2, 3):  # counts beyond their arrays
        b = bytearray(full)
        b[field] = 9
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_decode_matches_the_batch_decode(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    profile, _ = apply_profile_events(
        ContactProfile(custom=(0.5, None, 3.0)), random_events(rng, int(rng.integers(0, 40)))
    )
    for blob in _mutations(rng, encode(profile)):
        expected = reference_fold.decode(blob)
        got = decode(blob)
        assert got == expected or (
            not isinstance(got, str)
            and not isinstance(expected, str)
            and encode(got) == encode(expected)  # NaN values: equal bytes, not equal floats
        )
        assert type(got) is type(expected)


@pytest.mark.parametrize("seed", range(20))
def test_the_packed_record_matches_the_full_pack(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    width = int(rng.integers(0, MAX_CUSTOM + 1))
    slots = [None if rng.random() < 0.3 else float(rng.normal()) for _ in range(width)]
    while slots and slots[-1] is None:  # trailing missing slots are not stored
        slots.pop()
    custom = tuple(slots)
    profile, _ = apply_profile_events(
        ContactProfile(custom=custom), random_events(rng, int(rng.integers(0, 60)))
    )
    assert to_bytes(profile) == _to_bytes(profile)
    decoded = decode(encode(profile))
    assert decoded == profile
    assert not isinstance(decoded, str)
    assert all(type(r) is Recent for r in decoded.recent)


def test_a_profile_beyond_the_layout_is_refused() -> None:
    with pytest.raises(struct.error):
        to_bytes(ContactProfile(sources=((1, 2, 3.0),) * (MAX_SOURCES + 1)))
