"""A contact's slot counts: exact, idempotent, order-independent, windowed; one response per
send; corrections once; the bytes round-trip and bad bytes give bounded reasons."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector.sendtime.codec import (
    CodecError,
    decode_record,
    decode_slots,
    encode_record,
    encode_slots,
    window_counts,
)
from selector.sendtime.counts import (
    ITEM_SPAN,
    SMALL,
    ContactSlots,
    History,
    SendRecord,
    SlotEvent,
    _merged,
    _summed,
    apply_slot_correction,
    apply_slot_events,
    claim_response,
    position,
    slot_delta,
)

SENDS, OPENS, CORRECTIONS = 0, 1, 3
HISTORY = History(history_days=365, bucket_days=7)


def send(cell: int, day: int, offset: int, partition: int = 0) -> SlotEvent:
    return SlotEvent("send", cell, day, SENDS, partition, offset)


def response(cell: int, day: int, offset: int, partition: int = 0) -> SlotEvent:
    return SlotEvent("response", cell, day, OPENS, partition, offset)


def some_events() -> list[SlotEvent]:
    events = [
        send(c % 12, 19_000 + d, i)
        for i, (c, d) in enumerate(itertools.product(range(5), range(0, 40, 3)))
    ]
    events += [
        response(c % 12, 19_000 + d, i)
        for i, (c, d) in enumerate(itertools.product(range(2), range(0, 40, 6)))
    ]
    return events


def test_counts_per_cell_are_exact() -> None:
    state, outcome = apply_slot_events(ContactSlots(), some_events(), HISTORY)
    sends, responses = state.window(12, HISTORY, today=19_040)
    assert sends.tolist() == [14] * 5 + [0] * 7
    assert responses.tolist() == [7, 7] + [0] * 10
    assert outcome["send", "applied"] == 70 and outcome["response", "applied"] == 14


def test_re_deliveries_are_skipped_and_duplicates_advance_the_offset() -> None:
    events = some_events()
    once, _ = apply_slot_events(ContactSlots(), events, HISTORY)
    again, outcome = apply_slot_events(once, events[10:], HISTORY)
    assert again is once
    assert outcome["send", "replayed"] == 60
    dup = SlotEvent("send", 3, 19_050, SENDS, 0, 70, duplicate=True)
    after, outcome = apply_slot_events(once, [dup], HISTORY)
    assert outcome["send", "duplicate"] == 1
    assert after.applied_offset(SENDS, 0) == 70
    assert np.array_equal(after.window(12, HISTORY, 19_050)[0], once.window(12, HISTORY, 19_050)[0])


@settings(max_examples=40, deadline=None)
@given(picks=st.lists(st.integers(0, 2), min_size=30, max_size=30), cut=st.integers(0, 30))
def test_any_interleaving_and_any_batching_give_the_same_value(picks: list[int], cut: int) -> None:
    """Each partition's events arrive in offset order (Kafka's guarantee); partitions
    interleave arbitrarily and batches end anywhere."""
    days = [19_000 + 17 * i for i in range(30)]  # spans more than a year
    events = [SlotEvent("send", i % 12, days[i], SENDS, i % 3, i) for i in range(30)]
    truth, _ = apply_slot_events(ContactSlots(), events, HISTORY)
    queues = [[e for e in events if e.partition == p] for p in range(3)]
    mixed = []
    for p in picks:
        queue = queues[p] if queues[p] else next(q for q in queues if q)
        mixed.append(queue.pop(0))
    first, _ = apply_slot_events(ContactSlots(), mixed[:cut], HISTORY)
    both, _ = apply_slot_events(first, mixed[cut:], HISTORY)
    assert both == truth


def test_buckets_older_than_the_history_are_dropped() -> None:
    history = History(history_days=28, bucket_days=7)
    old, new = send(0, 19_000, 0), send(1, 19_100, 1)
    state, _ = apply_slot_events(ContactSlots(), [old], history)
    state, outcome = apply_slot_events(state, [new], history)
    assert state.bucket.tolist() == [19_100 // 7]
    late, outcome = apply_slot_events(state, [send(2, 19_001, 2)], history)
    assert outcome["send", "expired"] == 1
    assert late.window(12, history, 19_100)[0].sum() == 1
    # every day of the last 28 counts; a bucket reaching further back counts whole
    edge, _ = apply_slot_events(state, [send(3, 19_100 - 28, 3)], history)
    assert edge.window(12, history, 19_100)[0][3] == 1


def test_one_response_per_send() -> None:
    record = SendRecord(cell=4, day=19_000)
    claimed, claim = claim_response(record, OPENS, 0, 17)
    assert claim == "first" and claimed is not None and claimed.claimed_by == (OPENS, 0, 17)
    assert claim_response(claimed, OPENS, 0, 17)[1] == "redelivery"
    assert claim_response(claimed, OPENS, 0, 18)[1] == "repeat"
    assert claim_response(None, OPENS, 0, 18) == (None, "unknown_send")


def test_a_correction_makes_the_streamed_value_equal_the_recomputed_one_once() -> None:
    events = some_events()
    recomputed, _ = apply_slot_events(ContactSlots(), events, HISTORY)
    streamed, _ = apply_slot_events(ContactSlots(), events[5:-3], HISTORY)  # lost some
    delta = slot_delta(recomputed, streamed)
    assert not delta.is_zero()
    fixed, outcome = apply_slot_correction(streamed, delta, CORRECTIONS, 0, 0)
    assert outcome == "applied"
    assert np.array_equal(
        fixed.window(12, HISTORY, 19_040)[0], recomputed.window(12, HISTORY, 19_040)[0]
    )
    assert np.array_equal(
        fixed.window(12, HISTORY, 19_040)[1], recomputed.window(12, HISTORY, 19_040)[1]
    )
    assert slot_delta(recomputed, fixed).is_zero()
    assert apply_slot_correction(fixed, delta, CORRECTIONS, 0, 0) == (fixed, "replayed")


def test_history_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        History(history_days=5, bucket_days=7)


# --- bytes ----------------------------------------------------------------------------


def test_slots_round_trip_and_stay_small() -> None:
    state, _ = apply_slot_events(ContactSlots(), some_events(), HISTORY)
    data = encode_slots(state, 12, False)
    assert data[0] == 2
    assert decode_slots(data, 12, False) == state
    assert len(data) == 8 + 2 * 11 + 2 + 13 * state.bucket.size
    daily = [send(3, 19_000 + d, d) for d in range(365)]
    year, _ = apply_slot_events(ContactSlots(), daily, HISTORY)
    assert len(encode_slots(year, 12, False)) < 750


def test_records_round_trip() -> None:
    for record in (SendRecord(3, 19_000), SendRecord(23, -5, (1, 7, 2**40))):
        assert decode_record(encode_record(record)) == record


def test_version_1_offsets_are_read_as_their_messages_first_item() -> None:
    state, _ = apply_slot_events(ContactSlots(), some_events(), HISTORY)
    v1 = encode_slots(replace(state, applied=((0, 2, 70),)), 12, False)
    v1 = b"\x01" + v1[1:]
    assert decode_slots(v1, 12, False).applied == ((0, 2, position(70, 0)),)  # type: ignore[union-attr]
    record = encode_record(SendRecord(3, 19_000, (2, 1, 17)))
    assert decode_record(b"\x01" + record[1:]) == SendRecord(3, 19_000, (2, 1, 17 * ITEM_SPAN))
    # a re-delivered send of a version 1 value is still a replay; the next message is new
    old = decode_slots(v1, 12, False)
    assert isinstance(old, ContactSlots)
    again = SlotEvent("send", 3, 19_050, 0, 2, position(70, 0))
    assert apply_slot_events(old, [again], HISTORY)[1]["send", "replayed"] == 1
    after = SlotEvent("send", 3, 19_050, 0, 2, position(71, 0))
    assert apply_slot_events(old, [after], HISTORY)[1]["send", "applied"] == 1


def test_items_of_one_batch_message_each_count() -> None:
    events = [SlotEvent("send", 3, 19_050, 0, 0, position(9, place)) for place in range(5)]
    state, counted = apply_slot_events(ContactSlots(), events, HISTORY)
    assert counted["send", "applied"] == 5 and int(state.sends.sum()) == 5
    assert apply_slot_events(state, events, HISTORY)[1]["send", "replayed"] == 5
    with pytest.raises(ValueError):
        position(9, ITEM_SPAN)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x07" + bytes(20), "unknown_version"),
        (b"\x01\x0c", "truncated"),
    ],
)
def test_bad_bytes_give_a_bounded_reason(data: bytes, reason: str) -> None:
    assert decode_slots(data, 12, False) == CodecError(reason)  # type: ignore[arg-type]
    assert decode_record(data[:1] if reason == "truncated" else data) == CodecError(reason)  # type: ignore[arg-type]


def test_truncated_layout_changed_and_corrupt_slots() -> None:
    state, _ = apply_slot_events(ContactSlots(), some_events(), HISTORY)
    data = encode_slots(state, 12, False)
    assert decode_slots(data[:-1], 12, False) == CodecError("truncated")
    assert decode_slots(data, 24, False) == CodecError("layout_changed")
    assert decode_slots(data, 12, True) == CodecError("layout_changed")
    bad = bytearray(data)
    bad[-4:] = (10**6).to_bytes(4, "little")  # more responses than sends
    assert decode_slots(bytes(bad), 12, False) == CodecError("corrupt")


def test_the_batch_decoder_equals_the_one_by_one_window() -> None:
    rng = np.random.default_rng(5)
    states, blobs = [], []
    for _ in range(30):
        events = [
            send(int(c), 19_000 + int(d), i)
            for i, (c, d) in enumerate(
                zip(rng.integers(0, 24, 40), rng.integers(0, 500, 40), strict=True)
            )
        ]
        state, _ = apply_slot_events(ContactSlots(), events, HISTORY)
        states.append(state)
        blobs.append(encode_slots(state, 12, True))
    blobs[3] = None  # a new contact
    blobs[4] = b"\x09junk"
    blobs[5] = encode_slots(states[5], 12, False)  # written before weekends were split
    bad = bytearray(blobs[6])  # type: ignore[arg-type]
    bad[-4:] = (10**6).to_bytes(4, "little")  # more responses than sends
    blobs[6] = bytes(bad)
    today = rng.integers(19_400, 19_600, 30)
    counts = window_counts(blobs, today, 12, True, HISTORY)
    assert counts.status[:7] == (
        None,
        None,
        None,
        None,
        "unknown_version",
        "layout_changed",
        "corrupt",
    )
    assert set(counts.status[7:]) == {None}
    for j, state in enumerate(states):
        ignored = j in (3, 4, 5, 6)
        expected = np.zeros(24) if ignored else state.window(24, HISTORY, int(today[j]))[0]
        assert counts.sends[j].tolist() == expected.tolist()
        assert (
            ignored
            or counts.responses[j].tolist() == state.window(24, HISTORY, int(today[j]))[1].tolist()
        )


def _summed_by_pairs(
    bucket: np.ndarray, cell: np.ndarray, sends: np.ndarray, responses: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The sum per (bucket, cell) as it was computed: np.unique over the pairs."""
    pairs, which = np.unique(np.stack([bucket, cell], axis=1), axis=0, return_inverse=True)
    which = which.reshape(-1)
    n = pairs.shape[0]
    s = np.bincount(which, weights=sends, minlength=n).astype(np.int64)
    r = np.bincount(which, weights=responses, minlength=n).astype(np.int64)
    return pairs[:, 0].copy(), pairs[:, 1].copy(), s, r


