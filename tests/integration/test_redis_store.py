"""The dedup store on a real Redis: the record holds the first position of an event id
per account and event kind."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from stream.adapters.redis_store import RedisCooldowns, RedisDedup
from stream.handlers.stores import dedup_key

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
