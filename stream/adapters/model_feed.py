"""The models topic read by every worker: each worker keeps every account's newest model
(`stream.handlers.models.ModelBook`), so a rebalance never leaves an account without its
model, and a newly published model is in use within a poll, without a restart.

The same feed follows the send-time priors topic (`topic=`,
`stream.handlers.sendtime_priors`).

A plain consumer outside the group (no commits): on start it is assigned every partition
from the beginning, so the compacted topic's history rebuilds the book, then it follows
the topic's end. A failure (broker away, topic not created yet) is logged and the feed
starts over after `retry_seconds`; the models in use stay in use meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.kafka_config import kafka_config
from stream.handlers.models import MODELS_TOPIC
from stream.settings import Settings

log = logging.getLogger(__name__)
MAX_MODEL_BYTES = 16 << 20  # the topic's max.message.bytes (schemas/topics.yaml)


class ModelFeed:
    def __init__(
        self,
        settings: Settings,
        apply: Callable[[bytes | None, bytes | None], object],
        retry_seconds: float = 5.0,
        topic: str = MODELS_TOPIC,
    ) -> None:
        self._settings = settings
        self._apply = apply
        self.retry_seconds = retry_seconds
        self.topic = settings.topic(topic)

    async def run(self) -> None:
        """Follow the models topic until cancelled."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s not readable (%r); trying again", self.topic, exc)
            await asyncio.sleep(self.retry_seconds)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            **kafka_config(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=MAX_MODEL_BYTES,
            fetch_max_bytes=4 * MAX_MODEL_BYTES,
        )
        await consumer.start()
        try:
            if self.topic not in await consumer.topics():
                raise LookupError(f"no topic {self.topic}")
            # every keyed topic has CS_PARTITIONS partitions (schemas/topics.yaml)
            tps = [TopicPartition(self.topic, p) for p in range(self._settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for r in records:
                        self._apply(r.key, r.value)
        finally:
            await consumer.stop()
