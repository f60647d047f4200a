"""The models topic in the live report: every version of the accounts' contextual models
on it (`selector.live_models.ModelLog`), read with the fast reader from each partition's
start to its end, with each record's broker time. No models topic: no models.

For the counterfactual "all automated traffic to the model method"
(`selector.live_model_ope`), `model_evidence` gives each account with a model version
and a catalog its versions (each in force from its record time) and its events, read
from the event topics whole as the training job reads them (`stream.job.train_io`), so
that each send's profile can be rebuilt as it stood.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from selector.live_model_ope import ModelEvidence
from selector.live_models import ModelLog
from stream.adapters.kafka_reader import Range, open_consumer, read_ranges
from stream.handlers.catalog import AccountCatalog
from stream.handlers.models import MODELS_TOPIC
from stream.job.train_io import read_events
from stream.replay.ranges import topic_ranges
from stream.settings import Settings

__all__ = ["model_evidence", "model_ranges", "read_models"]
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


def model_evidence(
    settings: Settings,
    log: ModelLog,
    catalogs: Mapping[str, AccountCatalog],
    automated: Collection[str],
) -> dict[str, ModelEvidence]:
    """Per account of `automated` (those with automated rows) with model versions and a
    catalog: its versions and events (the event topics are not read when there is none)."""
    accounts = {a: c.account for a, c in catalogs.items() if c.account is not None}
    wanted = {a: accounts[a] for a in log.versions if a in accounts and a in automated}
    if not wanted:
        return {}
    creatives = {a: {c.creative_id for c in account.creatives} for a, account in wanted.items()}
    events, _ = read_events(settings, creatives)
    return {
        a: ModelEvidence(
            account, tuple((v.record_time, v.model) for v in log.versions[a]), events[a]
        )
        for a, account in wanted.items()
    }
