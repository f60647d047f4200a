"""The ceiling plain aiokafka gives, measured beside the worker in the same run: produce
and consume rates on the benchmark's own messages, and an echo that makes the
request->response round trip through Kafka with nothing but the client in between."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.stream_load import (
    Load,
    Message,
    batched_events,
    event_messages,
    items_in,
    pin,
    produce,
    request_messages,
    response_sample,
)
from stream.adapters.kafka_config import kafka_config
from stream.settings import Settings

KINDS = ("request", "response", "event", "echo-requests", "echo-responses")


async def echo(settings: Settings, source: str, target: str, count: int, pipe: Any) -> int:
    """Forward every message of `source` to `target` as it comes, with a producer set like
    the worker's (acks all, no linger): a request->response round trip through Kafka with
    nothing but aiokafka in between. `count` is in requests (a batch holds several)."""
    config = kafka_config(settings)
    consumer = AIOKafkaConsumer(**config, group_id=None, enable_auto_commit=False)
    producer = AIOKafkaProducer(**config, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(source, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        pipe.send(("ready", count))
        seen = 0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    await producer.send(target, record.value, key=record.key)
                    seen += record.value.count(b'"request_id"')  # requests: one, or a batch
        await producer.flush()
        return seen
    finally:
        await producer.stop()
        await consumer.stop()


def echo_process(
    load: Load, source: str, target: str, count: int, cpus: list[int] | None, out: Any
) -> None:
    pin(cpus)
    out.send(("done", asyncio.run(echo(load.settings, source, target, count, out))))


async def consume_all(settings: Settings, topic: str, count: int) -> float:
    """Read `count` messages of `topic` from the beginning; seconds it took."""
    consumer = AIOKafkaConsumer(**kafka_config(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for partition in partitions:  # resolve the start offsets before the clock starts
            await consumer.position(partition)
        seen, started = 0, time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def raw_rates(load: Load, kinds: dict[str, list[Message]], topic: str) -> dict[str, Any]:
    """Per kind: aiokafka producing the messages to a scratch topic, then reading them."""
    out = {}
    for kind, messages in kinds.items():
        scratch = f"{topic}-{kind}"
        moved = [(scratch, key, value) for _, key, value in messages]
        produced = await produce(load.settings, moved)
        consumed = await consume_all(load.settings, scratch, len(moved))
        size = sum(len(v) for _, _, v in moved) / len(moved)
        items = items_in(moved)  # the rates count items: requests, responses, events
        out[kind] = {
            "messages": len(moved),
            "items": items,
            "mean_bytes": size,
            "produce_per_second": items / produced,
            "consume_per_second": items / consumed,
        }
    return out


def raw_process(load: Load, count: int, topic: str, cpus: list[int] | None, out: Any) -> None:
    """The ceiling: plain aiokafka with the benchmark's own messages, in a process like
    the worker's (pinned where the worker runs)."""
    pin(cpus)
    at = time.time()
    kinds = {
        "request": request_messages(load, "raw", count, at),
        "response": response_sample(load, count),
        "event": batched_events(load, event_messages(load, at)[:count]),
    }
    out.send(("done", asyncio.run(raw_rates(load, kinds, topic))))
