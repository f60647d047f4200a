"""Reading topic-partitions from a start offset to a stop offset, fast: the daily job's
Kafka client.

confluent-kafka (librdkafka, shipped in its wheel) rather than aiokafka: librdkafka
fetches and parses record batches in its own C threads, so fetching overlaps with the
Python decoding instead of taking turns with it on the event loop, and it hands out
10,000 messages per call. The recomputation also runs in several processes, one per
group of partitions (one account's events of every kind share a partition number, so
each process folds whole accounts). `bench/recompute_bench.py` measures both clients.

Nothing here imports the Faust app (`stream.worker.app` reads settings at import): worker
processes are spawned and import only this module and what it needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stream.adapters.kafka_config import client_config
from stream.settings import Settings

Range = tuple[int, int]  # [start, stop)
TP = tuple[str, int]
OnRun = Callable[[str, int, list[Any]], None]  # runs of confluent_kafka.Message
BATCH = 10_000


class ReadError(RuntimeError):
    """Kafka could not be read as asked; the message says what to check."""


def open_consumer(settings: Settings, group_id: str | None = None) -> Consumer:
    """A consumer that never joins a group nor commits: it is only assigned partitions."""
    return Consumer(
        {
            **client_config(settings),
            "group.id": group_id or f"{settings.app_id}-stats-job",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            # a deep prefetch queue: librdkafka keeps fetching while Python decodes
            # (5x the default configuration's rate here, see bench/README.md)
            "queued.min.messages": 1_000_000,
            "queued.max.messages.kbytes": 524_288,
        }
    )


def watermarks(consumer: Consumer, tps: Sequence[TP], timeout: float = 15.0) -> dict[TP, Range]:
    """(low, high) offsets of each topic-partition."""
    out = {}
    for topic, partition in tps:
        try:
            out[topic, partition] = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
        except KafkaException as exc:
            raise ReadError(f"cannot read the offsets of {topic}:{partition}: {exc}") from None
    return out


def read_ranges(
    consumer: Consumer,
    ranges: Mapping[TP, Range],
    on_run: OnRun,
    progress: Callable[[int], None] = lambda n: None,
    idle_timeout: float = 60.0,
) -> None:
    """Hand every record in [start, stop) of each topic-partition to `on_run`, as runs of
    consecutive records of one topic-partition in offset order."""
    remaining = {tp: stop for tp, (start, stop) in ranges.items() if stop > start}
    if not remaining:
        return
    consumer.assign([TopicPartition(t, p, ranges[t, p][0]) for t, p in remaining])
    idle_since = time.monotonic()
    while remaining:
        messages = consumer.consume(BATCH, 1.0)
        if not messages:
            _drop_finished(consumer, remaining)
            if time.monotonic() - idle_since > idle_timeout:
                raise ReadError(
                    f"no records for {idle_timeout:.0f} s; still expected: {_names(remaining)}"
                )
            continue
        idle_since = time.monotonic()
        progress(_runs(messages, remaining, on_run))
    consumer.unassign()


def _runs(messages: list[Any], remaining: dict[TP, int], on_run: OnRun) -> int:
    """Hand a consumed batch on as runs of one topic-partition (librdkafka returns each
    fetched partition's records together); returns the records handed on."""
    handed, i, n = 0, 0, len(messages)
    while i < n:
        first = messages[i]
        topic, partition, error = first.topic(), first.partition(), first.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise ReadError(f"reading {topic}:{partition}: {error.str()}")
            remaining.pop((topic, partition), None)
            i += 1
            continue
        j = i + 1
        while j < n:
            m = messages[j]
            if m.partition() != partition or m.error() is not None or m.topic() != topic:
                break
            j += 1
        run, i = messages[i:j], j
        stop = remaining.get((topic, partition))
        if stop is None:
            continue
        if run[-1].offset() >= stop - 1:
            remaining.pop((topic, partition))
            run = [m for m in run if m.offset() < stop]
        if run:
            on_run(topic, partition, run)
            handed += len(run)
    return handed


def _drop_finished(consumer: Consumer, remaining: dict[TP, int]) -> None:
    """Partitions whose position reached the stop (the last offsets may be control
    records or compacted away, and never arrive as messages)."""
    positions = consumer.position([TopicPartition(t, p) for t, p in remaining])
    for tp in positions:
        if tp.offset >= 0 and tp.offset >= remaining.get((tp.topic, tp.partition), 0):
            remaining.pop((tp.topic, tp.partition), None)


def _names(tps: Mapping[TP, int]) -> str:
    return ", ".join(f"{t}:{p}" for t, p in sorted(tps))


def read_latest(settings: Settings, topic: str, partitions: int) -> dict[bytes, bytes]:
    """The latest value per key of a (compacted) topic, read to its current end;
    a tombstone removes the key."""
    latest: dict[bytes, bytes] = {}

    def keep(_topic: str, _partition: int, run: list[Any]) -> None:
        for record in run:
            key, value = record.key(), record.value()
            if key is None:
                continue
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value

    consumer = open_consumer(settings)
    try:
        tps = [(topic, p) for p in range(partitions)]
        read_ranges(consumer, watermarks(consumer, tps), keep)
    finally:
        consumer.close()
    return latest


def group_consumer(settings: Settings, group_id: str) -> Consumer:
    """A consumer in `group_id` that never subscribes nor commits: it reads the group's
    committed offsets (`committed`), and can be reused across polls."""
    return Consumer({**client_config(settings), "group.id": group_id, "enable.auto.commit": False})


def committed(
    settings: Settings, group_id: str, tps: Sequence[TP], consumer: Consumer | None = None
) -> dict[TP, int]:
    """The offsets a consumer group has committed (0 where none: nothing consumed),
    through `consumer` (a `group_consumer` of the group) when given, else a new one."""
    own = consumer is None
    reader = group_consumer(settings, group_id) if consumer is None else consumer
    try:
        found = reader.committed([TopicPartition(t, p) for t, p in tps], timeout=15.0)
    except KafkaException as exc:
        raise ReadError(f"cannot read the committed offsets of group {group_id!r}: {exc}") from None
    finally:
        if own:
            reader.close()
    return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}
