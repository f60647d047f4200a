"""The Redis stores on a real Redis: the dedup record holds the first position of an event
id per account and event kind, marks tell a Redis that lost its records, and every call
gives up within the timeout when Redis is frozen."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from stream.adapters.redis_store import RedisCooldowns, RedisDedup, redis_client
from stream.handlers.stores import RecordsLost, dedup_key
from stream.local.redis import RedisServer
from stream.settings import Settings

pytestmark = pytest.mark.integration


async def test_dedup_is_per_account_and_kind_and_tells_a_redelivery_from_a_duplicate(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    dedup = RedisDedup(client, ttl_seconds=60)
    account = f"acct-{uuid.uuid4().hex[:8]}"
    try:
        first = await dedup.duplicates(
            [account, account, account],
            ["send", "click", "send"],
            ["e1", "e1", "e2"],
            ["sends:0:5", "clicks:0:9", "sends:0:6"],
        )
        assert first == [False, False, False]  # a click may share a send's event id
        again = await dedup.duplicates(
            [account, account, "other"],
            ["send", "send", "send"],
            ["e1", "e1", "e1"],
            ["sends:0:5", "sends:0:7", "sends:1:5"],
        )
        assert again == [False, True, False]  # re-delivery, true duplicate, other account
        assert await client.get(dedup_key(account, "click", "e1")) == b"clicks:0:9"
        assert 0 < await client.ttl(dedup_key(account, "send", "e1")) <= 60
    finally:
        await client.aclose()


async def test_deployments_with_their_own_key_prefix_share_a_redis(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    blue, green = RedisDedup(client, 60, prefix="blue:"), RedisDedup(client, 60, prefix="green:")
    blue_cooldowns = RedisCooldowns(client, prefix="blue:")
    green_cooldowns = RedisCooldowns(client, prefix="green:")
    account = f"acct-{uuid.uuid4().hex[:8]}"
    try:
        assert await blue.duplicates([account], ["send"], ["e1"], ["sends:0:1"]) == [False]
        assert await green.duplicates([account], ["send"], ["e1"], ["sends:0:9"]) == [False]
        assert await blue.duplicates([account], ["send"], ["e1"], ["sends:0:9"]) == [True]
        assert await client.get(dedup_key(account, "send", "e1", "green:")) == b"sends:0:9"
        await blue_cooldowns.record([(account, "x1", "c1", 100.0, 60.0)])
        assert await blue_cooldowns.last_sent([(account, "x1")]) == [{"c1": 100.0}]
        assert await green_cooldowns.last_sent([(account, "x1")]) == [{}]
    finally:
        await client.aclose()


async def test_marked_dedup_notices_lost_records_and_a_refill_marks_only_its_own_server(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"p{uuid.uuid4().hex[:8]}:"
    dedup = RedisDedup(client, 60, prefix, marked=True)
    account = f"acct-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(RecordsLost) as lost:
            await dedup.duplicates([account], ["send"], ["e9"], ["sends:3:40"])
        assert lost.value.partitions == ("sends:3",)
        token = await dedup.begin("sends:3")
        await dedup.forget([(account, "send", "e9")])
        await dedup.restore([(account, "send", "e1", "sends:3:7", 30.0)])
        await dedup.restore([(account, "send", "e1", "sends:3:9", 30.0)])  # first one wins
        assert await dedup.finish("sends:3", "another-token") is False
        assert await dedup.finish("sends:3", token) is True
        flags = await dedup.duplicates(
            [account] * 2, ["send"] * 2, ["e1", "e9"], ["sends:3:41", "sends:3:40"]
        )
        assert flags == [True, False]
        assert 0 < await client.ttl(dedup_key(account, "send", "e1", prefix)) <= 30
        await client.delete(f"{prefix}dd-mark:sends:3")  # as after a restart without data
        with pytest.raises(RecordsLost):
            await dedup.duplicates([account], ["send"], ["e1"], ["sends:3:41"])
    finally:
        await client.aclose()


async def test_every_call_gives_up_within_the_timeout_on_a_frozen_redis(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        settings = Settings(redis_url=server.url, redis_timeout_seconds=0.2)
        client = redis_client(settings)
        cooldowns = RedisCooldowns(client)
        assert await cooldowns.last_sent([("a", "x")]) == [{}]
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(
                    (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError)
                ):
                    await cooldowns.last_sent([("a", "x")])
                assert time.monotonic() - started < 1.0  # 0.2 s, never retried
        finally:
            os.kill(server.pid, signal.SIGCONT)
        await client.aclose()


async def test_cooldowns_are_written_and_read_for_a_whole_batch_in_one_call(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    cooldowns = RedisCooldowns(client, prefix=f"t{uuid.uuid4().hex[:6]}:")
    try:
        assert await cooldowns.last_sent([]) == []
        await cooldowns.record(
            [
                ("a", "x", "c1", 100.5, 60.0),
                ("a", "x", "c2", 101.0, 60.0),
                ("a", "y", "c1", 102.0, 0.0),  # no cooldown: nothing to keep
                ("b", "x", "c3", 103.0, 3600.0),
            ]
        )
        found = await cooldowns.last_sent([("a", "x"), ("a", "y"), ("b", "x"), ("a", "z")])
        assert found == [{"c1": 100.5, "c2": 101.0}, {}, {"c3": 103.0}, {}]
        keys = await client.keys(f"{cooldowns._prefix}*")
        ttls = sorted([await client.ttl(k) for k in keys])
        assert len(ttls) == 2 and 0 < ttls[0] <= 60 and 60 < ttls[1] <= 3600
    finally:
        await client.aclose()
