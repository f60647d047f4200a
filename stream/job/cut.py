"""The daily job's reads and writes around the recomputation: the cut (the stats table's
changelog, once every published correction is in it), the catalog as the worker sees it,
and the producer for corrections and parameter snapshots.

The cut is exact without markers: a stats value (`Ledger`) carries the highest offset it
applied per source topic-partition, corrections included, and is the fold of exactly
its account's events up to those offsets. Before taking it the job waits until the
worker's consumer group has committed the end of every corrections partition, and then
until the changelog shows every account's latest correction applied: a correction that
an earlier (perhaps killed) run published is then part of the cut, never applied twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Producer

from selector.ingest import Ledger, partition_key
from stream.adapters.kafka_config import client_config
from stream.adapters.kafka_reader import (
    committed,
    group_consumer,
    open_consumer,
    read_latest,
    read_ranges,
    watermarks,
)
from stream.adapters.producer import partition_for
from stream.handlers.catalog import PARTS, AccountCatalog, apply_catalog_message, build_catalog
from stream.settings import Settings
from stream.wire import codec, ledger_codec
from stream.wire.envelope import Incoming
from stream.wire.messages import TOPICS

Sleep = Callable[[float], None]


class JobError(RuntimeError):
    """The job cannot go on; the message says why and what to check."""


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-account-to-stats-changelog"


def corrections_topic(settings: Settings) -> str:
    return settings.topic(TOPICS["stats_correction"])


def read_stats(settings: Settings) -> dict[str, Ledger]:
    """Every account's latest streamed stats value."""
    topic = changelog_topic(settings)
    latest = read_latest(settings, topic, settings.partitions)
    try:
        return {key.decode(): ledger_codec.loads(value) for key, value in latest.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise JobError(f"{topic} holds a value this version cannot read: {exc}") from None


def read_catalog(settings: Settings, now: float) -> dict[str, AccountCatalog]:
    """Every account's catalog, built like the catalog agent builds it (each catalog
    message applied in order, invalid ones leaving the previous value), decoded once."""
    table: dict[bytes, Any] = {}
    consumer = open_consumer(settings)
    try:
        for kind in PARTS:
            topic = settings.topic(TOPICS[kind])  # type: ignore[index]
            tps = [(topic, p) for p in range(settings.partitions)]

            def apply(topic: str, partition: int, run: list[Any], kind: str = kind) -> None:
                for r in run:
                    message = Incoming(r.value(), r.key(), topic, partition, r.offset())
                    key_, new, _ = apply_catalog_message(
                        kind, message, table.get, settings.max_message_bytes, "", now
                    )
                    if new is not None:
                        table[key_] = new

            read_ranges(consumer, watermarks(consumer, tps), apply)
    finally:
        consumer.close()
    return {key.decode(): build_catalog(key.decode(), value) for key, value in table.items()}


CatalogHistory = dict[str, list[tuple[float, AccountCatalog]]]


def read_catalog_history(settings: Settings, now: float) -> CatalogHistory:
    """Every account's catalog after each catalog message the topics still hold, with
    that message's record time (seconds), oldest first: the catalog in force at a time
    is the last version at or before it. Messages are applied in record-time order (a
    partition's times taken as never decreasing, so each partition keeps its order); the
    last version of each account is `read_catalog`'s. Compaction keeps only the latest
    message of a key per part, so versions before it may be gone."""
    found: list[tuple[float, int, int, str, Incoming]] = []
    consumer = open_consumer(settings)
    try:
        for rank, kind in enumerate(PARTS):
            topic = settings.topic(TOPICS[kind])  # type: ignore[index]
            tps = [(topic, p) for p in range(settings.partitions)]
            latest: dict[int, float] = {}

            def keep(topic: str, partition: int, run: list[Any], kind: str = kind,
                     rank: int = rank, latest: dict[int, float] = latest) -> None:  # fmt: skip
                for r in run:
                    at = max(r.timestamp()[1] / 1000.0, latest.get(partition, -math.inf))
                    latest[partition] = at
                    message = Incoming(r.value(), r.key(), topic, partition, r.offset())
                    found.append((at, rank, len(found), kind, message))

            read_ranges(consumer, watermarks(consumer, tps), keep)
    finally:
        consumer.close()
    table: dict[bytes, Any] = {}
    history: CatalogHistory = {}
    for at, _, _, kind, message in sorted(found, key=lambda f: f[:3]):
        key_, new, _ = apply_catalog_message(
            kind, message, table.get, settings.max_message_bytes, "", now
        )
        if new is not None:
            table[key_] = new
            account_id = key_.decode()
            history.setdefault(account_id, []).append((at, build_catalog(account_id, new)))
    return history


def latest_corrections(settings: Settings) -> dict[str, tuple[str, int]]:
    """Per account, the topic-partition key and offset of its latest correction. Messages
    the stats agent rejects (and so never applies) do not count."""
    topic = corrections_topic(settings)
    latest: dict[str, tuple[str, int]] = {}
    limits = codec.Limits(settings.max_message_bytes)

    def keep(topic: str, partition: int, run: list[Any]) -> None:
        for r in run:
            found = codec.decode("stats_correction", r.value(), key=r.key(), limits=limits)
            if not isinstance(found, codec.Rejected):
                latest[found.account_id] = (partition_key(topic, partition), r.offset())

    consumer = open_consumer(settings)
    try:
        tps = [(topic, p) for p in range(settings.partitions)]
        read_ranges(consumer, watermarks(consumer, tps), keep)
    finally:
        consumer.close()
    return latest


def wait_for_worker(settings: Settings, timeout: float, sleep: Sleep = time.sleep) -> None:
    """Until the worker's group has committed the end of every corrections partition."""
    topic = corrections_topic(settings)
    tps = [(topic, p) for p in range(settings.partitions)]
    deadline = time.monotonic() + timeout
    consumer = open_consumer(settings)
    group = group_consumer(settings, settings.app_id)
    try:
        while True:
            ends = {tp: high for tp, (_, high) in watermarks(consumer, tps).items()}
            done = committed(settings, settings.app_id, tps, group)
            behind = {tp: (done.get(tp, 0), e) for tp, e in ends.items() if done.get(tp, 0) < e}
            if not behind:
                return
            if time.monotonic() > deadline:
                (t, p), (at, end) = sorted(behind.items())[0]
                raise JobError(
                    f"the worker's consumer group {settings.app_id!r} has not applied the "
                    f"corrections in {t}:{p} (committed {at}, end {end}) within {timeout:.0f} "
                    "s: is a worker running (creative-select worker) with the same CS_APP_ID?"
                )
            sleep(1.0)
    finally:
        consumer.close()
        group.close()


def take_cut(settings: Settings, timeout: float, sleep: Sleep = time.sleep) -> dict[str, Ledger]:
    """The streamed stats once every published correction is applied in them."""
    wait_for_worker(settings, timeout, sleep)
    pending = latest_corrections(settings)
    deadline = time.monotonic() + timeout
    while True:
        stats = read_stats(settings)
        missing = [
            account
            for account, (tp, offset) in pending.items()
            if account not in stats or stats[account].applied.get(tp, -1) < offset
        ]
        if not missing:
            return stats
        if time.monotonic() > deadline:
            raise JobError(
                f"{len(missing)} account(s) do not show their latest correction in "
                f"{changelog_topic(settings)} after {timeout:.0f} s; is the worker stuck?"
            )
        sleep(1.0)


def publish(settings: Settings, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> int:
    """Produce keyed messages to the key's partition (the partitioner the event producers
    use), wait until all are acknowledged; raises on any delivery error."""
    producer = Producer(
        {
            **client_config(settings),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    errors: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(str(error))

    count = 0
    for key, value in messages:
        producer.produce(
            topic,
            value,
            key,
            partition=partition_for(key, settings.partitions),
            on_delivery=delivered,
        )
        producer.poll(0)
        count += 1
    left = producer.flush(60.0)
    if left or errors:
        raise JobError(f"{left + len(errors)} message(s) to {topic} not delivered: {errors[:3]}")
    return count
