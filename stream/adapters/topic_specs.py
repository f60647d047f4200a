"""Topics: what the service expects of each (`schemas/topics.yaml`, shipped in the package),
and the one place topics are created and described, with the settings' security, on the
local broker and on a real cluster alike."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from stream.adapters.kafka_config import kafka_config
from stream.settings import Settings

TOPICS_YAML = resources.files("stream.schemas") / "topics.yaml"


# Replication factor of the topics we create; the faust app declares its own with 1 too.
REPLICATION_FACTOR = 1


@cache
def _topic_table() -> tuple[tuple[str, bool, int | None], ...]:
    doc = yaml.safe_load(TOPICS_YAML.read_text(encoding="utf-8"))
    return tuple(
        (t["name"], t["cleanup_policy"] == "compact", t.get("max_message_bytes"))
        for t in doc["topics"]
    )


# The worker's tables (`stream.worker.tables`) and the largest value each changelog takes
# when above the broker's default: the answers table keeps a batch's responses.
ANSWERS_MAX_BYTES = 16 * 1024 * 1024
TABLES: tuple[tuple[str, int | None], ...] = (
    ("account-to-stats", None),
    ("account-to-catalog", None),
    ("partition-to-answers", ANSWERS_MAX_BYTES),
)


def changelog_topics(settings: Settings) -> list[TopicSpec]:
    """The tables' changelog topics, named as Faust names them (`<app id>-<table>-changelog`),
    compacted, with `settings.partitions` each. Created before the worker starts: a
    changelog Faust creates itself moments before the group's first assignment can be
    missing from the consumer's metadata then, and the assignment leaves its partitions
    out until the metadata is refreshed (minutes), so the table's records are not
    recovered where its partitions move."""
    return [
        TopicSpec(f"{settings.app_id}-{name}-changelog", settings.partitions, True, max_bytes)
        for name, max_bytes in TABLES
    ]


def all_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic of schemas/topics.yaml, prefixed, with `settings.partitions` each, and
    the tables' changelog topics."""
    return [
        TopicSpec(settings.topic(name), settings.partitions, compacted, max_bytes)
        for name, compacted, max_bytes in _topic_table()
    ] + changelog_topics(settings)


@asynccontextmanager
async def open_admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**kafka_config(settings))
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics of `specs` that do not exist yet; return the names created.


    Like `stream.local.kafka.create_topics` (returns once every new partition's leader
    serves; an existing topic is left as it is), but connecting with the settings'
    security, so it works on a real cluster too.
    """
    async with open_admin(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(s.name, s.partitions, REPLICATION_FACTOR, topic_configs=s.configs())
            for s in missing
        ]
        response = await admin.create_topics(new)
        created = []
        for topic, error_code, *rest in response.topic_errors:
            if error_code == 0:
                created.append(topic)
            elif error_code != TopicAlreadyExistsError.errno:  # created meanwhile elsewhere
                raise for_code(error_code)(f"creating topic {topic!r}: {rest[0] if rest else ''}")
        partitions = await _wait_for_leaders(admin, [s.name for s in missing])
    await _wait_until_leaders_serve(settings, partitions)
    return created


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0
) -> list[TopicPartition]:
    """Every partition of `names`, once metadata names a leader for each."""
    async with asyncio.timeout(timeout_s):
        while True:
            topics = await admin.describe_topics(names)
            ready = all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
                for t in topics
            )
            if ready:
                return [
                    TopicPartition(t["topic"], p["partition"])
                    for t in topics
                    for p in t["partitions"]
                ]
            await asyncio.sleep(0.1)


async def _wait_until_leaders_serve(
    settings: Settings, partitions: list[TopicPartition], timeout_s: float = 30.0
) -> None:
    """A new leader is named a moment before it serves; a producer writing in that moment
    gets NotLeaderForPartition and retries. Asking each leader for its end offset (aiokafka
    retries until they answer) closes that window before the first write."""
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    try:
        await consumer.start()
        await asyncio.wait_for(consumer.end_offsets(partitions), timeout_s)
    finally:
        await consumer.stop()


@dataclasses.dataclass(frozen=True, slots=True)
class TopicState:
    """What the cluster says about one topic."""

    name: str
    partitions: int
    cleanup_policy: str


async def describe_topics(settings: Settings, names: Iterable[str]) -> dict[str, TopicState]:
    """Partition count and cleanup policy of each topic of `names` that exists."""
    async with open_admin(settings) as admin:
        existing = set(await admin.list_topics())
        found = [name for name in names if name in existing]
        if not found:
            return {}
        described = await admin.describe_topics(found)
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, {"cleanup.policy": None})
            for name in found
        ]
        responses = await admin.describe_configs(resources)
    policies = {
        name: {entry[0]: entry[1] for entry in entries}.get("cleanup.policy", "?")
        for response in responses
        for _, _, _, name, entries in response.resources
    }
    return {
        t["topic"]: TopicState(t["topic"], len(t["partitions"]), policies.get(t["topic"], "?"))
        for t in described
    }


class ClusterTopics:
    """Which topics exist, from the cluster's metadata: the worker's check of reply topics
    (`stream.handlers.reply_to.TopicDirectory`). One request lists every topic, so asking
    never creates one on a broker with `auto.create.topics.enable`.

    Callers bound the wait (the worker: `CS_REPLY_TOPIC_CHECK_SECONDS`), and a wait cut
    short does not stop the connection being made: the admin client is started once
    (`warm_up` starts it early) and kept; after a failure the next call starts a new one.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: asyncio.Task[AIOKafkaAdminClient] | None = None

    def warm_up(self) -> None:
        """Start connecting now, so that the first check costs one metadata request."""
        self._connected()

    async def existing(self, names: Iterable[str]) -> set[str]:
        connecting = self._connected()
        admin = await asyncio.shield(connecting)
        try:
            listed = set(await admin.list_topics())
        except Exception:
            if self._admin is connecting:
                self._admin = None
            await _close_quietly(admin)
            raise
        return {name for name in names if name in listed}

    def _connected(self) -> asyncio.Task[AIOKafkaAdminClient]:
        task = self._admin
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._admin = asyncio.ensure_future(self._connect())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen, not lost
        return task

    async def _connect(self) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(**kafka_config(self._settings))
        try:
            await admin.start()
        except BaseException:
            await _close_quietly(admin)
            raise
        return admin


async def _close_quietly(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(Exception):
        await admin.close()


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to declare: name, partition count, whether it is log-compacted, and its
    largest message when above the broker's default (`max.message.bytes`)."""

    name: str
    partitions: int = 1
    compacted: bool = False
    max_message_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.name or self.partitions < 1:
            raise ValueError(f"invalid topic spec: {self!r}")

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact"} if self.compacted else {}
        if self.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs
