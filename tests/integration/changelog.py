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


async def regressions(settings: Settings) -> list[str]:
    """Stats values in the changelog that went back: an account's value whose applied
    offset for some source partition, or whose total sends, clicks or conversions, is
    lower than in the value written before it (no corrections are published here)."""
    topic = f"{settings.app_id}-account-to-stats-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    found: list[str] = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        last: dict[bytes, dict[str, int]] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    now = marks(load_ledger(r.value))
                    before = last.get(r.key, {})
                    back = {k: (v, now.get(k, -1)) for k, v in before.items() if now.get(k, -1) < v}
                    if back:
                        found.append(f"{r.key.decode()} at {r.partition}:{r.offset}: {back}")
                    last[r.key] = now
    finally:
        await consumer.stop()
    return found


def marks(ledger: Ledger) -> dict[str, int]:
    """What only grows in a stats value: applied offsets and total counts."""
    totals = Counts()
    for counts in ledger.stats.counts.values():
        totals = totals + counts
    return {
        **ledger.applied,
        "sends": totals.sends,
        "clicks": totals.clicks,
        "conversions": totals.conversions,
    }
