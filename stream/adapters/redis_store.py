"""Redis-backed state: per-contact cooldowns and the `event_id` dedup set.

Both are best-effort (DESIGN.md section 3): the daily job is the arbiter of counts.
Each operation over a batch is one pipelined round trip.

Dedup records store where an event was first seen ("topic:partition:offset"), so a
re-delivery of the same message after a crash (same position) is told apart from a true
upstream duplicate (same `event_id`, another position): `SET key pos NX GET` returns
the stored position, or nothing when the key was new. The key holds the event kind too:
a click and a send that share an `event_id` are different events, and since they come
from different topics the order they are seen in is not deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from stream.handlers.stores import Pair, Sent, cooldown_key, dedup_key
from stream.settings import Settings


def redis_client(settings: Settings) -> aioredis.Redis:
    kwargs: dict[str, object] = {"decode_responses": False}
    if settings.redis_password:
        kwargs["password"] = settings.redis_password.get_secret_value()
    url = settings.redis_url
    if settings.redis_tls and url.startswith("redis://"):
        url = "rediss://" + url[len("redis://") :]
    if url.startswith("rediss://") and settings.redis_tls_cafile:
        kwargs["ssl_ca_certs"] = settings.redis_tls_cafile
    return aioredis.Redis.from_url(url, **kwargs)  # type: ignore[arg-type]


class RedisCooldowns:
    """Hash per (account, contact): creative_id -> time of the last send."""

    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        pipe = self._redis.pipeline(transaction=False)
        for account_id, contact in pairs:
            pipe.hgetall(cooldown_key(account_id, contact, self._prefix))
        rows = await pipe.execute()
        return [{k.decode(): float(v) for k, v in row.items()} if row else {} for row in rows]

    async def record(self, sends: Sequence[Sent]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        count = 0
        for account_id, contact, creative, when, ttl in sends:
            if ttl <= 0:
                continue
            key = cooldown_key(account_id, contact, self._prefix)
            pipe.hset(key, creative, repr(when))
            pipe.expire(key, max(1, int(ttl)))
            count += 1
        if count:
            await pipe.execute()


class RedisDedup:
    """`event_id` -> first position seen, with a TTL."""

    def __init__(self, client: aioredis.Redis, ttl_seconds: int, prefix: str = "") -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._prefix = prefix

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        pipe = self._redis.pipeline(transaction=False)
        rows = zip(account_ids, kinds, event_ids, positions, strict=True)
        for account, kind, event_id, position in rows:
            key = dedup_key(account, kind, event_id, self._prefix)
            pipe.set(key, position, nx=True, get=True, ex=self._ttl)
        previous = await pipe.execute()
        return [
            old is not None and old.decode() != pos
            for old, pos in zip(previous, positions, strict=True)
        ]
