"""Redis-backed state: per-contact cooldowns and the `event_id` dedup set.

Both are best-effort (DESIGN.md section 3): the daily job is the arbiter of counts.
Each operation over a batch is one round trip: one Lua script call over every key of the
batch (`_READ`, `_RECORD`, `_DEDUP`), which costs the client one command to encode and
one reply to parse where a pipeline of per-key commands cost one of each per key (on a
single Redis server; a script's keys would all have to share a slot on a cluster).

Dedup records store where an event was first seen ("topic:partition:offset"), so a
re-delivery of the same message after a crash (same position) is told apart from a true
upstream duplicate (same `event_id`, another position): `SET key pos NX GET` returns
the stored position, or nothing when the key was new. The key holds the event kind too:
a click and a send that share an `event_id` are different events, and since they come
from different topics the order they are seen in is not deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from stream.handlers.stores import DedupRow, Pair, RecordsLost, Sent, cooldown_key, dedup_key
from stream.settings import Settings

RESTORE_CHUNK = 1000
# Every key's hash (cooldowns: creative -> time of the last send) as one JSON array of
# flat [field, value, ...] arrays: one reply to parse rather than one per field.
_READ = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return cjson.encode(out)
"""
# ARGV: creative, time, ttl per key.
_RECORD = """
for i, key in ipairs(KEYS) do
  local j = 3 * (i - 1)
  redis.call('HSET', key, ARGV[j + 1], ARGV[j + 2])
  redis.call('EXPIRE', key, ARGV[j + 3])
end
return #KEYS
"""
# KEYS: ARGV[1] partition marks, then one key per event; ARGV[2]: TTL; then a position per
# event. A missing mark returns {"lost", its indexes...} before anything is written;
# otherwise {"ok", the position each key held before (false: it was new)...}, as JSON.
_DEDUP = """
local marks = tonumber(ARGV[1])
local lost = {'lost'}
for i = 1, marks do
  if redis.call('EXISTS', KEYS[i]) == 0 then lost[#lost + 1] = i end
end
if #lost > 1 then return cjson.encode(lost) end
local out = {'ok'}
for i = marks + 1, #KEYS do
  out[#out + 1] = redis.call('SET', KEYS[i], ARGV[i - marks + 2], 'NX', 'GET', 'EX', ARGV[2])
end
return cjson.encode(out)
"""
# Marks the partition refilled, if the refill's token is still there (same server).
_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], '1')
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def redis_client(settings: Settings) -> aioredis.Redis:
    """A client whose every call gives up after `CS_REDIS_TIMEOUT_SECONDS` (connecting
    included) and is never retried inside the client: the callers decide what a failure
    means (stream.handlers.cooldowns, stream.handlers.dedup)."""
    timeout = settings.redis_timeout_seconds
    kwargs: dict[str, object] = {
        "decode_responses": False,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
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
        self._read = client.register_script(_READ)
        self._record = client.register_script(_RECORD)

    async def last_sent(self, pairs: Sequence[Pair]) -> list[dict[str, float]]:
        if not pairs:
            return []
        keys = [cooldown_key(account_id, contact, self._prefix) for account_id, contact in pairs]
        rows = orjson.loads(await self._read(keys=keys))
        return [
            {row[i]: float(row[i + 1]) for i in range(0, len(row), 2)} if row else {}
            for row in rows
        ]

    async def record(self, sends: Sequence[Sent]) -> None:
        keys: list[str] = []
        args: list[str | int] = []
        for account_id, contact, creative, when, ttl in sends:
            if ttl <= 0:
                continue
            keys.append(cooldown_key(account_id, contact, self._prefix))
            args += (creative, repr(when), max(1, int(ttl)))
        if keys:
            await self._record(keys=keys, args=args)


class RedisDedup:
    """`event_id` -> first position seen, with a TTL.

    With `marked`, the store is a `stream.handlers.stores.RestorableDedup`: a key per source
    partition (`dd-mark:topic:partition`, no TTL) says its records are here, and each
    batch's round trip checks the marks of its partitions before its own writes, so a
    Redis that restarted empty is noticed before any answer from it is used."""

    def __init__(
        self, client: aioredis.Redis, ttl_seconds: int, prefix: str = "", *, marked: bool = False
    ) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._prefix = prefix
        self._marked = marked
        self._finish = client.register_script(_FINISH)
        self._dedup = client.register_script(_DEDUP)

    def _mark_key(self, partition: str) -> str:
        return f"{self._prefix}dd-mark:{partition}"

    def _token_key(self, partition: str) -> str:
        return f"{self._prefix}dd-refill:{partition}"

    async def duplicates(
        self,
        account_ids: Sequence[str],
        kinds: Sequence[str],
        event_ids: Sequence[str],
        positions: Sequence[str],
    ) -> list[bool]:
        if not positions:
            return []
        marks = sorted({p.rsplit(":", 1)[0] for p in positions}) if self._marked else []
        keys = [self._mark_key(partition) for partition in marks]
        rows = zip(account_ids, kinds, event_ids, strict=True)
        keys += [
            dedup_key(account, kind, event_id, self._prefix) for account, kind, event_id in rows
        ]
        reply = orjson.loads(await self._dedup(keys=keys, args=[len(marks), self._ttl, *positions]))
        if reply[0] == "lost":
            raise RecordsLost([marks[i - 1] for i in reply[1:]])
        return [
            old is not False and old != pos for old, pos in zip(reply[1:], positions, strict=True)
        ]

    async def begin(self, partition: str) -> str:
        token = uuid.uuid4().hex
        await self._redis.set(self._token_key(partition), token, ex=86400)
        return token

    async def forget(self, keys: Sequence[tuple[str, str, str]]) -> None:
        for start in range(0, len(keys), RESTORE_CHUNK):
            chunk = keys[start : start + RESTORE_CHUNK]
            await self._redis.delete(*(dedup_key(a, k, e, self._prefix) for a, k, e in chunk))

    async def restore(self, rows: Sequence[DedupRow]) -> None:
        for start in range(0, len(rows), RESTORE_CHUNK):
            pipe = self._redis.pipeline(transaction=False)
            for account, kind, event_id, position, ttl in rows[start : start + RESTORE_CHUNK]:
                key = dedup_key(account, kind, event_id, self._prefix)
                pipe.set(key, position, nx=True, ex=max(1, int(ttl)))
            await pipe.execute()

    async def finish(self, partition: str, token: str) -> bool:
        keys = [self._token_key(partition), self._mark_key(partition)]
        return bool(await self._finish(keys=keys, args=[token]))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
