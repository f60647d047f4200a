"""Contact profiles on a real Redis: the compare-and-set writes only values that did not
change since they were read (a new key only where there is none), with the retention as
TTL, and the selection's read gets cooldowns and profiles in one pipeline."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from stream.adapters.profile_store import RedisContactState, RedisProfiles

pytestmark = pytest.mark.integration


async def test_compare_and_set_writes_only_unchanged_values(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    store = RedisProfiles(client, prefix)
    a, b, c = ("acct", "u1"), ("acct", "u2"), ("acct", "u3")
    try:
        assert await store.write_profiles([(a, None, b"\x01a"), (b, None, b"\x01b")], 600) == []
        assert await store.read_profiles([a, b, c]) == [b"\x01a", b"\x01b", None]
        conflicts = await store.write_profiles(
            [
                (a, b"\x01a", b"\x01a2"),  # unchanged since read: written
                (b, b"\x01stale", b"\x01b2"),  # changed meanwhile: refused
                (c, b"\x01x", b"\x01c"),  # expected a value that is not there: refused
                (("acct", "u1x"), None, b"\x01new"),  # new key: written
            ],
            600,
        )
        assert conflicts == [1, 2]
        assert await store.read_profiles([a, b, c]) == [b"\x01a2", b"\x01b", None]
        assert await store.write_profiles([(a, None, b"\x01again")], 600) == [0]  # exists
        assert 0 < await client.ttl(store.key(a)) <= 600
    finally:
        await client.aclose()


async def test_cooldowns_and_profiles_are_read_together(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    state, profiles = RedisContactState(client, prefix), RedisProfiles(client, prefix)
    try:
        await state.record([("acct", "u1", "c1", 10.0, 60.0)])
        await profiles.write_profiles([(("acct", "u1"), None, b"\x01p")], 60)
        last, blobs = await state.last_sent_and_profiles(
            [("acct", "u1"), ("acct", "u2")], [("acct", "u1"), ("acct", "u2")]
        )
        assert last == [{"c1": 10.0}, {}] and blobs == [b"\x01p", None]
    finally:
        await client.aclose()
