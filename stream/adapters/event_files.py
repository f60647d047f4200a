"""Event files: JSON Lines of sends, clicks and conversions (plain or gzipped), each line
checked by the decoder the stats agent runs, and published keyed by account
(`creative-select send-events`, and the replay's file input)."""

from __future__ import annotations

import asyncio
import gzip
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from stream.adapters.pacing import RateLimiter
from stream.adapters.producer import open_producer
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import (
    KIND_OF_SCHEMA,
    TOPICS,
    ClickEvent,
    ConversionEvent,
    SendEvent,
    key_of,
)
from stream.wire.reasons import Rejection

EVENT_KINDS = ("send", "click", "conversion")


MAX_REPORTED = 50


# Deliveries awaited together: bounds memory and surfaces a broker error early.
WINDOW = 10_000


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the file: ready to send (with its decoded event), or why not
    (`error` is "reason: detail", `reason` the bounded reason alone)."""

    number: int
    topic: str | None = None
    key: bytes | None = None
    value: bytes = b""
    error: str | None = None
    reason: Rejection | None = None
    event: SendEvent | ClickEvent | ConversionEvent | None = None


def limits_of(settings: Settings) -> codec.Limits:
    return codec.Limits(
        settings.max_message_bytes,
        max_revenue=settings.max_revenue,
        max_future_seconds=settings.max_future_seconds,
    )


def parse_line(
    number: int, raw: bytes, settings: Settings, limits: codec.Limits, now: float
) -> Line | None:
    """A line checked and addressed; None for a blank line."""
    raw = raw.strip()
    if not raw:
        return None
    kind, reason = _event_kind(raw)
    if kind is None:
        wanted = ", ".join(f"{k}.v1" for k in EVENT_KINDS)
        return Line(number, error=f"schema: must be one of {wanted}", reason=reason)
    event = codec.decode(kind, raw, limits=limits, now=now)
    if isinstance(event, codec.Rejected):
        return Line(number, error=f"{event.reason}: {event.detail}", reason=event.reason)
    outcome = cast(SendEvent | ClickEvent | ConversionEvent, event)
    return Line(number, settings.topic(TOPICS[kind]), key_of(outcome), raw, event=outcome)


def _event_kind(raw: bytes) -> tuple[Any, Rejection]:
    """The event kind a line's `schema` names (None if it is not an event), and the
    reason to give when it is None."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "malformed_json"
    if not isinstance(doc, dict):
        return None, "not_an_object"
    schema = doc.get("schema")
    kind = KIND_OF_SCHEMA.get(schema) if isinstance(schema, str) else None
    return (kind if kind in EVENT_KINDS else None), "schema_mismatch"


def open_input(path: Path) -> IO[bytes]:
    """The file for reading, decompressed when it is gzip (by its magic bytes)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return cast(IO[bytes], gzip.open(path, "rb")) if gzipped else path.open("rb")


def read_lines(path: Path, settings: Settings, now: float) -> Iterator[Line]:
    limits = limits_of(settings)
    with open_input(path) as file:
        for number, raw in enumerate(file, start=1):
            line = parse_line(number, raw, settings, limits, now)
            if line is not None:
                yield line


@dataclass
class Totals:
    sent: int = 0
    invalid: int = 0


async def send_file(
    path: Path, settings: Settings, *, rate: float | None = None, err: Any = None
) -> Totals:
    """Send every valid line of `path`; invalid ones are reported on `err`."""
    err = err or sys.stderr
    with open_input(path) as file:
        total = sum(1 for _ in file)
    totals, pacer = Totals(), RateLimiter(rate)
    async with open_producer(settings) as producer:
        window: list[asyncio.Future[Any]] = []
        with tqdm(total=total, unit="line", file=sys.stderr) as bar:
            for line in read_lines(path, settings, time.time()):
                bar.update(line.number - bar.n)
                if line.error is not None:
                    totals.invalid += 1
                    if totals.invalid <= MAX_REPORTED:
                        tqdm.write(f"line {line.number}: {line.error}", file=err)
                    continue
                await pacer.wait()
                window.append(await _send(producer, line))
                if len(window) >= WINDOW:
                    totals.sent += len(await asyncio.gather(*window))
                    window.clear()
            totals.sent += len(await asyncio.gather(*window))
            bar.update(total - bar.n)
    if totals.invalid > MAX_REPORTED:
        print(f"... {totals.invalid - MAX_REPORTED} more invalid lines", file=err)
    return totals


async def _send(producer: AIOKafkaProducer, line: Line) -> asyncio.Future[Any]:
    assert line.topic is not None
    future: asyncio.Future[Any] = await producer.send(line.topic, line.value, key=line.key)
    return future
