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

    async def replay(
        self, topic: str, partition: int, stop: int, window_seconds: float, sink: Sink
    ) -> int:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            self._read, loop, topic, partition, stop, window_seconds, sink
        )

    def _read(
        self,
        loop: asyncio.AbstractEventLoop,
        topic: str,
        partition: int,
        stop: int,
        window_seconds: float,
        sink: Sink,
    ) -> int:
        now = self._clock()
        kind, limits = self._kinds[topic], self._limits
        consumer = open_consumer(self._settings, f"{self._settings.app_id}-dedup-refill")
        read = 0

        def on_run(_topic: str, _partition: int, run: list[Any]) -> None:
            nonlocal read
            seen: list[Seen] = []
            for record in run:
                fields = decode_event(kind, record.value(), record.key(), limits, now)
                if type(fields) is tuple:
                    account, creative, event_id, _, _ = fields
                    age = now - record.timestamp()[1] / 1000.0
                    seen.append((account, event_id, creative, record.offset(), age))
            read += len(run)
            asyncio.run_coroutine_threadsafe(sink(seen), loop).result()

        try:
            start = self._window_start(consumer, topic, partition, now - window_seconds)
            read_ranges(consumer, {(topic, partition): (start, stop)}, on_run)
        finally:
            consumer.close()
        return read

    @staticmethod
    def _window_start(consumer: Any, topic: str, partition: int, since: float) -> int:
        """The first offset written at or after `since`; the end when there is none."""
        low, high = watermarks(consumer, [(topic, partition)])[topic, partition]
        wanted = TopicPartition(topic, partition, max(0, int(since * 1000)))
        (found,) = consumer.offsets_for_times([wanted], timeout=15.0)
        return high if found.offset < 0 else max(low, found.offset)
