"""`/health` on a real worker tells a readiness probe the truth within seconds: 503
"unavailable" while the broker does not answer (SIGSTOPped), 200 "degraded" while Redis
does not, "ok" once both answer again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.local import free_port
from stream.local.kafka import KafkaBroker
from stream.local.redis import RedisServer
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration


def health(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of `/health`."""
    try:
        with urllib.request.urlopen(f"{worker.url}/health", timeout=5) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.loads(error.read()))


async def until(worker: WorkerProcess, status: str, timeout: float) -> tuple[float, int, Any]:
    """Seconds until `/health` says `status`, with the HTTP code and body then."""
    started = time.monotonic()
    while True:
        code, body = await asyncio.to_thread(health, worker)
        if body["status"] == status:
            return time.monotonic() - started, code, body
        assert time.monotonic() - started < timeout, f"still {body} after {timeout} s"
        await asyncio.sleep(0.2)


@pytest.fixture
def worker(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, RedisServer]]:
    redis = RedisServer(tmp_path / "redis", port=free_port())
    redis.start()
    process = WorkerProcess(
        worker_settings(kafka_broker.bootstrap, redis.url, tmp_path / "state"),
        tmp_path / "worker.log",
    )
    try:
        process.start()
        yield process, redis
    finally:
        for pid in (kafka_broker.pid, redis.pid):
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
        process.stop()
        redis.stop()


async def test_health_follows_the_broker_and_redis_within_seconds(
    worker: tuple[WorkerProcess, RedisServer], kafka_broker: KafkaBroker
) -> None:
    process, redis = worker
    await until(process, "ok", timeout=30)
    assert kafka_broker.pid is not None and redis.pid is not None
    os.kill(redis.pid, signal.SIGSTOP)
    took, code, body = await until(process, "degraded", timeout=10)
    print(f"\nRedis frozen: degraded after {took:.2f} s")
    assert code == 200 and body["redis"] == "unreachable" and body["ready"] is True
    os.kill(redis.pid, signal.SIGCONT)
    took, code, _ = await until(process, "ok", timeout=10)
    print(f"Redis back: ok after {took:.2f} s")
    os.kill(kafka_broker.pid, signal.SIGSTOP)
    try:
        took, code, body = await until(process, "unavailable", timeout=15)
        print(f"broker frozen: unavailable after {took:.2f} s")
        assert code == 503 and "broker_unreachable" in body["reasons"]
    finally:
        os.kill(kafka_broker.pid, signal.SIGCONT)
    took, code, _ = await until(process, "ok", timeout=60)
    print(f"broker back: ok after {took:.2f} s")
    assert code == 200
