"""Background checks that the broker and Redis answer, for `/health` (`stream.ops.health`)
and the `creative_selection_dependency_up` gauge; `stream.worker.agents.probe_dependencies`
runs them every second, so `/health` itself never makes a network call.

- Redis: a PING through the stores' own client, within `CS_REDIS_TIMEOUT_SECONDS`.
- Broker: a metadata request for the selection-requests topic from a small client of its
  own (aiokafka's `AIOKafkaClient`, connected like every other client of the service),
  within `BROKER_TIMEOUT` seconds. A stopped broker refuses at once; a frozen one lets
  the request time out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka.client import AIOKafkaClient

from stream.adapters.kafka_config import kafka_config
from stream.handlers.deadline import within
from stream.ops.health import Reachability
from stream.ops.metrics import Metrics
from stream.settings import Settings

log = logging.getLogger(__name__)
BROKER_TIMEOUT = 2.0


class BrokerProbe:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: AIOKafkaClient | None = None

    async def __call__(self) -> bool:
        if self._client is None:
            client = AIOKafkaClient(**kafka_config(self._settings), request_timeout_ms=5000)
            try:
                await within(client.bootstrap(), BROKER_TIMEOUT)
            except BaseException:
                await client.close()
                raise
            client.set_topics([self._settings.topic("selection-requests")])
            self._client = client
        return bool(await within(self._client.force_metadata_update(), BROKER_TIMEOUT))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


async def probe(
    reachability: Reachability,
    metrics: Metrics,
    checks: dict[str, Callable[[], Awaitable[bool]]],
) -> None:
    """Run every check at once and record what each found."""
    names = list(checks)
    results = await asyncio.gather(*(checks[n]() for n in names), return_exceptions=True)
    now = time.time()
    for name, result in zip(names, results, strict=True):
        reachable = result is True
        before = reachability.state(name, now)
        reachability.record(name, reachable, now)
        metrics.dependency_up.labels(name).set(1 if reachable else 0)
        if not reachable and before != "unreachable":
            detail = type(result).__name__ if isinstance(result, BaseException) else result
            log.warning("%s does not answer (%s)", name, detail)
        elif reachable and before == "unreachable":
            log.warning("%s answers again", name)
