"""What the agents share in a worker process: metrics (ours and Faust's sensors, in one
registry), the Redis stores, the services, and the gauges refreshed by a timer.

Built on first use inside the worker's event loop (the Redis client binds to it). When
`CS_COOLDOWN_STORE=memory` the cooldown and dedup stores are in-process, for a demo
without Redis; the worker logs a warning because they are lost on restart.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from faust.types import TP

from stream.app import app, settings
from stream.continuity import Jump
from stream.envelope import Incoming, Outgoing
from stream.faust_metrics import faust_monitor
from stream.ingestion import IngestionService
from stream.lag import LagGauge
from stream.metrics import Metrics
from stream.redis_store import (
    CooldownStore,
    DedupStore,
    MemoryCooldowns,
    MemoryDedup,
    RedisCooldowns,
    RedisDedup,
    redis_client,
)
from stream.selection import SelectionService
from stream.tables import ConfirmedTable, account_to_catalog, account_to_stats
from stream.topics import CONSUMED_TOPICS, OUTCOME_KINDS

log = logging.getLogger(__name__)

metrics = Metrics().start_series()
app.monitor = faust_monitor(metrics.registry)


class Runtime:
    def __init__(self) -> None:
        self._selection: SelectionService | None = None
        self._ingestion: IngestionService | None = None
        self._stores: tuple[CooldownStore, DedupStore] | None = None

    def stores(self) -> tuple[CooldownStore, DedupStore]:
        if self._stores is None:
            if settings.cooldown_store == "memory":
                log.warning(
                    "CS_COOLDOWN_STORE=memory: cooldowns and event dedup live in this process "
                    "only and are lost on restart; use Redis in production"
                )
                self._stores = (MemoryCooldowns(), MemoryDedup())
            else:
                client = redis_client(settings)
                self._stores = (
                    RedisCooldowns(client),
                    RedisDedup(client, settings.dedup_ttl_seconds),
                )
        return self._stores

    @property
    def selection(self) -> SelectionService:
        if self._selection is None:
            self._selection = SelectionService(
                catalog=account_to_catalog.get,
                stats=account_to_stats.get,
                cooldowns=self.stores()[0],
                metrics=metrics,
                responses_topic=settings.topic("selection-responses"),
                dead_letters_topic=settings.topic("dead-letters"),
                max_message_bytes=settings.max_message_bytes,
            )
        return self._selection

    @property
    def ingestion(self) -> IngestionService:
        if self._ingestion is None:
            self._ingestion = IngestionService(
                kinds=OUTCOME_KINDS,
                catalog=account_to_catalog.get,
                stats=account_to_stats.get,
                dedup=self.stores()[1],
                metrics=metrics,
                dead_letters_topic=settings.topic("dead-letters"),
                max_message_bytes=settings.max_message_bytes,
                max_revenue=settings.max_revenue,
                max_future_seconds=settings.max_future_seconds,
            )
        return self._ingestion


runtime = Runtime()


class Progress:
    """When each agent last finished a batch, and whether one is stuck: an agent that has
    work in hand (a batch started) but has not finished one for `stall_seconds`."""

    def __init__(self, stall_seconds: float = 60.0) -> None:
        self.stall_seconds = stall_seconds
        self._started: dict[str, float] = {}
        self._finished: dict[str, float] = {}

    def started(self, agent: str, now: float) -> None:
        self._started[agent] = now

    def finished(self, agent: str, now: float) -> None:
        self._finished[agent] = now
        self._started.pop(agent, None)

    def ages(self, now: float) -> dict[str, float]:
        return {agent: round(now - t, 3) for agent, t in self._finished.items()}

    def stalled_agents(self, now: float) -> list[str]:
        return sorted(a for a, t in self._started.items() if now - t > self.stall_seconds)

    def stalled(self, now: float) -> bool:
        return bool(self.stalled_agents(now))


progress = Progress()
consumer_lag = LagGauge(metrics, CONSUMED_TOPICS, stall_seconds=progress.stall_seconds)


async def publish(messages: list[Outgoing]) -> None:
    """Send messages through the app's producer; waits until all are buffered."""
    producer: Any = app.producer
    for m in messages:
        await producer.send(m.topic, m.key, m.value, None, None, None)


EXIT_CHANGELOG_FAILED = 75
EXIT_MESSAGES_DROPPED = 76


def committed_offset(topic: str, partition: int) -> int | None:
    """The group's committed offset the consumer started this partition from (Faust
    keeps it after seeking; None when nothing is committed yet)."""
    offsets = getattr(app.consumer, "_committed_offset", {})
    value = offsets.get(TP(topic, partition))
    return int(value) if value is not None else None


async def stop_if_dropped(jumps: list[Jump]) -> None:
    """Exit without a commit when messages that still exist were skipped (see
    `stream.continuity`); offsets gone through retention only get a warning."""
    dropped = []
    for jump in jumps:
        tp = TP(jump.topic, jump.partition)
        earliest = (await app.consumer.earliest_offsets(tp)).get(tp, 0)
        if jump.expected < earliest:
            log.warning("offsets before %s of %s are gone (retention)", earliest, tp)
        else:
            dropped.append(str(jump))
    if dropped:
        log.critical("messages skipped before the agent (%s); exiting to read them again",
                     "; ".join(dropped))  # fmt: skip
        logging.shutdown()
        os._exit(EXIT_MESSAGES_DROPPED)


async def confirm_writes(table: ConfirmedTable) -> None:
    """Wait until the batch's table writes are stored, before its events are acknowledged.

    A write the broker refused leaves the table ahead of its changelog. The process then
    stops at once, without committing, as after a crash: the batch is consumed again by
    the next worker, and the offsets in the recovered stats skip what was stored.
    """
    try:
        await table.confirm_writes()
    except Exception:
        log.critical("a changelog write of %s failed; exiting without a commit", table.name)
        logging.shutdown()
        os._exit(EXIT_CHANGELOG_FAILED)


def incoming(event: Any) -> Incoming:
    msg = event.message
    return Incoming(msg.value, msg.key, msg.topic, msg.partition, msg.offset)
