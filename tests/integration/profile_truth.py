"""The contact profiles a worker should hold, folded from the event topics themselves, and
the ones it holds in Redis: the profile side of the crash test's check.

The truth reads every event partition from its start, in offset order, flags an event
whose (account, kind, event_id) was seen at a lower offset as a duplicate (the dedup
store's first position: an event id of one account and kind always lands on one
partition), and folds each contact's events with the stream's own
`selector.model.profile.apply_profile_events`. The profile value does not depend on how
the topics interleave, so the bytes must be equal.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.ingest import SourcedEvent
from selector.model.profile import EMPTY, apply_profile_events
from selector.model.record import encode
from stream.handlers.profiles import profile_key
from stream.settings import Settings
from stream.wire import codec

EVENT_TOPICS = {"sends": "send", "clicks": "click", "conversions": "conversion"}


async def _events(settings: Settings) -> list[tuple[str, Any, int, int]]:
    """(topic, decoded event, partition, offset) of every event, per partition in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    out: list[tuple[str, Any, int, int]] = []
    try:
        tps = [
            TopicPartition(settings.topic(t), p)
            for t in EVENT_TOPICS
            for p in range(settings.partitions)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    kind = EVENT_TOPICS[r.topic[len(settings.topic_prefix) :]]
                    event = codec.decode(kind, r.value, key=r.key)
                    assert not isinstance(event, codec.Rejected), event
                    out.append((r.topic, event, r.partition, r.offset))
    finally:
        await consumer.stop()
    return sorted(out, key=lambda row: (row[0], row[2], row[3]))


async def true_profiles(settings: Settings) -> dict[tuple[str, str], bytes]:
    """(account, contact) -> the stored bytes its profile should have."""
    seen: set[tuple[str, str, str]] = set()
    by_contact: dict[tuple[str, str], list[SourcedEvent]] = defaultdict(list)
    for topic, e, partition, offset in await _events(settings):
        first = (e.account_id, e.kind, e.event_id)
        duplicate = first in seen
        seen.add(first)
        by_contact[(e.account_id, e.contact_id)].append(
            SourcedEvent(
                e.kind,
                e.creative_id,
                e.time,
                getattr(e, "revenue_micros", 0),
                topic,
                partition,
                offset,
                duplicate,
            )
        )
    retention = settings.profile_retention_days * 86400.0
    return {
        pair: encode(apply_profile_events(EMPTY, events, retention)[0])
        for pair, events in by_contact.items()
    }


async def stored_profiles(settings: Settings) -> dict[tuple[str, str], bytes]:
    """Every profile under the settings' key prefix in Redis."""
    client = aioredis.Redis.from_url(settings.redis_url)
    start = profile_key("", "", settings.redis_key_prefix)[:-1]  # "<prefix>pf:"
    out: dict[tuple[str, str], bytes] = {}
    try:
        async for key in client.scan_iter(match=f"{start}*", count=1000):
            account, contact = key.decode()[len(start) :].split(":", 1)
            value = await client.get(key)
            if value is not None:
                out[(account, contact)] = value
    finally:
        await client.aclose()
    return out
