"""Compact bytes for the values the stream keeps in Redis: a contact's slot counts and the
record of each send, each starting with a version byte.

Contact slot counts, version 2 (little-endian)::

    u8 version = 1 | u8 slots | u8 flags (bit 0: weekday/weekend cells) | i32 latest day
    u8 n_applied | n_applied x (u8 source, u16 partition, i64 offset)
    u16 n_entries | n_entries x (i32 bucket, u8 cell, u32 sends, u32 responses)

13 bytes per (bucket, cell) entry: a contact sent once a day for a year, always in the
same slot, takes 53 entries (~700 bytes). Send record, version 2: u8 version, u8 cell,
i32 day, u8 claimed, and when claimed (u8 source, u16 partition, i64 offset).

The offsets are item positions (`selector.sendtime.counts.position`: the message's
offset times `ITEM_SPAN` plus the item's place in its batch message), so each event of
an `event_batch.v1` has one of its own. Version 1 stored message offsets of single
messages (the only ones then learned from), read as the positions of their first item.

Decoding never raises: bad bytes give a `CodecError` with a bounded reason. The batch
decoder turns the stored values of a whole batch of requests into the (N, cells) window
counts a decision needs, with one pass over concatenated entries.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.counts import ITEM_SPAN, ContactSlots, History, Int64Array, SendRecord

VERSION = 2
READABLE = (1, 2)  # version 1: message offsets (see the module docstring)
CodecReason = Literal["empty", "unknown_version", "truncated", "corrupt", "layout_changed"]
CODEC_REASONS: tuple[CodecReason, ...] = get_args(CodecReason)
_HEAD = struct.Struct("<BBBiB")
_APPLIED = struct.Struct("<BHq")
_COUNT = struct.Struct("<H")
_RECORD = struct.Struct("<BBiB")
ENTRY = np.dtype([("bucket", "<i4"), ("cell", "u1"), ("sends", "<u4"), ("responses", "<u4")])
_U32 = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class CodecError:
    """Why stored bytes could not be used."""

    reason: CodecReason


def encode_slots(state: ContactSlots, slots: int, split_weekends: bool) -> bytes:
    """Bytes of one contact's counts (counts beyond 2^32 - 1 saturate)."""
    head = _HEAD.pack(VERSION, slots, int(split_weekends), state.latest_day, len(state.applied))
    applied = b"".join(_APPLIED.pack(s, p, o) for s, p, o in state.applied)
    entries = np.empty(state.bucket.size, dtype=ENTRY)
    entries["bucket"] = state.bucket
    entries["cell"] = state.cell
    entries["sends"] = np.minimum(state.sends, _U32)
    entries["responses"] = np.minimum(state.responses, _U32)
    return head + applied + _COUNT.pack(entries.size) + entries.tobytes()


def _header(data: bytes) -> tuple[int, int, int, tuple[tuple[int, int, int], ...], int] | None:
    """(slots, flags, latest day, applied, offset of the entries) or None if truncated."""
    if len(data) < _HEAD.size:
        return None
    _, slots, flags, latest, n_applied = _HEAD.unpack_from(data, 0)
    at = _HEAD.size
    if len(data) < at + n_applied * _APPLIED.size + _COUNT.size:
        return None
    applied = tuple(
        _legacy(data[0], _APPLIED.unpack_from(data, at + i * _APPLIED.size))
        for i in range(n_applied)
    )
    return slots, flags, latest, applied, at + n_applied * _APPLIED.size


def _legacy(version: int, applied: tuple[int, int, int]) -> tuple[int, int, int]:
    """A stored (source, partition, offset) as a position: version 1 held offsets."""
    source, partition, offset = applied
    return (source, partition, offset * ITEM_SPAN) if version == 1 else applied


def _parse(
    data: bytes, slots: int, split_weekends: bool
) -> tuple[NDArray[np.void], int, tuple[tuple[int, int, int], ...]] | CodecError:
    """The entries (a read-only view), latest day and applied offsets of stored bytes."""
    if not data:
        return CodecError("empty")
    if data[0] not in READABLE:
        return CodecError("unknown_version")
    head = _header(data)
    if head is None:
        return CodecError("truncated")
    stored_slots, flags, latest, applied, at = head
    (n,) = _COUNT.unpack_from(data, at)
    at += _COUNT.size
    if len(data) != at + n * ENTRY.itemsize:
        return CodecError("truncated")
    if (stored_slots, flags & 1) != (slots, int(split_weekends)):
        return CodecError("layout_changed")
    entries = np.frombuffer(data, dtype=ENTRY, count=n, offset=at)
    cells = slots * (2 if split_weekends else 1)
    if (entries["cell"] >= cells).any() or (entries["responses"] > entries["sends"]).any():
        return CodecError("corrupt")
    return entries, latest, applied


