"""The send-time state on Redis (`stream.handlers.sendtime_store` describes the keys).

Reads are one round trip of `MGET`s of every key a batch needs (`READ_CHUNK` keys each,
so no reply takes longer to read than the client's timeout); a learning batch's writes
are one Lua script call (`_WRITE`), which Redis runs atomically, so its slot counts and
send records are stored together or not at all (the learner bounds a batch's size:
`stream.handlers.sendtime_learning.MAX_EVENTS`). A few commands each way cost the client a
few requests to encode and replies to parse, where a pipeline of per-key commands cost one
of each per key (on a single Redis server; on a cluster the keys would have to share a
slot). Slot counts live `SLOTS_TTL_SECONDS` past their last write: a contact sent
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
READ_CHUNK = 10_000  # keys per MGET: each reply is read within the client's timeout
# ARGV[1]: keys to set (the first of KEYS), ARGV[2]: how many of those are slot counts
# (first, kept ARGV[3] seconds; the rest ARGV[4] seconds), then their values; the keys
# after those to set are deleted.
_WRITE = """
local sets, slots = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, sets do
  redis.call('SET', KEYS[i], ARGV[i + 4], 'EX', i <= slots and ARGV[3] or ARGV[4])
end
for i = sets + 1, #KEYS do redis.call('DEL', KEYS[i]) end
return #KEYS
"""


class RedisSendTimeStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix
        self._write = client.register_script(_WRITE)

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
        if len(keys) <= READ_CHUNK:
            values: list[Blob] = await self._redis.mget(keys)  # type: ignore[assignment]
        else:  # one round trip still, but no reply so long it outlasts the timeout
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(keys), READ_CHUNK):
                pipe.mget(keys[start : start + READ_CHUNK])
            values = [v for chunk in await pipe.execute() for v in chunk]
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
        p = self._prefix
        keys = [slots_key(a, c, p) for a, c in changes.slots]
        keys += [send_key(a, e, p) for a, e in changes.sends]
        keys += [early_key(a, e, p) for a, e in changes.early]
        values = [*changes.slots.values(), *changes.sends.values(), *changes.early.values()]
        keys += [early_key(a, e, p) for a, e in changes.counted]
        head = [len(values), len(changes.slots), SLOTS_TTL_SECONDS, max(1, send_ttl)]
        await self._write(keys=keys, args=[*head, *values])
