"""From `--start-offset/--end-offset` or `--since/--until` to per-partition offset ranges.

An offset option is one number for every partition (`100`) or per partition
(`0:100,3:250`; partitions not named keep the default). Times are ISO 8601 (`2026-11-30`,
`2026-11-30T06:00:00Z`; no zone means UTC) and become offsets through the broker's
time index (`offsets_for_times`: the first record at or after the time). Ranges are
half-open, `[start, end)`, and clamped to what the partition holds; without an end, a
replay stops at the end the partition had when it started, so it terminates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.kafka_config import kafka_config
from stream.adapters.topic_specs import describe_topics
from stream.settings import Settings

OffsetSpec = Mapping[int | None, int]  # partition (None: every partition) -> offset
Bounds = Mapping[int, tuple[int, int]]  # partition -> (first offset held, end offset)


def parse_offsets(text: str) -> dict[int | None, int]:
    """`"100"` -> {None: 100}; `"0:100,3:250"` -> {0: 100, 3: 250}."""
    spec: dict[int | None, int] = {}
    for part in text.split(","):
        partition, _, offset = part.strip().rpartition(":")
        try:
            key = int(partition) if partition else None
            value = int(offset)
        except ValueError:
            raise ValueError(f"{text!r}: expected N or PARTITION:N[,PARTITION:N...]") from None
        if value < 0 or (key is not None and key < 0):
            raise ValueError(f"{text!r}: offsets and partitions are >= 0")
        spec[key] = value
    return spec


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO 8601 date or time; UTC unless it names a zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: expected an ISO time like 2026-11-30T06:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _pick(spec: OffsetSpec | None, partition: int) -> int | None:
    if spec is None:
        return None
    return spec.get(partition, spec.get(None))


def resolve(
    bounds: Bounds, start: OffsetSpec | None = None, end: OffsetSpec | None = None
) -> dict[int, tuple[int, int]]:
    """Per partition `[start, end)`, clamped to `bounds`; an empty range is (end, end)."""
    unknown = {p for spec in (start, end) if spec for p in spec if p is not None} - set(bounds)
    if unknown:
        raise ValueError(f"no partition {', '.join(map(str, sorted(unknown)))} in the topic")
    ranges = {}
    for partition, (low, high) in sorted(bounds.items()):
        first, last = _pick(start, partition), _pick(end, partition)
        stop = high if last is None else min(max(last, low), high)
        begin = low if first is None else min(max(first, low), stop)
        ranges[partition] = (begin, stop)
    return ranges


async def topic_ranges(
    settings: Settings,
    topic: str,
    start: OffsetSpec | None = None,
    end: OffsetSpec | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict[int, tuple[int, int]]:
    """The ranges of every partition of `topic` that the options select."""
    state = (await describe_topics(settings, [topic])).get(topic)
    if state is None:
        raise ValueError(f"no topic {topic!r}")
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(state.partitions)]
        lows, highs = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        bounds = {tp.partition: (lows[tp], highs[tp]) for tp in tps}
        if since is not None:
            start = await _offsets_at(consumer, tps, since, highs)
        if until is not None:
            end = await _offsets_at(consumer, tps, until, highs)
    finally:
        await consumer.stop()
    return resolve(bounds, start, end)


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    seconds: float,
    highs: Mapping[TopicPartition, int],
) -> dict[int | None, int]:
    """The first offset at or after `seconds` in each partition (its end if none)."""
    found = await consumer.offsets_for_times({tp: int(seconds * 1000) for tp in tps})
    return {tp.partition: highs[tp] if found.get(tp) is None else found[tp].offset for tp in tps}
