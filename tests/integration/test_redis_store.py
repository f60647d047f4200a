"""The dedup store on a real Redis: the record holds the first position of an event id
per account and event kind."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from stream.redis_store import RedisDedup, dedup_key

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
