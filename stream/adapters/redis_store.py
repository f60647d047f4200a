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

import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis

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


Pair = tuple[str, str]  # (account_id, contact_id)
Sent = tuple[str, str, str, float, float]  # (account_id, contact_id, creative_id, time, ttl)


class CooldownStore(Protocol):
    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        """Per (account, contact): creative_id -> time of its last send."""

    async def record(self, sends: Sequence[Sent]) -> None:
        """Remember sends; each entry lives `ttl` seconds (the account's cooldown)."""


class DedupStore(Protocol):
    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        """True where the event id of that kind was first seen at another position."""


def _cooldown_key(account_id: str, contact_id: str, prefix: str = "") -> str:
    return f"{prefix}cd:{account_id}:{contact_id}"


def dedup_key(account_id: str, kind: str, event_id: str, prefix: str = "") -> str:
    """`prefix` is `CS_REDIS_KEY_PREFIX`: deployments sharing a Redis keep apart."""
    return f"{prefix}dd:{account_id}:{kind}:{event_id}"


class RedisCooldowns:
    """Hash per (account, contact): creative_id -> time of the last send."""

    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        pipe = self._redis.pipeline(transaction=False)
        for account_id, contact in pairs:
            pipe.hgetall(_cooldown_key(account_id, contact, self._prefix))
        rows = await pipe.execute()
        return [{k.decode(): float(v) for k, v in row.items()} if row else {} for row in rows]

    async def record(self, sends: Sequence[Sent]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        count = 0
        for account_id, contact, creative, when, ttl in sends:
            if ttl <= 0:
                continue
            key = _cooldown_key(account_id, contact, self._prefix)
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


class MemoryCooldowns:
    """In-process cooldowns for a demo without Redis: lost on restart, one worker only."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, dict[str, float]]] = {}

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        now = time.monotonic()
        out = []
        for account_id, contact in pairs:
            entry = self._data.get(_cooldown_key(account_id, contact))
            out.append(dict(entry[1]) if entry and entry[0] > now else {})
        return out

    async def record(self, sends: Sequence[Sent]) -> None:
        for account_id, contact, creative, when, ttl in sends:
            key = _cooldown_key(account_id, contact)
            _, current = self._data.get(key, (0.0, {}))
            self._data[key] = (time.monotonic() + ttl, {**current, creative: when})


class MemoryDedup:
    """In-process dedup for a demo without Redis."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        out = []
        rows = zip(account_ids, kinds, event_ids, positions, strict=True)
        for account, kind, event_id, position in rows:
            first = self._seen.setdefault(dedup_key(account, kind, event_id), position)
            out.append(first != position)
        return out
