"""Reading the worker's stats table from outside, the way a test checks what it counted."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from selector.ingest import Ledger
from selector.stats import Counts
from stream.settings import Settings
from stream.wire.ledger_codec import loads as load_ledger


async def streamed_stats(settings: Settings) -> dict[str, dict[str, Counts]]:
    """The last value per account in the stats table's changelog; creatives whose counts
    are all zero (after a correction) are left out, as they are in a ground truth."""
    out = {k: dict(v.stats.counts) for k, v in (await latest_ledgers(settings)).items()}
    return {a: {c: n for c, n in row.items() if not n.is_zero()} for a, row in out.items()}


async def applied_through(settings: Settings) -> dict[str, int]:
    """Per source "topic:partition", the highest offset any account's stats applied."""
    out: dict[str, int] = {}
    for ledger in (await latest_ledgers(settings)).values():
        for position, offset in ledger.applied.items():
            out[position] = max(out.get(position, -1), offset)
    return out


async def latest_ledgers(settings: Settings) -> dict[str, Ledger]:
    topic = f"{settings.app_id}-account-to-stats-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, bytes] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    latest[r.key] = r.value
    finally:
        await consumer.stop()
    return {k.decode(): load_ledger(v) for k, v in latest.items()}
