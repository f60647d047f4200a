"""The bytes a profile is stored as (one Redis value per contact), and the batch decode.

Layout, version 1: one packed little-endian record of `RECORD.itemsize` bytes (numpy
structured dtype `RECORD`), first byte the format version. Unused slots are zero, and
the recent events' arrays come last with their zero tails, so the encoding drops the
record's trailing zero bytes and the decoder pads them back: a profile with a short
history takes fewer bytes than the maximum, and the value round-trips exactly.

Fixed offsets are what make a batch cheap: `records(blobs)` pads and joins a batch's
values and reads them with one `np.frombuffer`, so features for a thousand contacts are
a few vectorized operations (`features.contact_features`), with no per-contact parsing.
A value that is not a version-1 record decodes as an empty profile with a named reason.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.model.profile import (
    MAX_CLICKED,
    MAX_CUSTOM,
    MAX_RECENT,
    MAX_SOURCES,
    ContactProfile,
    Recent,
)

VERSION = 1
DecodeReason = Literal["unknown_version", "too_long", "corrupt"]
DECODE_REASONS: tuple[DecodeReason, ...] = get_args(DecodeReason)

RECORD = np.dtype(
    [
        ("version", "u1"), ("n_recent", "u1"), ("n_clicked", "u1"), ("n_sources", "u1"),
        ("sends", "<u4"), ("clicks", "<u4"), ("conversions", "<u4"),
        ("revenue_micros", "<i8"), ("last_click", "<f8"), ("hour_cos", "<f8"),
        ("hour_sin", "<f8"), ("settled_until", "<f8"),
        ("custom", "<f8", (MAX_CUSTOM,)),
        ("source_key", "<u4", (MAX_SOURCES,)), ("source_offset", "<i8", (MAX_SOURCES,)),
        ("clicked", "<u4", (MAX_CLICKED,)),
        ("recent_kind", "u1", (MAX_RECENT,)), ("recent_creative", "<u4", (MAX_RECENT,)),
        ("recent_time", "<f8", (MAX_RECENT,)), ("recent_revenue", "<i8", (MAX_RECENT,)),
    ]
)  # fmt: skip
SIZE = RECORD.itemsize
Records = NDArray[Any]


# The same layout as a struct format, for packing one profile without numpy overhead.
_PACK = struct.Struct(
    f"<4B3Iq4d{MAX_CUSTOM}d{MAX_SOURCES}I{MAX_SOURCES}q{MAX_CLICKED}I"
    f"{MAX_RECENT}B{MAX_RECENT}I{MAX_RECENT}d{MAX_RECENT}q"
)
assert _PACK.size == SIZE


_ZEROS = (0,) * max(MAX_RECENT, MAX_CLICKED, MAX_SOURCES)
_NANS = (math.nan,) * MAX_CUSTOM


def to_bytes(p: ContactProfile) -> bytes:
    """The full record of the profile (`SIZE` bytes)."""
    recent, clicked, sources, custom = p.recent, p.clicked, p.sources, p.custom
    nr, ns = len(recent), len(sources)
    kinds, creatives, times, revenues = zip(*recent, strict=True) if nr else ((), (), (), ())
    keys, offsets = zip(*sources, strict=True) if ns else ((), ())
    tail_r, tail_s = _ZEROS[: MAX_RECENT - nr], _ZEROS[: MAX_SOURCES - ns]
    return _PACK.pack(
        VERSION, nr, len(clicked), ns,
        p.sends, p.clicks, p.conversions, p.revenue_micros,
        p.last_click, p.hour_cos, p.hour_sin, p.settled_until,
        *[math.nan if c is None else c for c in custom], *_NANS[len(custom) :],
        *keys, *tail_s, *offsets, *tail_s,
        *clicked, *_ZEROS[: MAX_CLICKED - len(clicked)],
        *kinds, *tail_r, *creatives, *tail_r, *times, *tail_r, *revenues, *tail_r,
    )  # fmt: skip


_EMPTY_BYTES = to_bytes(ContactProfile())


def to_record(p: ContactProfile) -> Records:
    """A one-element record array of the profile."""
    return np.frombuffer(to_bytes(p), dtype=RECORD).copy()


def encode(p: ContactProfile) -> bytes:
    """The stored bytes: the record without its trailing zero bytes."""
    return to_bytes(p).rstrip(b"\0")


def from_record(rec: Records) -> ContactProfile:
    r = rec.reshape(-1)[0]
    nr, nc, ns = int(r["n_recent"]), int(r["n_clicked"]), int(r["n_sources"])
    return ContactProfile(
        sends=int(r["sends"]),
        clicks=int(r["clicks"]),
        conversions=int(r["conversions"]),
        revenue_micros=int(r["revenue_micros"]),
        last_click=float(r["last_click"]),
        hour_cos=float(r["hour_cos"]),
        hour_sin=float(r["hour_sin"]),
        settled_until=float(r["settled_until"]),
        clicked=tuple(int(c) for c in r["clicked"][:nc]),
        recent=tuple(
            Recent(
                int(r["recent_kind"][i]),
                int(r["recent_creative"][i]),
                float(r["recent_time"][i]),
                int(r["recent_revenue"][i]),
            )
            for i in range(nr)
        ),
        sources=tuple((int(r["source_key"][i]), int(r["source_offset"][i])) for i in range(ns)),
        custom=_custom(r),
    )


def _custom(r: Any) -> tuple[float | None, ...]:
    """Custom slots up to the last one set (NaN in the record, None in the profile)."""
    values = [None if math.isnan(c) else float(c) for c in r["custom"]]
    while values and values[-1] is None:
        values.pop()
    return tuple(values)


def decode(blob: bytes) -> ContactProfile | DecodeReason:
    """The profile in `blob`, or why it is not one."""
    recs, reasons = records([blob])
    return reasons[0] or from_record(recs)


def records(
    blobs: Sequence[bytes | None],
) -> tuple[Records, list[DecodeReason | None]]:
    """Decode a batch of stored values (None: no profile yet) into an (N,) record array;
    values that cannot be read become empty profiles, with their reason."""
    reasons: list[DecodeReason | None] = [None] * len(blobs)
    padded = []
    for i, blob in enumerate(blobs):
        if not blob:
            padded.append(_EMPTY_BYTES)
        elif len(blob) > SIZE:
            reasons[i] = "too_long"
            padded.append(_EMPTY_BYTES)
        elif blob[0] != VERSION:
            reasons[i] = "unknown_version"
            padded.append(_EMPTY_BYTES)
        else:
            padded.append(blob.ljust(SIZE, b"\0"))
    recs = np.frombuffer(b"".join(padded), dtype=RECORD).copy()
    bad = _corrupt(recs)
    if bad.any():
        recs[bad] = np.frombuffer(_EMPTY_BYTES, dtype=RECORD)[0]
        for bad_row in np.flatnonzero(bad).tolist():
            reasons[bad_row] = "corrupt"
    return recs, reasons


def _corrupt(recs: Records) -> NDArray[np.bool_]:
    counts_bad = (
        (recs["n_recent"] > MAX_RECENT)
        | (recs["n_clicked"] > MAX_CLICKED)
        | (recs["n_sources"] > MAX_SOURCES)
    )
    times = recs["recent_time"]
    with np.errstate(invalid="ignore"):
        values_bad = (
            ~np.isfinite(recs["hour_cos"])
            | ~np.isfinite(recs["hour_sin"])
            | np.isnan(recs["last_click"])
            | np.isnan(recs["settled_until"])
            | ~np.isfinite(times).all(axis=1)
            | (recs["recent_kind"] > 3).any(axis=1)
        )
    return np.asarray(counts_bad | values_bad)


def records_of(profiles: Sequence[ContactProfile | None]) -> Records:
    """Records of in-memory profiles (None: an empty profile)."""
    parts = [to_bytes(p) if p is not None else _EMPTY_BYTES for p in profiles]
    return np.frombuffer(b"".join(parts), dtype=RECORD).copy()


def with_custom(recs: Records, slots: NDArray[Any]) -> Records:
    """Records whose custom slots are replaced where `slots` (N x MAX_CUSTOM, NaN: keep) is
    set: the values a request carries override the stored ones."""
    out = recs.copy()
    given = ~np.isnan(slots)
    out["custom"][given] = slots[given]
    return out
