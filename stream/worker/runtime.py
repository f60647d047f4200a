"""What the agents share in a worker process: metrics (ours and Faust's sensors, in one
registry), the Redis stores, the services, and the gauges refreshed by a timer.

Built on first use inside the worker's event loop (the Redis client binds to it). The
Redis stores are guarded: cooldowns fall back to this worker's own record while Redis does
not answer (`stream.handlers.cooldowns`), and event dedup waits for it and refills what a
restarted Redis lost from the event topics (`stream.handlers.dedup`). When
`CS_COOLDOWN_STORE=memory` the cooldown and dedup stores are in-process, for a demo
without Redis; the worker logs a warning because they are lost on restart.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from selector.sendtime import AccountSendTime
from stream.adapters.dedup_history import TopicHistory
from stream.adapters.kafka_config import kafka_config
from stream.adapters.profile_store import RedisContactState, RedisProfiles
from stream.adapters.redis_sendtime import RedisSendTimeStore
from stream.adapters.redis_store import RedisDedup, redis_client
from stream.adapters.topic_specs import ClusterTopics
from stream.handlers.catalog import Catalogs
from stream.handlers.cooldowns import GuardedCooldowns
from stream.handlers.custom_values import CustomWriter
from stream.handlers.dedup import GuardedDedup
from stream.handlers.ingestion import IngestionService
from stream.handlers.models import ModelBook
from stream.handlers.profiles import (
    CooldownsWithProfiles,
    MemoryProfiles,
    ProfileFolder,
    ProfileStore,
)
from stream.handlers.reply_to import ReplyPolicy
from stream.handlers.selection import SelectionService
from stream.handlers.sendtime import DEFAULT_SETTINGS, SendTimeService, uniform_prior
from stream.handlers.sendtime_learning import SendTimeLearner
from stream.handlers.sendtime_priors import PriorBook
from stream.handlers.sendtime_selection import selections_of
from stream.handlers.sendtime_store import MemorySendTimeStore, SendTimeStore
from stream.handlers.stores import CooldownStore, DedupStore, MemoryCooldowns, MemoryDedup
from stream.ops.health import Reachability
from stream.ops.lag import LagGauge
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.worker.app import app, settings
from stream.worker.delivery import ConfirmedTable, Jump
from stream.worker.sensors import faust_monitor
from stream.worker.tables import account_to_catalog, account_to_stats
from stream.worker.topics import CONSUMED_TOPICS, OUTCOME_KINDS, SENDTIME_EVENT_KINDS

log = logging.getLogger(__name__)

metrics = Metrics().start_series()
NO_SEND_TIME = AccountSendTime(DEFAULT_SETTINGS)
app.monitor = faust_monitor(metrics.registry)


class Runtime:
    def __init__(self) -> None:
        self._selection: SelectionService | None = None
        self._ingestion: IngestionService | None = None
        self._stores: tuple[CooldownStore, DedupStore] | None = None
        self._profiles: ProfileFolder | None = None
        self._custom: CustomWriter | None = None  # set with the profile store
        self._sendtime: tuple[SendTimeService, SendTimeLearner] | None = None
        self.redis: RedisDedup | None = None  # for the background probe
        # one decoded catalog per account and change, shared by both services
        self.catalogs = Catalogs(account_to_catalog.get)
        # every account's newest promoted model (stream.worker.agents.load_models)
        self.models = ModelBook(metrics.model)
        # every account's newest fitted send-time prior (agents.load_send_time_priors)
        self.priors = PriorBook(lambda outcome: metrics.sendtime.prior_loads.labels(outcome).inc())
        self.reachability = Reachability()
        if settings.cooldown_store == "memory":
            self.reachability.not_used("redis")
        # which reply topics exist (stream.handlers.reply_to), asked of the cluster
        self.cluster_topics = ClusterTopics(settings)

    def stores(self) -> tuple[CooldownStore, DedupStore]:
        if self._stores is None:
            if settings.cooldown_store == "memory":
                log.warning(
                    "CS_COOLDOWN_STORE=memory: cooldowns and event dedup live in this process "
                    "only and are lost on restart; use Redis in production"
                )
                profiles = MemoryProfiles()
                self._stores = (CooldownsWithProfiles(MemoryCooldowns(), profiles), MemoryDedup())
                self._profiles = self._folder(profiles)
            else:
                self._stores = self._redis_stores()
        return self._stores

    def _folder(self, store: ProfileStore) -> ProfileFolder:
        counter = metrics.model.profile_events
        values = metrics.model.custom_values
        self._custom = CustomWriter(
            store,
            retention_seconds=settings.profile_retention_days * 86400.0,
            timeout=settings.redis_timeout_seconds,
            on_outcome=lambda outcome, count: values.labels(outcome).inc(count),
        )
        return ProfileFolder(
            store,
            retention_seconds=settings.profile_retention_days * 86400.0,
            on_outcome=lambda outcome, count: counter.labels(outcome).inc(count),
        )

    def _redis_stores(self) -> tuple[GuardedCooldowns, GuardedDedup]:
        client = redis_client(settings)
        prefix, ttl = settings.redis_key_prefix, settings.dedup_ttl_seconds
        self.redis = RedisDedup(client, ttl, prefix, marked=True)
        limits = codec.Limits(
            settings.max_message_bytes,
            max_revenue=settings.max_revenue,
            max_future_seconds=settings.max_future_seconds,
        )
        self._profiles = self._folder(RedisProfiles(client, prefix))
        cooldowns = GuardedCooldowns(
            RedisContactState(client, prefix),
            metrics,
            timeout=settings.redis_timeout_seconds,
            max_contacts=settings.cooldown_memory_contacts,
        )
        dedup = GuardedDedup(
            self.redis,
            metrics,
            kinds=OUTCOME_KINDS,
            creatives=self._creatives,
            history=TopicHistory(settings, OUTCOME_KINDS, limits),
            ttl_seconds=ttl,
        )
        return cooldowns, dedup

    def _creatives(self, key: bytes) -> frozenset[str] | None:
        catalog = self.catalogs.get(key)
        return catalog.creative_ids if catalog is not None else None

    def states(self) -> tuple[str, str]:
        """(cooldowns: exact | degraded, dedup: ok | waiting | refilling)."""
        cooldowns, dedup = self._stores or (None, None)
        return (
            cooldowns.state if isinstance(cooldowns, GuardedCooldowns) else "exact",
            dedup.state if isinstance(dedup, GuardedDedup) else "ok",
        )

    @property
    def selection(self) -> SelectionService:
        if self._selection is None:
            self._selection = SelectionService(
                catalog=self.catalogs.get,
                stats=account_to_stats.get,
                cooldowns=self.stores()[0],
                metrics=metrics,
                responses_topic=settings.topic("selection-responses"),
                dead_letters_topic=settings.topic("dead-letters"),
                max_message_bytes=settings.max_message_bytes,
                reply_policy=ReplyPolicy.from_settings(settings),
                reply_topics=self.cluster_topics,
                reply_check_seconds=settings.reply_topic_check_seconds,
                reply_cache_seconds=settings.reply_topic_cache_seconds,
                models=self.models.get,
                custom=self._custom,
            )
        return self._selection

    @property
    def ingestion(self) -> IngestionService:
        if self._ingestion is None:
            self._ingestion = IngestionService(
                kinds=OUTCOME_KINDS,
                catalog=self.catalogs.get,
                stats=account_to_stats.get,
                dedup=self.stores()[1],
                metrics=metrics,
                dead_letters_topic=settings.topic("dead-letters"),
                max_message_bytes=settings.max_message_bytes,
                max_revenue=settings.max_revenue,
                max_future_seconds=settings.max_future_seconds,
                profiles=self._profiles,
            )
        return self._ingestion

    def send_times(self) -> tuple[SendTimeService, SendTimeLearner]:
        """The send-time service and learner, sharing one store (Redis unless
        `CS_COOLDOWN_STORE=memory`)."""
        if self._sendtime is None:
            store: SendTimeStore = (
                MemorySendTimeStore()
                if settings.cooldown_store == "memory"
                else RedisSendTimeStore(redis_client(settings), settings.redis_key_prefix)
            )
            service = SendTimeService(
                store=store,
                metrics=metrics,
                responses_topic=settings.topic("send-time-responses"),
                dead_letters_topic=settings.topic("dead-letters"),
                max_message_bytes=settings.max_message_bytes,
                reply_policy=replace(
                    ReplyPolicy.from_settings(settings),
                    default_topic=settings.topic("send-time-responses"),
                ),
                reply_topics=self.cluster_topics,
                reply_check_seconds=settings.reply_topic_check_seconds,
                reply_cache_seconds=settings.reply_topic_cache_seconds,
                settings_for=lambda account: self.send_time(account).settings,
                hours_for=lambda account, campaign: self.send_time(account).hours_for(campaign),
                prior_for=lambda account, s: (
                    self.priors.for_account(account, s) or uniform_prior(s.cells)
                ),
                select=selections_of(self.selection),
            )
            learner = SendTimeLearner(
                store=store,
                metrics=metrics,
                kinds=SENDTIME_EVENT_KINDS,
                record_ttl=settings.dedup_ttl_seconds,
                max_message_bytes=settings.max_message_bytes,
                settings_for=lambda account: self.send_time(account).settings,
                learns=self._learns(),
            )
            self._sendtime = (service, learner)
        return self._sendtime

    def _learns(self) -> Callable[[str], bool] | None:
        """Whose events the send-time learner folds (`CS_SENDTIME_LEARNING`); None: all."""
        if settings.sendtime_learning == "declared":
            return lambda account: self.send_time(account).declared
        if settings.sendtime_learning == "off":
            return lambda account: False
        return None

    def send_time(self, account_id: str) -> AccountSendTime:
        """The account's send-time settings from its catalog in force (the defaults for an
        account without one)."""
        catalog = self.catalogs.get(account_id.encode())
        return catalog.send_time if catalog is not None else NO_SEND_TIME


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


async def read_missing(jump: Jump) -> list[Incoming]:
    """The messages a jump skipped, read straight from their partition; fewer when
    retention has removed some. A failure to read stops the worker without a commit,
    like a crash, so that the next one reads them."""
    tp = TopicPartition(jump.topic, jump.partition)
    consumer = AIOKafkaConsumer(
        **kafka_config(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # what retention removed is gone; read the rest
    )
    deadline = time.monotonic() + 60.0
    try:
        await consumer.start()
        consumer.assign([tp])
        consumer.seek(tp, jump.expected)
        found: list[Incoming] = []
        while await consumer.position(tp) < jump.got:
            if time.monotonic() > deadline:
                raise TimeoutError(str(jump))
            for r in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if jump.expected <= r.offset < jump.got:
                    found.append(Incoming(r.value, r.key, r.topic, r.partition, r.offset))
    except Exception:
        log.critical("cannot read the messages skipped at %s; exiting without a commit", jump)
        logging.shutdown()
        os._exit(EXIT_MESSAGES_DROPPED)
    finally:
        await consumer.stop()
    log.warning("read %d skipped messages again: %s", len(found), jump)
    metrics.skipped_messages_read.inc(len(found))
    return found


def incoming(event: Any) -> Incoming:
    msg = event.message
    return Incoming(msg.value, msg.key, msg.topic, msg.partition, msg.offset)
