"""The event topics read back for a dedup refill (`stream.handlers.dedup.EventHistory`).

One topic-partition from the first record written within the dedup window (by the
records' timestamps) up to a stop offset, read with the daily job's fast reader
(`stream.adapters.kafka_reader`, librdkafka) in a thread, so the worker's event loop
keeps answering selection requests meanwhile. Each run of records is decoded as the daily
job decodes (`stream.job.recompute.decode_event`) and handed to the sink on the loop; the
reader waits for the sink before it goes on, so a refill holds one run in memory at a
time, whatever the partition's size.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import TopicPartition

from stream.adapters.kafka_reader import open_consumer, read_ranges, watermarks
from stream.handlers.dedup import Seen, Sink
from stream.job.recompute import decode_event
from stream.settings import Settings
from stream.wire import codec


class TopicHistory:
    def __init__(
        self,
        settings: Settings,
        kinds: Mapping[str, str],
        limits: codec.Limits,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self._settings = settings
        self._kinds = kinds  # topic -> event kind
        self._limits = limits
        self._clock = clock

    async def replay(self, stops: Mapping[str, int], window_seconds: float, sink: Sink) -> int:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(self._read, loop, stops, window_seconds, sink)

    def _read(
        self,
        loop: asyncio.AbstractEventLoop,
        stops: Mapping[str, int],
        window_seconds: float,
        sink: Sink,
    ) -> int:
        now = self._clock()
        limits = self._limits
        tps = {tp: (tp.rsplit(":", 1)[0], int(tp.rsplit(":", 1)[1])) for tp in stops}
        consumer = open_consumer(self._settings, f"{self._settings.app_id}-dedup-refill")
        read = 0

        def on_run(topic: str, partition: int, run: list[Any]) -> None:
            nonlocal read
            kind = self._kinds[topic]
            seen: list[Seen] = []
            for record in run:
                fields = decode_event(kind, record.value(), record.key(), limits, now)
                if type(fields) is tuple:
                    account, creative, event_id = fields[:3]
                    age = now - record.timestamp()[1] / 1000.0
                    seen.append((account, event_id, creative, record.offset(), age))
            read += len(run)
            asyncio.run_coroutine_threadsafe(sink(f"{topic}:{partition}", seen), loop).result()

        try:
            starts = _window_starts(consumer, list(tps.values()), now - window_seconds)
            ranges = {tps[tp]: (starts[tps[tp]], stop) for tp, stop in stops.items()}
            read_ranges(consumer, ranges, on_run)
        finally:
            consumer.close()
        return read


def _window_starts(consumer: Any, tps: list[tuple[str, int]], since: float) -> dict[Any, int]:
    """Per topic-partition, the first offset written at or after `since` (its end when
    there is none)."""
    bounds = watermarks(consumer, tps)
    at = max(0, int(since * 1000))
    found = consumer.offsets_for_times([TopicPartition(t, p, at) for t, p in tps], timeout=15.0)
    out = {}
    for tp in found:
        low, high = bounds[tp.topic, tp.partition]
        out[tp.topic, tp.partition] = high if tp.offset < 0 else max(low, tp.offset)
    return out
