"""The state the handlers keep outside the stats table, as small protocols: per-contact
cooldowns and the `event_id` dedup set; and in-process stores that implement them for
tests and for a demo without Redis (`CS_COOLDOWN_STORE=memory`).

`stream.adapters.redis_store` implements the same protocols on Redis."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

Pair = tuple[str, str]  # (account_id, contact_id)


Sent = tuple[str, str, str, float, float]  # (account_id, contact_id, creative_id, time, ttl)


class CooldownStore(Protocol):
    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        """Per (account, contact): creative_id -> time of its last send."""

    async def record(self, sends: Sequence[Sent]) -> None:
        """Remember sends; each entry lives `ttl` seconds (the account's cooldown)."""


class DedupStore(Protocol):
    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        """True where the event id of that kind was first seen at another position."""


class RecordsLost(Exception):
    """The dedup store no longer holds its records of these source topic-partitions
    ("topic:partition"): it restarted empty, was flushed, or never had them. Raised by a
    store that marks the partitions it holds (`RestorableDedup`) before it answers."""

    def __init__(self, partitions: Sequence[str]) -> None:
        super().__init__(", ".join(partitions))
        self.partitions = tuple(partitions)


DedupRow = tuple[str, str, str, str, float]  # (account_id, kind, event_id, position, ttl)


class RestorableDedup(DedupStore, Protocol):
    """A dedup store that can tell when it lost its records, and be refilled.

    `duplicates` raises `RecordsLost` for a batch with a partition whose mark is missing
    (the batch's own writes may have been made). Refilling one partition: `begin` leaves
    a token, `forget` removes what the lost batch wrote, `restore` writes first positions
    in offset order (kept where a key exists), and `finish` marks the partition only if
    the token is still there, so a store that restarted mid-refill is not marked."""

    async def begin(self, partition: str) -> str: ...

    async def forget(self, keys: Sequence[tuple[str, str, str]]) -> None: ...

    async def restore(self, rows: Sequence[DedupRow]) -> None: ...

    async def finish(self, partition: str, token: str) -> bool: ...


class MemoryCooldowns:
    """In-process cooldowns for a demo without Redis: lost on restart, one worker only."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, dict[str, float]]] = {}

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        now = time.monotonic()
        out = []
        for account_id, contact in pairs:
            entry = self._data.get(cooldown_key(account_id, contact))
            out.append(dict(entry[1]) if entry and entry[0] > now else {})
        return out

    async def record(self, sends: Sequence[Sent]) -> None:
        for account_id, contact, creative, when, ttl in sends:
            key = cooldown_key(account_id, contact)
            _, current = self._data.get(key, (0.0, {}))
            self._data[key] = (time.monotonic() + ttl, {**current, creative: when})


class MemoryDedup:
    """In-process dedup for a demo without Redis."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        out = []
        rows = zip(account_ids, kinds, event_ids, positions, strict=True)
        for account, kind, event_id, position in rows:
            first = self._seen.setdefault(dedup_key(account, kind, event_id), position)
            out.append(first != position)
        return out


def cooldown_key(account_id: str, contact_id: str, prefix: str = "") -> str:
    return f"{prefix}cd:{account_id}:{contact_id}"


def dedup_key(account_id: str, kind: str, event_id: str, prefix: str = "") -> str:
    """`prefix` is `CS_REDIS_KEY_PREFIX`: deployments sharing a Redis keep apart."""
    return f"{prefix}dd:{account_id}:{kind}:{event_id}"
