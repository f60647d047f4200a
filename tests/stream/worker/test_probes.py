"""The background probes behind `/health`: what each check found is recorded with its
time, an exception counts as unreachable, and a broker that is not there is found so
within the probe's timeout."""

from __future__ import annotations

import asyncio

from stream.local import free_port
from stream.ops.health import Reachability
from stream.ops.metrics import Metrics
from stream.settings import Settings
from stream.worker.probes import BROKER_TIMEOUT, BrokerProbe, probe


async def test_each_check_is_recorded_and_a_failure_is_unreachable() -> None:
    reach, metrics = Reachability(), Metrics()

    async def up() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionError("refused")

    await probe(reach, metrics, {"broker": up, "redis": broken})
    states = {name: reach.state(name, _last(reach, name)) for name in ("broker", "redis")}
    assert states == {"broker": "reachable", "redis": "unreachable"}
    sample = metrics.registry.get_sample_value
    assert sample("creative_selection_dependency_up", {"dependency": "broker"}) == 1
    assert sample("creative_selection_dependency_up", {"dependency": "redis"}) == 0


def _last(reach: Reachability, name: str) -> float:
    return reach._results[name][1]


async def test_a_broker_that_is_not_there_is_unreachable_within_the_timeout() -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    check = BrokerProbe(settings)
    reach, metrics = Reachability(), Metrics()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await probe(reach, metrics, {"broker": check})
    assert loop.time() - started < 3 * BROKER_TIMEOUT  # refused at once, or timed out
    assert reach.state("broker", _last(reach, "broker")) == "unreachable"
    await check.close()