def decode_slots(data: bytes, slots: int, split_weekends: bool) -> ContactSlots | CodecError:
    """The counts stored in `data`, or why they cannot be used (`layout_changed`: they
    were written for another slot count or weekend setting)."""
    parsed = _parse(data, slots, split_weekends)
    if isinstance(parsed, CodecError):
        return parsed
    entries, latest, applied = parsed
    return ContactSlots(
        entries["bucket"].astype(np.int64),
        entries["cell"].astype(np.int64),
        entries["sends"].astype(np.int64),
        entries["responses"].astype(np.int64),
        applied,
        latest,
    )


def encode_record(record: SendRecord) -> bytes:
    head = _RECORD.pack(VERSION, record.cell, record.day, record.claimed_by is not None)
    return head + (_APPLIED.pack(*record.claimed_by) if record.claimed_by else b"")


def decode_record(data: bytes) -> SendRecord | CodecError:
    if not data:
        return CodecError("empty")
    if data[0] not in READABLE:
        return CodecError("unknown_version")
    if len(data) < _RECORD.size:
        return CodecError("truncated")
    _, cell, day, claimed = _RECORD.unpack_from(data, 0)
    if not claimed:
        return SendRecord(cell, day) if len(data) == _RECORD.size else CodecError("corrupt")
    if len(data) != _RECORD.size + _APPLIED.size:
        return CodecError("truncated")
    return SendRecord(cell, day, _legacy(data[0], _APPLIED.unpack_from(data, _RECORD.size)))


@dataclass(frozen=True, slots=True, eq=False)
class WindowCounts:
    """(N, cells) sends and responses of a batch, and each row's status: None when its
    stored value was used (or absent: a new contact), else why it was ignored."""

    sends: Int64Array
    responses: Int64Array
    status: tuple[CodecReason | None, ...]


def _framing(data: bytes, slots: int, flags: int) -> tuple[int, int, int] | CodecReason:
    """(latest day, offset of the entries, entry count), checking everything but the
    entries themselves (the batch decoder checks those for all rows at once)."""
    if not data:
        return "empty"
    if data[0] not in READABLE:
        return "unknown_version"
    if len(data) < _HEAD.size:
        return "truncated"
    _, stored_slots, stored_flags, latest, n_applied = _HEAD.unpack_from(data, 0)
    at = _HEAD.size + n_applied * _APPLIED.size
    if len(data) < at + _COUNT.size:
        return "truncated"
    (count,) = _COUNT.unpack_from(data, at)
    at += _COUNT.size
    if len(data) != at + count * ENTRY.itemsize:
        return "truncated"
    if (stored_slots, stored_flags & 1) != (slots, flags):
        return "layout_changed"
    return latest, at, count


def window_counts(
    blobs: Sequence[bytes | None],
    today: Int64Array,
    slots: int,
    split_weekends: bool,
    history: History,
) -> WindowCounts:
    """Decode a batch of stored values into window counts as of each row's local day
    `today` (see `ContactSlots.window`); unusable values count as no history. The
    entries of all rows are decoded and checked in one pass."""
    cells = slots * (2 if split_weekends else 1)
    n = len(blobs)
    status: list[CodecReason | None] = [None] * n
    chunks: list[bytes] = []
    rows: list[int] = []
    counts: list[int] = []
    first: list[int] = []
    for i, data in enumerate(blobs):
        if data is None:
            continue
        framing = _framing(data, slots, int(split_weekends))
        if isinstance(framing, str):
            status[i] = framing
            continue
        latest, at, count = framing
        chunks.append(data[at:])
        rows.append(i)
        counts.append(count)
        first.append(history.first_bucket(max(int(today[i]), latest)))
    sends = np.zeros(n * cells, dtype=np.int64)
    responses = np.zeros(n * cells, dtype=np.int64)
    if chunks:
        entries = np.frombuffer(b"".join(chunks), dtype=ENTRY)
        row = np.repeat(np.asarray(rows, dtype=np.int64), counts)
        bad = (entries["cell"] >= cells) | (entries["responses"] > entries["sends"])
        corrupt = np.unique(row[bad])
        for i in corrupt.tolist():
            status[i] = "corrupt"
        keep = entries["bucket"] >= np.repeat(np.asarray(first, dtype=np.int64), counts)
        if corrupt.size:
            keep &= ~np.isin(row, corrupt)
        index = row[keep] * cells + entries["cell"][keep]
        sends += np.bincount(index, weights=entries["sends"][keep], minlength=n * cells).astype(
            np.int64
        )
        responses += np.bincount(
            index, weights=entries["responses"][keep], minlength=n * cells
        ).astype(np.int64)
    return WindowCounts(sends.reshape(n, cells), responses.reshape(n, cells), tuple(status))
