"""Events per second of the daily job's recomputation (DESIGN.md section 6: >= 200,000/s),
next to the raw consume rate of the same client over the same partitions, in one run.

It starts a local Kafka (or uses `--bootstrap`), produces N events (70% sends, 23%
clicks, 7% conversions, 1% re-published duplicates; 1,000 accounts of 10 creatives over
4 partitions) in batches, then reads them back:

- `confluent raw`: the job's consumer (`stream.adapters.kafka_reader`), touching each record;
- `aiokafka raw`: aiokafka's consumer on the same partitions, for the choice of client;
- `recompute, P process(es)`: `stream.job.readers.recompute` with the cut at the end of
  every partition: decoding and validation as the stats agent's, catalog check, dedup,
  fold; P = 1 and P = `--processes`.

Run it as `python -m stream.cli bench recompute [--events N | --quick]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer
from tqdm import tqdm

from bench import machine_info
from selector.ingest import partition_key
from stream.adapters.kafka_config import client_config
from stream.adapters.kafka_reader import open_consumer, read_ranges, watermarks
from stream.adapters.topic_specs import TopicSpec
from stream.job.readers import Task, recompute
from stream.job.recompute import Scope
from stream.local.kafka import KafkaBroker, create_topics
from stream.settings import Settings
from stream.wire import codec

ACCOUNTS = 1000
CREATIVES = 10
PARTITIONS = 4
KINDS = (("send", "sends", 0.70), ("click", "clicks", 0.93), ("conversion", "conversions", 1.0))


@dataclass(frozen=True, slots=True)
class Config:
    events: int = 10_000_000
    processes: int = 2
    bootstrap: str | None = None
    progress: bool = True


_TEMPLATES = {
    "send": b'{"schema":"send.v1","event_id":"ev-%d","account_id":"acct-%04d",'
    b'"campaign_id":"spring","contact_id":"contact-%d","creative_id":"cr-%d","time":%.2f}',
    "click": b'{"schema":"click.v1","event_id":"ev-%d","account_id":"acct-%04d",'
    b'"contact_id":"contact-%d","creative_id":"cr-%d","time":%.2f}',
    "conversion": b'{"schema":"conversion.v1","event_id":"ev-%d","account_id":"acct-%04d",'
    b'"contact_id":"contact-%d","creative_id":"cr-%d","time":%.2f,"revenue":%.2f}',
}
CHUNK = 100_000


def _chunk(
    rng: np.random.Generator, first: int, size: int
) -> Iterator[tuple[bool, int, int, bytes]]:
    """(re-publish?, kind index, account, value) of `size` events numbered from `first`."""
    again = rng.random(size) < 0.01
    rolls = rng.random(size)
    kinds = np.searchsorted([k[2] for k in KINDS], rolls, side="right")
    accounts = rng.integers(0, ACCOUNTS, size)
    creatives = rng.integers(0, CREATIVES, size)
    contacts = rng.integers(0, 1_000_000, size)
    revenue = np.round(rng.uniform(1, 90, size), 2)
    for i in range(size):
        n, kind = first + i, int(kinds[i])
        fields: tuple[Any, ...] = (
            n,
            accounts[i],
            contacts[i],
            creatives[i],
            1_767_225_600 + n / 100,
        )
        if kind == 2:
            fields = (*fields, revenue[i])
        yield bool(again[i]), kind, int(accounts[i]), _TEMPLATES[KINDS[kind][0]] % fields


def produce(settings: Settings, total: int, progress: bool) -> float:
    """Produce `total` events in batches, 1% of them re-published copies; returns events/s."""
    rng = np.random.default_rng(0)
    producer = Producer(
        {
            **client_config(settings),
            "partitioner": "murmur2_random",  # Java's, like the service's producers
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 2_000_000,
            "acks": 1,
        }
    )
    topics = [settings.topic(name) for _, name, _ in KINDS]
    keys = [f"acct-{i:04d}".encode() for i in range(ACCOUNTS)]
    bar = tqdm(total=total, unit=" events", unit_scale=True, disable=not progress, desc="produce")
    started, recent = time.perf_counter(), (0, 0, b"")
    for first in range(0, total, CHUNK):
        for again, kind, account, value in _chunk(rng, first, min(CHUNK, total - first)):
            if again and recent[2]:  # an upstream re-publish of a recent send
                kind, account, value = recent
            elif kind == 0:
                recent = (kind, account, value)
            while True:
                try:
                    producer.produce(topics[kind], value, keys[account])
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        bar.update(min(CHUNK, total - first))
    producer.flush()
    bar.close()
    return total / (time.perf_counter() - started)


def scope_at_end(settings: Settings) -> tuple[Scope, dict[tuple[str, int], tuple[int, int]]]:
    consumer = open_consumer(settings)
    tps = [(settings.topic(n), p) for _, n, _ in KINDS for p in range(PARTITIONS)]
    try:
        ranges = watermarks(consumer, tps)
    finally:
        consumer.close()
    ends = {partition_key(t, p): high - 1 for (t, p), (_, high) in ranges.items()}
    accounts = [f"acct-{i:04d}" for i in range(ACCOUNTS)]
    creatives = frozenset(f"cr-{i}" for i in range(CREATIVES))
    scope = Scope(
        {a: ends for a in accounts},  # every account applied everything: the cut is the end
        {a: creatives for a in accounts},
        {a: None for a in accounts},
    )
    return scope, ranges


def confluent_raw(settings: Settings, ranges: dict[tuple[str, int], tuple[int, int]]) -> float:
    count = 0

    def touch(_t: str, _p: int, run: list[Any]) -> None:
        nonlocal count
        count += len(run)

    consumer = open_consumer(settings)
    started = time.perf_counter()
    try:
        read_ranges(consumer, ranges, touch)
    finally:
        consumer.close()
    return count / (time.perf_counter() - started)


async def _aiokafka_raw(
    settings: Settings, ranges: dict[tuple[str, int], tuple[int, int]]
) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=10_485_760,
        fetch_max_bytes=52_428_800,
    )
    await consumer.start()
    total = sum(stop - start for start, stop in ranges.values())
    try:
        tps = [TopicPartition(t, p) for t, p in ranges]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count, started = 0, time.perf_counter()
        while count < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=100_000)).values():
                for r in records:
                    _ = r.value
                count += len(records)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def timed_recompute(
    settings: Settings, scope: Scope, ranges: Any, processes: int
) -> dict[str, Any]:
    kinds = {settings.topic(n): k for k, n, _ in KINDS}
    task = Task(settings, scope, ranges, kinds, codec.Limits(), time.time())
    started = time.perf_counter()
    folded = recompute(task, processes, lambda n: None)
    seconds = time.perf_counter() - started
    records = sum(folded.outcomes.values())
    counted = sum(n for (_, o), n in folded.outcomes.items() if o == "counted")
    return {"records": records, "counted": counted, "seconds": seconds, "rate": records / seconds}


def run(config: Config, out: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="recompute-bench-") as tmp:
        broker = None if config.bootstrap else KafkaBroker(Path(tmp) / "kafka")
        bootstrap = config.bootstrap or broker.start()  # type: ignore[union-attr]
        try:
            return _measure(config, bootstrap, out)
        finally:
            if broker is not None:
                broker.stop()


def _measure(config: Config, bootstrap: str, out: Path | None) -> dict[str, Any]:
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:6]}-")
    specs = [TopicSpec(settings.topic(n), PARTITIONS) for _, n, _ in KINDS]
    asyncio.run(create_topics(bootstrap, specs))
    produce_rate = produce(settings, config.events, config.progress)
    scope, ranges = scope_at_end(settings)
    step: Callable[[str], None] = lambda name: print(f"measuring {name}", file=sys.stderr)  # noqa: E731
    step("confluent raw")
    raw = confluent_raw(settings, ranges)
    step("aiokafka raw")
    aio = asyncio.run(_aiokafka_raw(settings, ranges))
    step("recompute, 1 process")
    one = timed_recompute(settings, scope, ranges, 1)
    step(f"recompute, {config.processes} processes")
    many = timed_recompute(settings, scope, ranges, config.processes)
    result = {
        "events": config.events,
        "produce_rate": produce_rate,
        "confluent_raw_rate": raw,
        "aiokafka_raw_rate": aio,
        "recompute_1_process": one,
        f"recompute_{config.processes}_processes": many,
        "processes": config.processes,
        "machine": machine_info(("numpy", "orjson", "confluent-kafka", "aiokafka")),
    }
    print(table(result))
    path = out or Path("bench/results/recompute.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    p = result["processes"]
    rows = [
        ("produce (batched)", result["produce_rate"]),
        ("confluent-kafka raw consume", result["confluent_raw_rate"]),
        ("aiokafka raw consume", result["aiokafka_raw_rate"]),
        ("recompute, 1 process", result["recompute_1_process"]["rate"]),
        (f"recompute, {p} processes", result[f"recompute_{p}_processes"]["rate"]),
    ]
    lines = [f"{result['events']:,} events", f"{'':<30} {'records/s':>12}"]
    lines += [f"{name:<30} {rate:>12,.0f}" for name, rate in rows]
    return "\n".join(lines)
