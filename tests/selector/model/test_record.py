"""The stored bytes: exact round trip, compact, and bad values decode with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from selector.ingest import SourcedEvent
from selector.model.profile import EMPTY, ContactProfile, add_event, apply_profile_events
from selector.model.record import (
    SIZE,
    VERSION,
    custom_slots,
    decode,
    encode,
    records,
    records_of,
    with_custom,
)


def busy() -> ContactProfile:
    events = [
        SourcedEvent(k, f"c{i % 5}", 10.0 * i, 1_000_000 * (k == "conversion"), k, 0, i)
        for i, k in enumerate(["send", "click", "conversion"] * 7)
    ]
    return apply_profile_events(EMPTY.with_custom((1.5, None, 2.0)), events)[0]


@pytest.mark.parametrize("profile", [EMPTY, add_event(EMPTY, "send", "a", 5.0, 0), busy()])
def test_encode_then_decode_is_exact(profile: ContactProfile) -> None:
    blob = encode(profile)
    assert blob[0] == VERSION and len(blob) <= SIZE
    assert decode(blob) == profile


def test_a_short_history_takes_fewer_bytes() -> None:
    assert len(encode(EMPTY)) == 40
    one = apply_profile_events(EMPTY, [SourcedEvent("send", "a", 5.0, 0, "sends", 0, 1)])[0]
    assert len(encode(one)) == 133
    assert len(encode(one)) < len(encode(busy())) <= SIZE


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (bytes([9]) + bytes(10), "unknown_version"),
        (bytes([VERSION]) + bytes(SIZE), "too_long"),
        (bytes([VERSION, 200]), "corrupt"),  # 200 recent events
    ],
)
def test_bad_values_decode_as_empty_profiles_with_a_reason(blob: bytes, reason: str) -> None:
    assert decode(blob) == reason
    recs, reasons = records([encode(busy()), blob, None])
    assert reasons == [None, reason, None]
    assert recs["sends"][1] == 0 and recs["n_recent"][1] == 0
    assert decode(recs[0:1].tobytes()) == busy()


def test_records_of_profiles_match_the_decoded_bytes() -> None:
    profiles = [busy(), None, add_event(EMPTY, "click", "z", 1.0, 0)]
    direct = records_of(profiles)
    decoded, _ = records([encode(p) if p else None for p in profiles])
    assert direct.tobytes() == decoded.tobytes()


def test_request_values_override_stored_custom_slots() -> None:
    recs = records_of([busy(), busy()])
    slots = np.full((2, recs["custom"].shape[1]), np.nan)
    slots[1, 1] = 7.0
    out = custom_slots(with_custom(recs, slots))
    assert np.isnan(out[0, 1]) and out[1, 1] == 7.0 and out[1, 0] == 1.5
    assert np.isnan(custom_slots(recs)[1, 1])  # the input is not changed
