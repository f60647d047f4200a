"""The send-time store on a real Redis: a learning batch reads every key in one MGET and
writes in one script call (each key with its TTL, counted early clicks deleted) that
another client sees whole or not at all, and that still runs after Redis forgot its
scripts; the learner on Redis stores the same bytes as on the in-process store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis.asyncio as aioredis

from stream.adapters import redis_sendtime
from stream.adapters.redis_sendtime import SLOTS_TTL_SECONDS, RedisSendTimeStore
from stream.handlers.sendtime_learning import SendTimeLearner
from stream.handlers.sendtime_store import (
    Changes,
    MemorySendTimeStore,
    early_key,
    send_key,
    slots_key,
    zone_key,
)
from stream.ops.metrics import Metrics
from stream.wire.envelope import Incoming

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")


async def test_a_batch_reads_and_writes_every_kind_of_key_with_its_ttl(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    store = RedisSendTimeStore(client, prefix)
    try:
        empty = await store.for_learning([], [])
        assert (empty.slots, empty.zones, empty.records, empty.early) == ([], [], [], [])
        await client.set(zone_key("a", "x", prefix), b"Europe/Berlin")
        await client.set(early_key("a", "gone", prefix), b"old")
        await store.write(
            Changes(
                {("a", "x"): b"slots-x", ("b", "y"): b"slots-y"},
                {("a", "s1"): b"rec-1"},
                {("a", "s2"): b"early-2"},
                [("a", "gone")],
            ),
            send_ttl=600,
        )
        read = await store.for_learning(
            [("a", "x"), ("a", "none"), ("b", "y")], [("a", "s1"), ("a", "s2"), ("a", "gone")]
        )
        assert read.slots == [b"slots-x", None, b"slots-y"]
        assert read.zones == [b"Europe/Berlin", None, None]
        assert read.records == [b"rec-1", None, None]
        assert read.early == [None, b"early-2", None]
        slots_ttl = await client.ttl(slots_key("b", "y", prefix))
        assert SLOTS_TTL_SECONDS - 60 < slots_ttl <= SLOTS_TTL_SECONDS
        assert 500 < await client.ttl(send_key("a", "s1", prefix)) <= 600
        assert 500 < await client.ttl(early_key("a", "s2", prefix)) <= 600
        assert await client.exists(early_key("a", "gone", prefix)) == 0
        await client.script_flush()  # as after a restart: the script is loaded again
        await store.write(Changes({("a", "x"): b"slots-x2"}), send_ttl=0)
        assert await client.get(slots_key("a", "x", prefix)) == b"slots-x2"
    finally:
        await client.aclose()


async def test_a_read_of_many_keys_comes_back_whole_and_in_order(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_sendtime, "READ_CHUNK", 3)
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    store = RedisSendTimeStore(client, prefix)
    try:
        pairs = [("a", f"c{i}") for i in range(5)]
        sends = [("a", f"s{i}") for i in range(4)]
        await store.write(
            Changes({p: f"v{i}".encode() for i, p in enumerate(pairs) if i % 2},
                    {k: f"r{i}".encode() for i, k in enumerate(sends) if i != 1},
                    {("a", "s1"): b"e1"}),
            send_ttl=60,
        )  # fmt: skip
        read = await store.for_learning(pairs, sends)
        assert read.slots == [None, b"v1", None, b"v3", None] and read.zones == [None] * 5
        assert read.records == [b"r0", None, b"r2", b"r3"]
        assert read.early == [None, b"e1", None, None]
    finally:
        await client.aclose()


async def test_another_client_sees_a_batchs_writes_whole_or_not_at_all(redis_url: str) -> None:
    client, reader = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    store = RedisSendTimeStore(client, prefix)
    n = 30_000
    first, last = slots_key("a", "c0", prefix), send_key("a", f"s{n - 1}", prefix)
    seen: list[tuple[bool, bool]] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            a, b = await reader.mget([first, last])
            seen.append((a is not None, b is not None))

    try:
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.05)
        changes = Changes(
            {("a", f"c{i}"): b"s" * 40 for i in range(n)},
            {("a", f"s{i}"): b"r" * 20 for i in range(n)},
        )
        await store.write(changes, send_ttl=600)
        await asyncio.sleep(0.05)
        done.set()
        await watcher
        assert (False, False) in seen and (True, True) in seen
        assert set(seen) <= {(False, False), (True, True)}  # never one without the other
    finally:
        await client.aclose()
        await reader.aclose()


def _events(contact: str, days: int) -> list[Incoming]:
    """Sends at 09:15 and 19:15 Berlin time, the evening ones clicked; a few clicks
    read before their sends."""
    sends, clicks = [], []
    for d in range(days):
        for hour in (9, 19):
            t = datetime(2026, 2, 1 + d, hour, 15, tzinfo=BERLIN).timestamp()
            sid = f"{contact}-{d}-{hour}"
            doc = {"schema": "send.v1", "event_id": sid, "account_id": "acme",
                   "campaign_id": "news", "contact_id": contact, "creative_id": "c1",
                   "time": t}  # fmt: skip
            sends.append(Incoming(orjson.dumps(doc), b"acme", "sends", 0, len(sends)))
            if hour == 19:
                doc = {"schema": "click.v1", "event_id": f"k-{sid}", "account_id": "acme",
                       "contact_id": contact, "creative_id": "c1", "time": t + 600,
                       "send_event_id": sid}  # fmt: skip
                clicks.append(Incoming(orjson.dumps(doc), b"acme", "clicks", 0, len(clicks)))
    return clicks[:2] + sends + clicks[2:]


async def test_the_learner_stores_the_same_bytes_on_redis_as_in_process(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    memory = MemorySendTimeStore()
    kinds = {"sends": "send", "clicks": "click"}
    on_redis = SendTimeLearner(
        store=RedisSendTimeStore(client, prefix), metrics=Metrics(), kinds=kinds, record_ttl=600
    )
    in_process = SendTimeLearner(store=memory, metrics=Metrics(), kinds=kinds, record_ttl=600)
    try:
        events = _events("ct-1", 4) + _events("ct-2", 3)
        for part in (events[:5], events[5:], events):  # the last one: all re-delivered
            assert await on_redis.learn(part) == await in_process.learn(part)
        keys = [k.decode() for k in await client.keys(f"{prefix}*")]
        found = {k[len(prefix) :]: await client.get(k) for k in keys}
        assert found == memory.data and any(k.startswith("st:slots:") for k in found)
    finally:
        await client.aclose()
