"""Which events are already in the target topics, so a replay does not publish them again.

Redis drops a re-published `event_id` only while its dedup record lives
(`CS_DEDUP_TTL_SECONDS`). The topics themselves remember longer: before publishing, a
replay reads the event topics' partitions that hold the replayed accounts (keys are
account ids, so an account lives in one partition of each topic) and indexes the
`(account_id, kind, event_id)` of every record there, the key the stats agent and the
daily job dedup by (the kind is the topic's: a click and a send may share an `event_id`
and both count). An input event found in the index is skipped and counted as `present`;
one published by this run is added, so an event twice in the input goes once.

Cost: one read of those partitions from their first retained offset to their current end,
keeping only the replayed accounts' records: about as long as a consumer takes to read
them, and 16 bytes per indexed event (a 64-bit hash of the ids and the position), plus
about 70 bytes per event this run publishes. Two different ids share a hash with
probability ~n/2^64 per lookup (n indexed ids), which would skip an event: negligible.

A dead letter's original is in the target topic too (the agent read it, rejected it and
counted nothing), so the position a dead letter names is exempt: such an event is
skipped only if it is also present at another position, e.g. after a first replay of it.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

import numpy as np
import orjson

from stream.adapters.producer import partition_for
from stream.adapters.topic_specs import describe_topics
from stream.replay.inputs import OUTCOME_KINDS, OUTCOME_TOPICS, read_range
from stream.replay.ranges import topic_ranges
from stream.settings import Settings
from stream.wire.batches import EVENT_BATCH

_PARTITION_SHIFT = 44  # offsets below 2**44, partitions below 2**16, topics below 16
_TOPIC_SHIFT = 60


def event_hash(account_id: str, kind: str, event_id: str) -> int:
    key = f"{account_id}\0{kind}\0{event_id}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "little")


def pack(topic_index: int, partition: int, offset: int) -> int:
    return topic_index << _TOPIC_SHIFT | partition << _PARTITION_SHIFT | offset


class SeenIndex:
    """`(account_id, kind, event_id)` -> the positions where the target topics hold it."""

    def __init__(self, topics: Sequence[str], hashes: Sequence[int], positions: Sequence[int]):
        keys = np.asarray(hashes, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        self._hashes = keys[order]
        self._positions = np.asarray(positions, dtype=np.uint64)[order]
        self._topics = {name: i for i, name in enumerate(topics)}
        self._added: set[int] = set()

    def __len__(self) -> int:
        return len(self._hashes) + len(self._added)

    def seen(self, account_id: str, kind: str, event_id: str, exempt: str | None = None) -> bool:
        """True if the event is present, other than at the `exempt` position
        ("topic:partition:offset"), or was added."""
        key = event_hash(account_id, kind, event_id)
        if key in self._added:
            return True
        probe = np.uint64(key)
        low = int(np.searchsorted(self._hashes, probe, side="left"))
        high = int(np.searchsorted(self._hashes, probe, side="right"))
        if low == high:
            return False
        code = self._code(exempt)
        return code is None or bool(np.any(self._positions[low:high] != code))

    def add(self, account_id: str, kind: str, event_id: str) -> None:
        self._added.add(event_hash(account_id, kind, event_id))

    def _code(self, position: str | None) -> int | None:
        if position is None:
            return None
        topic, partition, offset = position.rsplit(":", 2)
        index = self._topics.get(topic)
        return None if index is None else pack(index, int(partition), int(offset))


class IndexBuilder:
    """Collects records of the target topics into a `SeenIndex`; `kinds[i]` is the event
    kind of `topics[i]` (the agent counts a record as its topic's kind)."""

    def __init__(self, topics: Sequence[str], kinds: Sequence[str] = OUTCOME_KINDS) -> None:
        if len(kinds) != len(topics):
            raise ValueError("one kind per topic")
        self.topics = list(topics)
        self.kinds = list(kinds)
        self._hashes = array("Q")
        self._positions = array("Q")

    def add(self, topic_index: int, partition: int, offset: int, value: bytes | None) -> None:
        try:
            doc = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            return  # unreadable: the agent counted nothing for it
        if not isinstance(doc, dict):
            return
        account_id, kind = doc.get("account_id"), self.kinds[topic_index]
        items = doc.get("events") if doc.get("schema") == EVENT_BATCH else [doc]
        for item in items if isinstance(items, list) else []:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            if isinstance(account_id, str) and isinstance(event_id, str):
                self._hashes.append(event_hash(account_id, kind, event_id))
                self._positions.append(pack(topic_index, partition, offset))

    def build(self) -> SeenIndex:
        return SeenIndex(self.topics, self._hashes, self._positions)


async def scan_existing(settings: Settings, accounts: set[str]) -> SeenIndex:
    """The index of the replayed accounts' events in the target event topics."""
    topics = [settings.topic(name) for name in OUTCOME_TOPICS]
    states = await describe_topics(settings, topics)
    missing = [t for t in topics if t not in states]
    if missing:
        raise ValueError(f"no topic {', '.join(missing)} (creative-select topics create)")
    keys = {account.encode() for account in accounts}
    builder = IndexBuilder(topics, OUTCOME_KINDS)
    for index, topic in enumerate(topics):
        wanted = {partition_for(key, states[topic].partitions) for key in keys}
        if not wanted:
            continue
        ranges = await topic_ranges(settings, topic)
        selected = {p: r for p, r in ranges.items() if p in wanted}
        async for record in read_range(settings, topic, selected):
            if record.key in keys:
                builder.add(index, record.partition, record.offset, record.value)
    return builder.build()
