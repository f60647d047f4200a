"""The models topic in the live report: every version of the accounts' contextual models
on it (`selector.live_models.ModelLog`), read with the fast reader from each partition's
start to its end, with each record's broker time. No models topic: no models."""

from __future__ import annotations

import asyncio
from typing import Any

from selector.live_models import ModelLog
from stream.adapters.kafka_reader import Range, open_consumer, read_ranges
from stream.handlers.models import MODELS_TOPIC
from stream.replay.ranges import topic_ranges
from stream.settings import Settings

__all__ = ["model_ranges", "read_models"]
Ranges = dict[tuple[str, int], Range]


def model_ranges(settings: Settings) -> Ranges:
    """Each partition of the models topic, start to end (none when there is no topic)."""
    topic = settings.topic(MODELS_TOPIC)
    try:
        found = asyncio.run(topic_ranges(settings, topic))
    except ValueError:  # no such topic: no models
        return {}
    return {(topic, p): r for p, r in found.items()}


def read_models(settings: Settings, ranges: Ranges, log: ModelLog, progress: Any) -> None:
    """The model records in `ranges` into `log`, in offset order per partition."""

    def on_run(_topic: str, _partition: int, run: list[Any]) -> None:
        for m in run:
            log.add(m.key(), m.value(), m.timestamp()[1] / 1000.0)

    consumer = open_consumer(settings, f"{settings.app_id}-report")
    try:
        read_ranges(consumer, ranges, on_run, progress)
    finally:
        consumer.close()
