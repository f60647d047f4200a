"""The send-time state the handlers keep outside Kafka, as a small protocol, and an
in-process store that implements it for tests and for a worker without Redis.

Three kinds of values, each keyed by account (`stream.adapters.redis_sendtime` puts
`CS_REDIS_KEY_PREFIX` before every key):

- `st:slots:{account}:{contact}`: the contact's slot counts
  (`selector.sendtime.encode_slots`), with the highest offset applied per source
  topic-partition, so a re-delivered send or click changes nothing;
- `st:send:{account}:{send event id}`: the cell and local day a send went out in, and
  which click claimed it (`selector.sendtime.encode_record`), kept as long as clicks are
  attributed (`CS_DEDUP_TTL_SECONDS`); a second send with the same event id at another
  offset finds it and is a duplicate;
- `st:zone:{account}:{contact}`: the zone the contact's last send time was decided in,
  which the learner reads a send's local slot in;
- `st:early:{account}:{send event id}`: the position of a click read before its send
  (topics are not ordered with each other), counted when the send arrives.

A learning batch's writes (slot counts and send records together) are one transaction,
so no crash can leave a send counted without its record, or a click's claim stored
without its count.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from selector.sendtime.counts import ITEM_SPAN

Pair = tuple[str, str]  # (account_id, contact_id)
SendKey = tuple[str, str]  # (account_id, send event id)
Blob = bytes | None


_EARLY = struct.Struct("<BHq")  # version 2, partition, item position
_EARLY_V1 = struct.Struct("<Hq")  # partition, offset of a single message


def encode_early(partition: int, position: int) -> bytes:
    """The position of a click read before its send (`selector.sendtime.counts.position`)."""
    return _EARLY.pack(2, partition, position)


def decode_early(data: bytes | None) -> tuple[int, int] | None:
    """The stored (partition, position), or None (absent or unreadable); a version 1
    value's offset is read as its message's first item."""
    if data is not None and len(data) == _EARLY_V1.size:
        partition, offset = _EARLY_V1.unpack(data)
        return int(partition), int(offset) * ITEM_SPAN
    if data is None or len(data) != _EARLY.size or data[0] != 2:
        return None
    _, partition, at = _EARLY.unpack(data)
    return int(partition), int(at)


@dataclass(frozen=True, slots=True)
class Learned:
    """What one learning batch read: per contact its slot counts and zone, per send key
    its record and the early click waiting for it."""

    slots: list[Blob]
    zones: list[Blob]
    records: list[Blob]
    early: list[Blob]


@dataclass(frozen=True, slots=True)
class Changes:
    """What one learning batch writes, all together: slot counts, send records, early
    clicks to keep and early clicks counted (deleted)."""

    slots: Mapping[Pair, bytes] = field(default_factory=dict)
    sends: Mapping[SendKey, bytes] = field(default_factory=dict)
    early: Mapping[SendKey, bytes] = field(default_factory=dict)
    counted: Sequence[SendKey] = ()

    def __bool__(self) -> bool:
        return bool(self.slots or self.sends or self.early or self.counted)


class SendTimeStore(Protocol):
    async def slots(self, pairs: Sequence[Pair]) -> list[Blob]:
        """The stored slot counts of each contact (None: none yet)."""

    async def for_learning(self, pairs: Sequence[Pair], sends: Sequence[SendKey]) -> Learned:
        """Slot counts and zones of `pairs`, records and early clicks of `sends`, in one
        round trip."""

    async def remember_zones(self, rows: Sequence[tuple[str, str, str]], ttl: int) -> None:
        """(account, contact, zone name) each, kept `ttl` seconds."""

    async def write(self, changes: Changes, send_ttl: int) -> None:
        """Store a batch's changes atomically (send records and early clicks expire)."""


def slots_key(account_id: str, contact_id: str, prefix: str = "") -> str:
    return f"{prefix}st:slots:{account_id}:{contact_id}"


def zone_key(account_id: str, contact_id: str, prefix: str = "") -> str:
    return f"{prefix}st:zone:{account_id}:{contact_id}"


def send_key(account_id: str, event_id: str, prefix: str = "") -> str:
    return f"{prefix}st:send:{account_id}:{event_id}"


def early_key(account_id: str, event_id: str, prefix: str = "") -> str:
    return f"{prefix}st:early:{account_id}:{event_id}"


class MemorySendTimeStore:
    """In-process send-time state: lost on restart, one worker only (expiry not kept)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def slots(self, pairs: Sequence[Pair]) -> list[Blob]:
        return [self.data.get(slots_key(a, c)) for a, c in pairs]

    async def for_learning(self, pairs: Sequence[Pair], sends: Sequence[SendKey]) -> Learned:
        return Learned(
            [self.data.get(slots_key(a, c)) for a, c in pairs],
            [self.data.get(zone_key(a, c)) for a, c in pairs],
            [self.data.get(send_key(a, e)) for a, e in sends],
            [self.data.get(early_key(a, e)) for a, e in sends],
        )

    async def remember_zones(self, rows: Sequence[tuple[str, str, str]], ttl: int) -> None:
        for account, contact, zone in rows:
            self.data[zone_key(account, contact)] = zone.encode()

    async def write(self, changes: Changes, send_ttl: int) -> None:
        for (account, contact), value in changes.slots.items():
            self.data[slots_key(account, contact)] = value
        for (account, event_id), value in changes.sends.items():
            self.data[send_key(account, event_id)] = value
        for (account, event_id), value in changes.early.items():
            self.data[early_key(account, event_id)] = value
        for account, event_id in changes.counted:
            self.data.pop(early_key(account, event_id), None)
