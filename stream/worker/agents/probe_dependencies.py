"""The background probe of the broker and Redis behind `/health` (`stream.worker.probes`):
every second, so `/health` knows within a few seconds and never asks either itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stream.handlers.deadline import within
from stream.worker.app import app, settings
from stream.worker.probes import BrokerProbe, probe
from stream.worker.runtime import metrics, runtime

PROBE_SECONDS = 1.0
broker = BrokerProbe(settings)


async def _redis() -> bool:
    runtime.stores()  # the client the stores use
    assert runtime.redis is not None
    return await within(runtime.redis.ping(), settings.redis_timeout_seconds)


@app.timer(interval=PROBE_SECONDS)  # type: ignore[untyped-decorator]
async def probe_dependencies() -> None:
    checks: dict[str, Callable[[], Awaitable[bool]]] = {"broker": broker}
    if settings.cooldown_store == "redis":
        checks["redis"] = _redis
    await probe(runtime.reachability, metrics, checks)
