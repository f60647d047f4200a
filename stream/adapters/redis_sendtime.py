"""The send-time state on Redis (`stream.handlers.sendtime_store` describes the keys).

Reads are one `MGET` of every key a batch needs (one command to encode and one reply to
parse, where a pipeline of GETs cost one of each per key); a learning batch's writes are
one MULTI/EXEC transaction, so its slot counts and send records are stored together or not
at all. Slot counts live `SLOTS_TTL_SECONDS` past their last write: a contact sent
nothing for that long has no history left to keep (the counts keep one year).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from stream.handlers.sendtime_store import (
    Blob,
    Changes,
    Learned,
    Pair,
    SendKey,
    early_key,
    send_key,
    slots_key,
    zone_key,
)

SLOTS_TTL_SECONDS = 400 * 86_400


class RedisSendTimeStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix

    async def slots(self, pairs: Sequence[Pair]) -> list[Blob]:
        if not pairs:
            return []
        keys = [slots_key(a, c, self._prefix) for a, c in pairs]
        values: list[Blob] = await self._redis.mget(keys)  # type: ignore[assignment]
        return values

    async def for_learning(self, pairs: Sequence[Pair], sends: Sequence[SendKey]) -> Learned:
        if not pairs and not sends:
            return Learned([], [], [], [])
        p = self._prefix
        keys = [slots_key(a, c, p) for a, c in pairs]
        keys += [zone_key(a, c, p) for a, c in pairs]
        keys += [send_key(a, e, p) for a, e in sends]
        keys += [early_key(a, e, p) for a, e in sends]
        values: list[Blob] = await self._redis.mget(keys)  # type: ignore[assignment]
        n, m = len(pairs), len(sends)
        return Learned(
            values[:n], values[n : 2 * n], values[2 * n : 2 * n + m], values[2 * n + m :]
        )

    async def remember_zones(self, rows: Sequence[tuple[str, str, str]], ttl: int) -> None:
        if not rows:
            return
        pipe = self._redis.pipeline(transaction=False)
        for account, contact, zone in rows:
            pipe.set(zone_key(account, contact, self._prefix), zone, ex=max(1, ttl))
        await pipe.execute()

    async def write(self, changes: Changes, send_ttl: int) -> None:
        if not changes:
            return
        p, ttl = self._prefix, max(1, send_ttl)
        pipe = self._redis.pipeline(transaction=True)
        for (account, contact), value in changes.slots.items():
            pipe.set(slots_key(account, contact, p), value, ex=SLOTS_TTL_SECONDS)
        for (account, event_id), value in changes.sends.items():
            pipe.set(send_key(account, event_id, p), value, ex=ttl)
        for (account, event_id), value in changes.early.items():
            pipe.set(early_key(account, event_id, p), value, ex=ttl)
        for account, event_id in changes.counted:
            pipe.delete(early_key(account, event_id, p))
        await pipe.execute()
