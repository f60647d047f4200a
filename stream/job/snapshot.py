"""The per-account parameter snapshot (`params_snapshot.v1`): every creative's and
offer's Beta parameters, built from the streamed stats and the catalog, published to the
compacted `thompson-params` topic (key: account id) and to Redis, one key per account:

    params:<account_id>  ->  the same params_snapshot.v1 JSON as on the topic (no TTL)

so that other services can read an account's parameters with one GET, without Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from redis.exceptions import RedisError

from selector.ingest import Ledger
from selector.params import AccountParams, ArmParams, account_params
from stream.adapters.redis_store import redis_client
from stream.handlers.catalog import AccountCatalog
from stream.job.cut import JobError
from stream.job.cut import publish as produce
from stream.settings import Settings
from stream.wire.messages import (
    TOPICS,
    CreativeParams,
    OfferParams,
    ParamsSnapshot,
    encode,
)


def redis_key(account_id: str, prefix: str = "") -> str:
    return f"{prefix}params:{account_id}"


def _values(p: ArmParams) -> tuple[int, int, int, float, float, float, float, float]:
    return (
        p.sends,
        p.clicks,
        p.conversions,
        p.revenue,
        p.ctr_alpha,
        p.ctr_beta,
        p.cvr_alpha,
        p.cvr_beta,
    )


def to_message(account_id: str, params: AccountParams, now: float) -> ParamsSnapshot:
    creatives = {
        cid: CreativeParams(offer_id, *_values(p))
        for cid, (offer_id, p) in params.creatives.items()
    }
    offers = {oid: OfferParams(*_values(p)) for oid, p in params.offers.items()}
    return ParamsSnapshot(
        account_id,
        params.version,
        now,
        params.prior,
        MappingProxyType(creatives),
        MappingProxyType(offers),
    )


@dataclass(frozen=True, slots=True)
class Snapshots:
    messages: dict[str, bytes]  # account id -> params_snapshot.v1 bytes
    invalid_catalogs: int  # accounts whose catalog cannot build a selector: left out


def build(
    stats: Mapping[str, Ledger], catalogs: Mapping[str, AccountCatalog], now: float
) -> Snapshots:
    """Snapshots of every account that has a usable catalog (with or without stats)."""
    out: dict[str, bytes] = {}
    invalid = 0
    for account_id in sorted(catalogs):
        account = catalogs[account_id].account
        if account is None:
            invalid += 1
            continue
        ledger = stats.get(account_id) or Ledger()
        params = account_params(account, ledger.stats, now)
        out[account_id] = encode(to_message(account_id, params, now))
    return Snapshots(out, invalid)


async def _store(settings: Settings, messages: Mapping[str, bytes]) -> None:
    client = redis_client(settings)
    try:
        pipe = client.pipeline(transaction=False)
        for account_id, body in messages.items():
            pipe.set(redis_key(account_id, settings.redis_key_prefix), body)
        await pipe.execute()
    finally:
        await client.aclose()


def publish(settings: Settings, snapshots: Snapshots) -> None:
    """To Redis, then to the compacted topic."""
    try:
        asyncio.run(_store(settings, snapshots.messages))
    except RedisError as exc:
        raise JobError(f"cannot store the parameter snapshot in Redis: {exc}") from None
    topic = settings.topic(TOPICS["params_snapshot"])
    produce(settings, topic, ((a.encode(), body) for a, body in snapshots.messages.items()))
