"""The bytes a profile is stored as (one Redis value per contact), and the batch decode.

Layout, version 1: one packed little-endian record of `RECORD.itemsize` bytes (numpy
structured dtype `RECORD`), first byte the format version: the totals; the sources, the
recent events and the clicked creatives as arrays of records, used slots first; the
click-hour counts; the custom slots (0 where missing, with a bit mask of those set).
Unused slots are zero, so the encoding drops the record's trailing zero bytes and the
decoder pads them back: an empty profile takes 40 bytes, one with a single send 133,
a full one `SIZE`, and every value round-trips exactly.

Fixed offsets are what make a batch cheap: `records(blobs)` pads and joins a batch's
values and reads them with one `np.frombuffer`, so features for a thousand contacts are
a few vectorized operations (`features.contact_features`), with no per-contact parsing.
A value that is not a version-1 record decodes as an empty profile with a named reason.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.model.profile import (
    HOURS,
    MAX_CLICKED,
    MAX_CUSTOM,
    MAX_RECENT,
    MAX_SOURCES,
    ContactProfile,
    Fields,
    Recent,
    profile_fields,
)

VERSION = 1
DecodeReason = Literal["unknown_version", "too_long", "corrupt"]
DECODE_REASONS: tuple[DecodeReason, ...] = get_args(DecodeReason)

SOURCE = np.dtype([("key", "<u4"), ("offset", "<i8"), ("time", "<f8")])
EVENT = np.dtype([("kind", "u1"), ("creative", "<u4"), ("time", "<f8"), ("revenue", "<i8")])
CLICKED = np.dtype([("key", "<u4"), ("second", "<u4")])
RECORD = np.dtype(
    [
        ("version", "u1"), ("n_recent", "u1"), ("n_clicked", "u1"), ("n_sources", "u1"),
        ("sends", "<u4"), ("clicks", "<u4"), ("conversions", "<u4"),
        ("revenue_micros", "<i8"), ("last_click", "<f8"), ("settled_until", "<f8"),
        ("sources", SOURCE, (MAX_SOURCES,)),
        ("recent", EVENT, (MAX_RECENT,)),
        ("clicked", CLICKED, (MAX_CLICKED,)),
        ("click_hours", "<u2", (HOURS,)),
        ("custom_set", "u1"), ("custom", "<f8", (MAX_CUSTOM,)),
    ]
)  # fmt: skip
SIZE = RECORD.itemsize
Records = NDArray[Any]


# The same layout as a struct format, for packing one profile without numpy overhead.
_PACK = struct.Struct(
    f"<4B3Iq2d{'Iqd' * MAX_SOURCES}{'BIdq' * MAX_RECENT}{'II' * MAX_CLICKED}{HOURS}HB{MAX_CUSTOM}d"
)
assert _PACK.size == SIZE
# Its parts, for reading and writing only the used slots.
_HEAD = struct.Struct("<4B3Iq2d")
_SOURCE, _EVENT, _CLICK = struct.Struct("<Iqd"), struct.Struct("<BIdq"), struct.Struct("<II")
_EVENTS = struct.Struct("<" + "BIdq" * MAX_RECENT)
_TAIL = struct.Struct(f"<{HOURS}HB{MAX_CUSTOM}d")
_EVENT_AT = _HEAD.size + MAX_SOURCES * _SOURCE.size
_CLICKED_AT = _EVENT_AT + MAX_RECENT * _EVENT.size
_TAIL_AT = _CLICKED_AT + MAX_CLICKED * _CLICK.size
assert _TAIL_AT + _TAIL.size == SIZE


_ZEROS = (0,) * (4 * max(MAX_RECENT, MAX_CLICKED, MAX_SOURCES))


def to_bytes(p: ContactProfile) -> bytes:
    """The full record of the profile (`SIZE` bytes)."""
    return fields_to_bytes(profile_fields(p))


def encode_fields(fields: Fields) -> bytes:
    """`encode` of the profile with these fields."""
    return fields_to_bytes(fields).rstrip(b"\0")


def fields_to_bytes(fields: Fields) -> bytes:
    """`to_bytes` of the profile with these fields (`profile.profile_fields`)."""
    (
        sends, clicks, conversions, revenue, last_click, settled,
        clicked, hours, recent, sources, custom,
    ) = fields  # fmt: skip
    nr, nc, ns, nx = len(recent), len(clicked), len(sources), len(custom)
    if nr > MAX_RECENT or nc > MAX_CLICKED or ns > MAX_SOURCES or nx > MAX_CUSTOM:
        return _to_bytes(ContactProfile(*fields))  # which refuses it, as struct does
    layout = _LAYOUTS.get((ns, nr, nc, nx))
    if layout is None:
        layout = _LAYOUTS[ns, nr, nc, nx] = _layout(ns, nr, nc, nx)
    mask = 0
    for i, c in enumerate(custom):
        if c is not None:
            mask |= 1 << i
    return layout.pack(
        VERSION, nr, nc, ns, sends, clicks, conversions, revenue, last_click, settled,
        *_chain(sources), *_chain(recent), *_chain(clicked),
        *hours, mask, *[0.0 if c is None else c for c in custom],
    )  # fmt: skip


_LAYOUTS: dict[tuple[int, int, int, int], struct.Struct] = {}
_chain = itertools.chain.from_iterable


def _layout(ns: int, nr: int, nc: int, nx: int) -> struct.Struct:
    """`_PACK` with the used slots only, the others zero pad bytes."""
    return struct.Struct(
        f"<4B3Iq2d{'Iqd' * ns}{(MAX_SOURCES - ns) * _SOURCE.size}x"
        f"{'BIdq' * nr}{(MAX_RECENT - nr) * _EVENT.size}x"
        f"{'II' * nc}{(MAX_CLICKED - nc) * _CLICK.size}x"
        f"{HOURS}HB{'d' * nx}{(MAX_CUSTOM - nx) * 8}x"
    )


def _to_bytes(p: ContactProfile) -> bytes:
    """`to_bytes` with every slot packed, used or not."""
    recent, clicked, sources, custom = p.recent, p.clicked, p.sources, p.custom
    nr, nc, ns = len(recent), len(clicked), len(sources)
    mask = sum(1 << i for i, c in enumerate(custom) if c is not None)
    values = [0.0 if c is None else c for c in custom]
    return _PACK.pack(
        VERSION, nr, nc, ns,
        p.sends, p.clicks, p.conversions, p.revenue_micros, p.last_click, p.settled_until,
        *[x for s in sources for x in s], *_ZEROS[: 3 * (MAX_SOURCES - ns)],
        *[x for e in recent for x in e], *_ZEROS[: 4 * (MAX_RECENT - nr)],
        *[x for c in clicked for x in c], *_ZEROS[: 2 * (MAX_CLICKED - nc)],
        *p.click_hours, mask, *values, *_ZEROS[: MAX_CUSTOM - len(custom)],
    )  # fmt: skip


_EMPTY_BYTES = to_bytes(ContactProfile())


def to_record(p: ContactProfile) -> Records:
    """A one-element record array of the profile."""
    return np.frombuffer(to_bytes(p), dtype=RECORD).copy()


def encode(p: ContactProfile) -> bytes:
    """The stored bytes: the record without its trailing zero bytes."""
    return to_bytes(p).rstrip(b"\0")


def from_record(rec: Records) -> ContactProfile:
    """The profile a one-element record array (or a record's bytes) holds."""
    return _from_values(_PACK.unpack(rec.reshape(-1)[:1].tobytes()))


def _from_values(v: tuple[Any, ...]) -> ContactProfile:
    """The profile of a record's unpacked values (`_PACK`)."""
    nr, nc, ns = v[1], v[2], v[3]
    at = 10
    sources = tuple((v[at + 3 * i], v[at + 3 * i + 1], v[at + 3 * i + 2]) for i in range(ns))
    at += 3 * MAX_SOURCES
    recent = tuple(Recent(*v[at + 4 * i : at + 4 * i + 4]) for i in range(nr))
    at += 4 * MAX_RECENT
    clicked = tuple((v[at + 2 * i], v[at + 2 * i + 1]) for i in range(nc))
    at += 2 * MAX_CLICKED
    hours = tuple(v[at : at + HOURS])
    mask, values = v[at + HOURS], v[at + HOURS + 1 :]
    custom = [values[i] if mask >> i & 1 else None for i in range(MAX_CUSTOM)]
    while custom and custom[-1] is None:
        custom.pop()
    return ContactProfile(
        sends=v[4], clicks=v[5], conversions=v[6], revenue_micros=v[7], last_click=v[8],
        settled_until=v[9], clicked=clicked, click_hours=hours, recent=recent,
        sources=sources, custom=tuple(custom),
    )  # fmt: skip


_isfinite, _isnan = math.isfinite, math.isnan
_recent = functools.partial(tuple.__new__, Recent)  # Recent._make without its checks


def decode(blob: bytes) -> ContactProfile | DecodeReason:
    """The profile in `blob`, or why it is not one (`records` of one value, without
    numpy: the stream decodes one per contact and event)."""
    fields = decode_fields(blob)
    return fields if isinstance(fields, str) else ContactProfile(*fields)


def decode_fields(blob: bytes) -> Fields | DecodeReason:
    """`decode` as the profile's fields (`profile.profile_fields`)."""
    if type(blob) is not bytes or not blob or len(blob) > SIZE or blob[0] != VERSION:
        recs, reasons = records([blob])
        return reasons[0] or profile_fields(from_record(recs))
    buf = blob.ljust(SIZE, b"\0")
    head = _HEAD.unpack_from(buf)
    nr, nc, ns = head[1], head[2], head[3]
    every = _EVENTS.unpack_from(buf, _EVENT_AT)  # every slot, used or not, is checked
    tail = _TAIL.unpack_from(buf, _TAIL_AT)
    if (
        nr > MAX_RECENT
        or nc > MAX_CLICKED
        or ns > MAX_SOURCES
        or _isnan(head[8])
        or _isnan(head[9])
        or not all(map(_isfinite, every[2::4]))
        or max(every[0::4]) > 3
        or not all(map(_isfinite, tail[HOURS + 1 :]))
    ):
        return "corrupt"
    mask, values = tail[HOURS], tail[HOURS + 1 :]
    custom = [values[i] if mask >> i & 1 else None for i in range(MAX_CUSTOM)]
    while custom and custom[-1] is None:
        custom.pop()
    at = _EVENT_AT
    return (
        head[4], head[5], head[6], head[7], head[8], head[9],
        tuple(_CLICK.iter_unpack(buf[_CLICKED_AT : _CLICKED_AT + nc * _CLICK.size])),
        tail[:HOURS],
        tuple(map(_recent, _EVENT.iter_unpack(buf[at : at + nr * _EVENT.size]))),
        tuple(_SOURCE.iter_unpack(buf[_HEAD.size : _HEAD.size + ns * _SOURCE.size])),
        tuple(custom),
    )  # fmt: skip


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
    recent = recs["recent"]
    with np.errstate(invalid="ignore"):
        values_bad = (
            np.isnan(recs["last_click"])
            | np.isnan(recs["settled_until"])
            | ~np.isfinite(recent["time"]).all(axis=1)
            | (recent["kind"] > 3).any(axis=1)
            | ~np.isfinite(recs["custom"]).all(axis=1)
        )
    return np.asarray(counts_bad | values_bad)


def records_of(profiles: Sequence[ContactProfile | None]) -> Records:
    """Records of in-memory profiles (None: an empty profile)."""
    parts = [to_bytes(p) if p is not None else _EMPTY_BYTES for p in profiles]
    return np.frombuffer(b"".join(parts), dtype=RECORD).copy()


def custom_slots(recs: Records) -> NDArray[Any]:
    """(N x MAX_CUSTOM) custom values, NaN where missing."""
    bits = (recs["custom_set"][:, None] >> np.arange(MAX_CUSTOM, dtype=np.uint8)) & 1
    return np.where(bits.astype(bool), recs["custom"], np.nan)


def with_custom(recs: Records, slots: NDArray[Any]) -> Records:
    """Records whose custom slots are replaced where `slots` (N x MAX_CUSTOM, NaN: keep) is
    set: the values a request carries override the stored ones."""
    out = recs.copy()
    given = ~np.isnan(slots)
    out["custom"][given] = slots[given]
    weights = (1 << np.arange(MAX_CUSTOM)).astype(np.uint8)
    out["custom_set"] |= (given.astype(np.uint8) * weights).sum(axis=1).astype(np.uint8)
    return out


def with_slots(
    recs: Records, rows: Sequence[int], slots: Sequence[Sequence[float | None]]
) -> Records:
    """Records whose custom slots at `rows` are replaced by `slots` (None: missing), as
    `fields.to_slots` merges a request's values into the stored ones."""
    out = recs.copy()
    for row, values in zip(rows, slots, strict=True):
        padded = [*values[:MAX_CUSTOM], *[None] * (MAX_CUSTOM - len(values))]
        out["custom"][row] = [0.0 if v is None else v for v in padded]
        out["custom_set"][row] = sum(1 << i for i, v in enumerate(padded) if v is not None)
    return out
