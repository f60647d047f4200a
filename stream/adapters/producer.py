"""Kafka plumbing for the commands and the client: connection settings, a producer, and
the topic list, on plain aiokafka (the worker uses faust's own producer).

`kafka_config` mirrors `stream.worker.app.broker_credentials`, so a command reaches the same
cluster, with the same credentials, as the worker it feeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata

from stream.adapters.kafka_config import kafka_config
from stream.settings import Settings
from stream.wire.batches import event_batch
from stream.wire.messages import TOPICS, Kind, Message, encode, key_of

LINGER_MS = 5
# Bytes a partition's pending produce batch may hold before a send waits for it to drain.
# aiokafka's default (16 KiB) is below one batch message of 100 requests or events, so
# every such send would wait a broker round trip; 512 KiB stays below the broker's
# default message.max.bytes (1 MiB) for a batch of them.
MAX_BATCH_BYTES = 524_288


def as_settings(settings: Settings | str) -> Settings:
    """Settings as given, or the defaults with `settings` as the bootstrap address."""
    if isinstance(settings, Settings):
        return settings
    return dataclasses.replace(Settings(), kafka_bootstrap=settings)


@asynccontextmanager
async def open_producer(settings: Settings, **overrides: Any) -> AsyncIterator[AIOKafkaProducer]:
    """A started idempotent producer (acks from every in-sync replica, a few ms of
    linger so concurrent sends share a batch), flushed and stopped on exit."""
    options: dict[str, Any] = {
        **kafka_config(settings),
        "acks": "all",
        "linger_ms": LINGER_MS,
        "max_batch_size": MAX_BATCH_BYTES,
        "enable_idempotence": True,
        **overrides,
    }
    producer = AIOKafkaProducer(**options)
    try:
        await producer.start()
        yield producer
        await producer.flush()
    finally:
        await producer.stop()


async def send_messages(
    producer: AIOKafkaProducer, settings: Settings, messages: Iterable[Message]
) -> list[asyncio.Future[RecordMetadata]]:
    """Queue each message on its topic, keyed by its account; returns the delivery
    futures (await them to know each message is stored)."""
    deliveries = []
    for message in messages:
        topic = settings.topic(TOPICS[message.kind])
        deliveries.append(await producer.send(topic, encode(message), key=key_of(message)))
    return deliveries


def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's (and Java's) default partitioner picks for `key`."""
    index: int = murmur2(key) & 0x7FFFFFFF
    return index % partitions


async def publish_batched(
    producer: AIOKafkaProducer, settings: Settings, events: Sequence[Any], batch_size: int
) -> int:
    """Publish outcome events in `event_batch.v1` messages of up to `batch_size` events of
    one kind and account (single v1 messages when it is 1), once all are stored."""
    if batch_size == 1:
        deliveries = await send_messages(producer, settings, events)
    else:
        groups: dict[tuple[Kind, str], list[Any]] = {}
        for event in events:
            groups.setdefault((event.kind, event.account_id), []).append(event)
        deliveries = []
        for (kind, account_id), group in groups.items():
            topic = settings.topic(TOPICS[kind])
            for start in range(0, len(group), batch_size):
                raw = event_batch(kind, account_id, group[start : start + batch_size])
                deliveries.append(await producer.send(topic, raw, key=account_id.encode()))
    await asyncio.gather(*deliveries)
    return len(events)
