"""`topics create` and `publish-catalog` against a real broker: every topic with its
cleanup policy, and the example catalog read back, decoded, keyed and co-partitioned."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from stream.adapters.catalog_files import account_messages, publish_catalog_file
from stream.adapters.kafka_config import kafka_config
from stream.adapters.producer import partition_for
from stream.adapters.topic_specs import all_topics, describe_topics, ensure_topics
from stream.commands import topics
from stream.job.cut import read_catalog, read_catalog_history
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import TOPICS, Kind

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "catalogs" / "example.yaml"
CATALOG_KINDS: tuple[Kind, ...] = ("offers", "creatives", "campaigns", "account_settings")


def fresh_settings(bootstrap: str, partitions: int = 6) -> Settings:
    """Settings whose topics (the tables' changelogs, named after the app id, included) no
    other test uses."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"t{tag}.",
        partitions=partitions,
        app_id=f"cs-{tag}",
    )


async def read_all(settings: Settings, topic_names: list[str]) -> list[ConsumerRecord]:
    """Every record of the topics, from the beginning up to their current end."""
    states = await describe_topics(settings, topic_names)
    partitions = [TopicPartition(t, p) for t in topic_names for p in range(states[t].partitions)]
    consumer = AIOKafkaConsumer(**kafka_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(20):
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_topics_create_makes_every_topic_once_with_its_cleanup_policy(
    kafka_bootstrap: str,
) -> None:
    settings = fresh_settings(kafka_bootstrap, partitions=3)
    out = io.StringIO()
    created = await topics.create(settings, out)
    specs = all_topics(settings)
    assert sorted(created) == sorted(spec.name for spec in specs) and len(specs) == 19
    assert out.getvalue().splitlines()[-1] == "19 created, 0 already existed"
    assert await topics.create(settings, io.StringIO()) == []  # idempotent

    states = await describe_topics(settings, [spec.name for spec in specs])
    for spec in specs:
        expected = "compact" if spec.compacted else "delete"
        assert (states[spec.name].partitions, states[spec.name].cleanup_policy) == (3, expected)
    compacted = {spec.name for spec in specs if spec.compacted}
    prefix = settings.topic_prefix
    assert compacted == {
        f"{prefix}{name}"
        for name in (
            "catalog-account-settings",
            "catalog-campaigns",
            "catalog-creatives",
            "catalog-offers",
            "models",
            "send-time-priors",
            "thompson-params",
        )
    } | {
        f"{settings.app_id}-{table}-changelog"
        for table in ("account-to-stats", "account-to-catalog", "partition-to-answers")
    }
    listing = io.StringIO()
    assert await topics.show(settings, listing) == 0
    assert f"{prefix}catalog-offers" in listing.getvalue() and "missing" not in listing.getvalue()


async def test_the_example_catalog_is_read_back_keyed_and_co_partitioned(
    kafka_bootstrap: str,
) -> None:
    settings = fresh_settings(kafka_bootstrap)
    await ensure_topics(settings, all_topics(settings))
    out, err = io.StringIO(), io.StringIO()
    assert await publish_catalog_file(EXAMPLE, settings, out=out, err=err) == 0, err.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("published 8 messages for 2 accounts")

    names = {settings.topic(TOPICS[kind]): kind for kind in CATALOG_KINDS}
    records = await read_all(settings, list(names))
    documents = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    expected = {d["account_id"]: account_messages(d)[1] for d in documents}
    seen: dict[str, dict[str, ConsumerRecord]] = defaultdict(dict)
    for record in records:
        kind = names[record.topic]
        message = codec.decode(kind, record.value, key=record.key)
        assert not isinstance(message, codec.Rejected), message
        account_id = record.key.decode()
        assert message == expected[account_id][CATALOG_KINDS.index(kind)]
        assert record.partition == partition_for(record.key, settings.partitions)
        assert kind not in seen[account_id]
        seen[account_id][kind] = record
    assert set(seen) == {"acme-lending", "northwind-retail"}
    for parts in seen.values():
        assert set(parts) == set(CATALOG_KINDS)
        assert len({record.partition for record in parts.values()}) == 1  # co-partitioned
        # each part was acknowledged before the next was sent
        stamps = [parts[kind].timestamp for kind in CATALOG_KINDS]
        assert stamps == sorted(stamps)
    # the two example accounts land on different partitions, so the check above has teeth
    assert len({next(iter(p.values())).partition for p in seen.values()}) == 2


async def test_an_invalid_catalog_publishes_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = fresh_settings(kafka_bootstrap, partitions=2)
    await ensure_topics(settings, all_topics(settings))
    documents = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    documents[1]["campaigns"][0]["default_creative_id"] = "no-such-creative"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"accounts": documents}))
    err = io.StringIO()
    assert await publish_catalog_file(path, settings, out=io.StringIO(), err=err) == 2
    assert "account northwind-retail: campaign spring-promo.default_creative_id" in err.getvalue()
    names = [settings.topic(TOPICS[kind]) for kind in CATALOG_KINDS]
    assert await read_all(settings, names) == []


async def test_the_catalog_history_has_each_version_from_its_record_time(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_settings(kafka_bootstrap, partitions=2)
    await ensure_topics(settings, all_topics(settings))
    quiet = {"out": io.StringIO(), "err": io.StringIO()}
    assert await publish_catalog_file(EXAMPLE, settings, **quiet) == 0
    between = time.time()
    await asyncio.sleep(0.05)
    documents = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    documents[0]["creatives"][0]["status"] = "paused"  # acme-lending's loan-fast-cash
    path = tmp_path / "later.yaml"
    path.write_text(yaml.safe_dump({"accounts": documents[:1]}))
    assert await publish_catalog_file(path, settings, **quiet) == 0
    history = await asyncio.to_thread(read_catalog_history, settings, time.time())
    latest = await asyncio.to_thread(read_catalog, settings, time.time())
    assert {a: v[-1][1].account for a, v in history.items()} == {
        a: c.account for a, c in latest.items()
    }
    versions = history["acme-lending"]
    assert len(versions) == 8 and len(history["northwind-retail"]) == 4
    times = [at for at, _ in versions]
    assert times == sorted(times) and times[3] < between < times[4]

    def status(at: int) -> str | None:
        account = versions[at][1].account
        assert account is not None
        return next(c.status for c in account.creatives if c.creative_id == "loan-fast-cash")

    assert (status(3), status(7)) == ("active", "paused")
