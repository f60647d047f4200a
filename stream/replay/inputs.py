"""What a replay reads: JSON Lines files or a topic's offset ranges, as positioned items.

Every item is checked by the decoder the stats agent runs (`event_files.parse_line`),
so a replay rejects exactly what the agent would dead-letter for its shape. A record of
the dead-letters topic is unwrapped: its original bytes are replayed, and the position
it came from is kept (`exempt`), so the original copy of the event, which the agent
rejected and never counted, does not make the event look already present.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from stream.adapters.event_files import Line, limits_of, open_input, parse_line
from stream.adapters.kafka_config import kafka_config
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import SCHEMAS

FILE_PART = "line"
OUTCOME_TOPICS = ("sends", "clicks", "conversions")
OUTCOME_KINDS = ("send", "click", "conversion")  # the kind of each of OUTCOME_TOPICS
_DEAD_LETTER = f'"{SCHEMAS["dead_letter"]}"'.encode()
_HEAD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Item:
    """One input event and where it came from. `part` is "line" for a file or "p<N>"
    for partition N of a topic; `position` the line number or offset."""

    part: str
    position: int
    line: Line
    exempt: str | None = None  # "topic:partition:offset" of a dead letter's original
    ignored: bool = False  # a dead letter of something that is not an outcome event
    raw: bytes = b""  # the input as read, for the rejects file

    @property
    def where(self) -> str:
        if self.part == FILE_PART:
            return f"line {self.position}"
        return f"partition {self.part[1:]} offset {self.position}"


class Source(Protocol):
    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed with this source."""

    def items(self, start: Mapping[str, int]) -> AsyncGenerator[Item, None]:
        """Items in order, from `start` (per part, the next position to read) on."""


class FileSource:
    """A JSON Lines file (gzip too) of send.v1, click.v1 and conversion.v1 objects."""

    def __init__(self, path: Path, settings: Settings, now: float) -> None:
        self.path, self.settings, self.now = path, settings, now

    def identity(self) -> dict[str, Any]:
        with self.path.open("rb") as file:
            head = hashlib.sha256(file.read(_HEAD_BYTES)).hexdigest()
        size = self.path.stat().st_size
        return {"file": str(self.path.resolve()), "size": size, "head_sha256": head}

    async def items(self, start: Mapping[str, int]) -> AsyncGenerator[Item, None]:
        first = start.get(FILE_PART, 1)
        limits = limits_of(self.settings)
        with open_input(self.path) as file:
            for number, raw in enumerate(file, start=1):
                if number < first:
                    continue
                line = parse_line(number, raw, self.settings, limits, self.now)
                if line is not None:
                    yield Item(FILE_PART, number, line, raw=raw.rstrip(b"\r\n"))


Ranges = Mapping[int, tuple[int, int]]  # partition -> [start, end) offsets


class TopicSource:
    """Offset ranges of one topic's partitions: an archive, another prefix's event
    topics, or the dead-letters topic. `selection` is how the ranges were asked for
    (the command's options), so a rerun of the same command can find its checkpoint
    and read the ranges resolved then, not the ones the topic's end has moved to."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        ranges: Ranges,
        now: float,
        selection: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings, self.topic, self.ranges, self.now = settings, topic, ranges, now
        self.selection = dict(selection or {})

    def identity(self) -> dict[str, Any]:
        ranges = {str(p): list(r) for p, r in sorted(self.ranges.items())}
        return {"topic": self.topic, "selection": self.selection, "ranges": ranges}

    async def items(self, start: Mapping[str, int]) -> AsyncGenerator[Item, None]:
        limits = limits_of(self.settings)
        todo = {
            p: (max(low, start.get(f"p{p}", low)), high) for p, (low, high) in self.ranges.items()
        }
        async with aclosing(read_range(self.settings, self.topic, todo)) as records:
            async for record in records:
                yield record_item(record, self.settings, limits, self.now)


def saved_ranges(
    identity: Mapping[str, Any], topic: str, selection: Mapping[str, Any]
) -> dict[int, tuple[int, int]] | None:
    """The ranges a checkpoint's source resolved for the same topic and selection."""
    if identity.get("topic") != topic or identity.get("selection") != dict(selection):
        return None
    return {int(p): (int(r[0]), int(r[1])) for p, r in identity.get("ranges", {}).items()}


def record_item(
    record: ConsumerRecord, settings: Settings, limits: codec.Limits, now: float
) -> Item:
    """A topic record as an item; a dead letter is replaced by its original."""
    part, offset, value = f"p{record.partition}", record.offset, record.value
    if value is None:
        return Item(part, offset, _rejected(offset, "malformed_json", "no value (a tombstone?)"))
    if _DEAD_LETTER not in value:
        return Item(part, offset, _parse(offset, value, settings, limits, now), raw=value)
    letter = codec.decode("dead_letter", value, limits=limits)
    if isinstance(letter, codec.Rejected):
        line = _rejected(offset, letter.reason, f"dead letter: {letter.detail}")
        return Item(part, offset, line, raw=value)
    exempt, original = f"{letter.topic}:{letter.partition}:{letter.offset}", letter.original
    if not letter.topic.endswith(OUTCOME_TOPICS):
        return Item(part, offset, Line(offset), exempt, ignored=True)
    if letter.original_size > len(original):
        line = _rejected(offset, "oversized", f"dead letter: original cut to {len(original)} B")
        return Item(part, offset, line, exempt, raw=original)
    line = _parse(offset, original, settings, limits, now)
    return Item(part, offset, line, exempt, raw=original)


def _parse(number: int, raw: bytes, settings: Settings, limits: codec.Limits, now: float) -> Line:
    line = parse_line(number, raw, settings, limits, now)
    return line if line is not None else _rejected(number, "malformed_json", "empty value")


def _rejected(number: int, reason: Any, detail: str) -> Line:
    return Line(number, error=f"{reason}: {detail}", reason=reason)


async def read_range(settings: Settings, topic: str, ranges: Ranges) -> AsyncGenerator[Any, None]:
    """The records of `topic` in each partition's [start, end) range, partition by
    partition interleaved as fetched, each partition in offset order."""
    todo = {TopicPartition(topic, p): r for p, r in ranges.items() if r[0] < r[1]}
    if not todo:
        return
    consumer = AIOKafkaConsumer(
        **kafka_config(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(list(todo))
        for tp, (low, _) in todo.items():
            consumer.seek(tp, low)
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < todo[tp][1]:
                        yield record
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp][1]:
                    del todo[tp]
    finally:
        await consumer.stop()
