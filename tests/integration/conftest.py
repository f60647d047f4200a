"""Real Kafka and Redis for the integration tests, one of each per test session.

The servers are the project's own (:mod:`stream.local`): the first session on a fresh
machine resolves Kafka's jars with Maven and may install redis-server, later ones reuse
the cache. Fixtures are synchronous so they do not depend on pytest-asyncio's loop scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stream.local.kafka import KafkaBroker
from stream.local.redis import RedisServer


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One running broker for the session; tests that stop a broker start their own."""
    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """``127.0.0.1:PORT`` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a session-wide, in-memory redis-server."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url