@pytest.mark.parametrize("seed", range(12))
def test_summing_per_bucket_and_cell_matches_sorting_the_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (1, 2, SMALL - 1, SMALL, SMALL + 1, 500):
        bucket = rng.integers(-3, 4, n) + rng.choice([0, 2900, 1 << 40])
        cell = rng.integers(-2, 30, n) if seed % 3 else rng.integers(0, 24, n)
        if seed == 5:
            bucket[0], cell[0] = -(1 << 61), 1 << 20  # a combined key would overflow
        sends, responses = rng.integers(0, 9, n), rng.integers(-4, 9, n)
        got = _summed(bucket, cell, sends, responses)
        want = _summed_by_pairs(bucket, cell, sends, responses)
        assert len(got) == 4
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.int64 and g.flags.c_contiguous
            assert np.array_equal(g, w), (n, seed)
    empty = np.empty(0, dtype=np.int64)
    assert all(a.size == 0 and a.dtype == np.int64 for a in _summed(empty, empty, empty, empty))


def test_a_slot_delta_is_sorted_by_bucket_and_cell_and_keeps_only_differences() -> None:
    a = ContactSlots(
        np.array([5, 5, 7], dtype=np.int64), np.array([1, 3, 0], dtype=np.int64),
        np.array([2, 1, 4], dtype=np.int64), np.array([1, 0, 2], dtype=np.int64),
    )  # fmt: skip
    b = ContactSlots(
        np.array([4, 5, 7], dtype=np.int64), np.array([9, 3, 0], dtype=np.int64),
        np.array([1, 1, 3], dtype=np.int64), np.array([0, 0, 2], dtype=np.int64),
    )  # fmt: skip
    d = slot_delta(a, b)
    assert d.bucket.tolist() == [4, 5, 7] and d.cell.tolist() == [9, 1, 0]
    assert d.sends.tolist() == [-1, 2, 1] and d.responses.tolist() == [0, 1, 0]


