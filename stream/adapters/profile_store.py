"""Contact profiles in Redis: one string per (account, contact), `pf:<account>:<contact>`
under `CS_REDIS_KEY_PREFIX`, holding the profile's record (`selector.model.record`),
expiring after the profile retention without an event.

A batch is one pipelined read, and one script that writes every changed profile whose
stored value is still the one read (compare-and-set, atomic on the server), returning
the ones that changed meanwhile (`stream.handlers.profiles`). The selection reads the
profiles of a batch's contacts in the same round trip as their cooldowns
(`RedisContactState`).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from selector.model.profile import ContactProfile
from selector.model.record import decode
from stream.adapters.redis_store import RedisCooldowns
from stream.handlers.profiles import Write, profile_key
from stream.handlers.stores import Pair, cooldown_key

# ARGV holds (expected, value) per key, then the TTL; '' expects no value.
_COMPARE_AND_SET = """
local ttl = ARGV[#ARGV]
local conflicts = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  local expected = ARGV[2 * i - 1]
  if (current == false and expected == '') or current == expected then
    redis.call('SET', key, ARGV[2 * i], 'EX', ttl)
  else
    conflicts[#conflicts + 1] = i - 1
  end
end
return conflicts
"""


class RedisProfiles:
    """The profile store of `stream.handlers.profiles` on Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)

    def key(self, pair: Pair) -> str:
        return profile_key(pair[0], pair[1], self._prefix)

    async def read_profiles(self, pairs: Sequence[Pair]) -> list[bytes | None]:
        if not pairs:
            return []
        values = await self._redis.mget([self.key(p) for p in pairs])
        return [v if isinstance(v, bytes) else None for v in values]

    async def write_profiles(self, writes: Sequence[Write], ttl_seconds: float) -> list[int]:
        if not writes:
            return []
        keys = [self.key(pair) for pair, _, _ in writes]
        args: list[bytes | int] = []
        for _, expected, value in writes:
            args += [expected or b"", value]
        args.append(max(1, int(ttl_seconds)))
        conflicts = await self._compare_and_set(keys=keys, args=args)
        return [int(i) for i in conflicts]


class RedisContactState(RedisCooldowns):
    """Cooldowns and, in the same round trip, profiles."""

    async def last_sent_and_profiles(
        self, pairs: Sequence[Pair], profile_pairs: Sequence[Pair]
    ) -> tuple[list[dict[str, float]], list[bytes | None]]:
        pipe = self._redis.pipeline(transaction=False)
        for account_id, contact in pairs:
            pipe.hgetall(cooldown_key(account_id, contact, self._prefix))
        for account_id, contact in profile_pairs:
            pipe.get(profile_key(account_id, contact, self._prefix))
        replies = await pipe.execute()
        rows, blobs = replies[: len(pairs)], replies[len(pairs) :]
        last = [{k.decode(): float(v) for k, v in row.items()} if row else {} for row in rows]
        return last, blobs


async def stored_custom(
    client: aioredis.Redis, prefix: str, pairs: Sequence[Pair], chunk: int = 1000
) -> dict[Pair, tuple[float | None, ...]]:
    """The custom-field slots stored in the profiles of `pairs` (those with any), read
    `chunk` keys at a time: what the training job gives each contact's examples."""
    store = RedisProfiles(client, prefix)
    out: dict[Pair, tuple[float | None, ...]] = {}
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        for pair, blob in zip(part, await store.read_profiles(part), strict=True):
            profile = decode(blob) if blob else None
            if isinstance(profile, ContactProfile) and profile.custom:
                out[pair] = profile.custom
    return out