@pytest.mark.parametrize("seed", range(8))
def test_merging_adds_into_a_value_matches_sorting_the_pairs(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for n, k in ((0, 1), (3, 2), (SMALL - 2, 2), (SMALL, 1), (200, 5)):
        b, c, s, r = _summed_by_pairs(
            rng.integers(2890, 2910, n), rng.integers(0, 24, n),
            rng.integers(1, 5, n), rng.integers(0, 3, n),
        )  # fmt: skip
        state = ContactSlots(b, c, s, r, ((0, 0, 7),), 20_300)
        adds = {(int(rng.integers(2885, 2912)), int(rng.integers(0, 24))): [1, 0] for _ in range(k)}
        first = int(rng.integers(2888, 2900))
        got = _merged(state, adds, first, 20_310)
        bucket = np.concatenate([b, np.array([x for x, _ in adds], dtype=np.int64)])
        cell = np.concatenate([c, np.array([y for _, y in adds], dtype=np.int64)])
        sends = np.concatenate([s, np.array([v[0] for v in adds.values()], dtype=np.int64)])
        resp = np.concatenate([r, np.array([v[1] for v in adds.values()], dtype=np.int64)])
        keep = bucket >= first
        want = _summed_by_pairs(bucket[keep], cell[keep], sends[keep], resp[keep])
        assert got.applied == ((0, 0, 7),) and got.latest_day == 20_310
        for g, w in zip((got.bucket, got.cell, got.sends, got.responses), want, strict=True):
            assert g.dtype == np.int64 and np.array_equal(g, w), (seed, n, k)
