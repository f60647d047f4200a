"""The security settings against real servers: a worker whose Kafka connection is SASL_SSL
(SCRAM-SHA-512 over TLS, as deploy/k8s configures it) and whose Redis needs TLS and a
password answers selections and counts events, with cooldowns and dedup records in that
Redis; a worker on an SSL listener that
requires client certificates does the same; and each server refuses a client without the
right password, CA or certificate, so the successes above are not a permissive setup's.

Certificates come from a throwaway CA made with openssl (`stream.local.tls`)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from stream.adapters.catalog_files import publish, validate_documents
from stream.adapters.kafka_config import kafka_config
from stream.adapters.redis_store import redis_client
from stream.client import SelectionClient
from stream.local.kafka import BrokerOptions, KafkaBroker
from stream.local.redis import RedisServer
from stream.local.tls import Certificates, SecureListeners, make_certificates
from stream.settings import Settings
from stream.wire.messages import SelectionResponse, SendEvent
from tests.integration.test_worker_e2e import ACCOUNT
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

KAFKA_USER, KAFKA_PASSWORD = "creative-selection", "kafka-test-password-7f3a"
REDIS_PASSWORD = "redis-test-password-91c2"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_broker(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    secure = SecureListeners(certificates, {KAFKA_USER: KAFKA_PASSWORD})
    options = BrokerOptions(secure=secure)
    with KafkaBroker(tmp_path_factory.mktemp("kafka-tls"), options) as broker:
        yield broker


@pytest.fixture(scope="module")
def secure_redis(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    server = RedisServer(
        tmp_path_factory.mktemp("redis-tls"), password=REDIS_PASSWORD, tls=certificates
    )
    with server:
        yield server


def sasl_ssl(
    broker: KafkaBroker, certificates: Certificates, mechanism: str = "SCRAM-SHA-512"
) -> dict[str, str]:
    return {
        "CS_KAFKA_BOOTSTRAP": broker.listener("SASL_SSL"),
        "CS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CS_KAFKA_SASL_MECHANISM": mechanism,
        "CS_KAFKA_SASL_USERNAME": KAFKA_USER,
        "CS_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
        "CS_KAFKA_SSL_CAFILE": str(certificates.ca),
    }


def redis_tls(server: RedisServer, certificates: Certificates) -> dict[str, str]:
    # a redis:// URL: CS_REDIS_TLS turns it into TLS; the password is not in the URL
    return {
        "CS_REDIS_URL": server.url.replace("rediss://", "redis://"),
        "CS_REDIS_TLS": "true",
        "CS_REDIS_TLS_CAFILE": str(certificates.ca),
        "CS_REDIS_PASSWORD": REDIS_PASSWORD,
    }


async def serve_traffic(worker: WorkerProcess, contacts: list[str]) -> list[object]:
    """Catalog, one selection per contact and one send per answer, through the worker."""
    s = worker.settings
    await publish(validate_documents([ACCOUNT], s), s)
    await worker.wait_for("creative_selection_catalog_updates_total", 4)
    async with SelectionClient(s, timeout=30) as client:
        answers = await client.select_many([("acme", "k", c, None) for c in contacts])
        sends = [
            SendEvent(f"s-{c}", "acme", "k", c, a.creative_id, 100.0)
            for c, a in zip(contacts, answers, strict=True)
            if isinstance(a, SelectionResponse)
        ]
        await client.publish_events(sends)
    await worker.wait_for("creative_selection_events_total", len(contacts), outcome="applied")
    return answers


def run_worker(env: dict[str, str], root: Path, contacts: list[str]) -> tuple[list[object], str]:
    worker = WorkerProcess(env, root / "worker.log")
    worker.start()
    try:
        answers = asyncio.run(serve_traffic(worker, contacts))
        dedup_errors = worker.metric("creative_selection_agent_errors_total", agent="dedup")
        assert dedup_errors == 0
    finally:
        worker.stop()
    return answers, worker.log_path.read_text(errors="replace")


def test_a_worker_over_sasl_ssl_with_redis_over_tls_and_a_password(
    secure_broker: KafkaBroker,
    secure_redis: RedisServer,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    env = worker_settings("unused", "unused", tmp_path / "state")
    env.update(sasl_ssl(secure_broker, certificates) | redis_tls(secure_redis, certificates))
    contacts = [f"+1415555{i:04d}" for i in range(50)]
    answers, log = run_worker(env, tmp_path, contacts)
    assert all(isinstance(a, SelectionResponse) for a in answers)

    client = redis.Redis.from_url(
        secure_redis.url, password=REDIS_PASSWORD, ssl_ca_certs=str(certificates.ca)
    )
    try:
        prefix = env["CS_REDIS_KEY_PREFIX"]
        assert len(client.keys(f"{prefix}cd:acme:*")) == len(contacts)  # cooldowns
        assert len(client.keys(f"{prefix}dd:acme:*")) == len(contacts)  # dedup records
    finally:
        client.close()
    assert KAFKA_PASSWORD not in log and REDIS_PASSWORD not in log


def test_a_worker_over_ssl_with_a_client_certificate(
    secure_broker: KafkaBroker, certificates: Certificates, tmp_path: Path
) -> None:
    env = worker_settings("unused", "unused", tmp_path / "state", CS_COOLDOWN_STORE="memory")
    env.update(
        CS_KAFKA_BOOTSTRAP=secure_broker.listener("SSL"),
        CS_KAFKA_SECURITY_PROTOCOL="SSL",
        CS_KAFKA_SSL_CAFILE=str(certificates.ca),
        CS_KAFKA_SSL_CERTFILE=str(certificates.client_cert),
        CS_KAFKA_SSL_KEYFILE=str(certificates.client_key),
    )
    answers, _ = run_worker(env, tmp_path, [f"jane.doe{i}@example.com" for i in range(30)])
    assert all(isinstance(a, SelectionResponse) for a in answers)


async def can_produce(settings: Settings) -> bool:
    producer = AIOKafkaProducer(**kafka_config(settings), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 15)
    except (KafkaError, KafkaConnectionError, ssl.SSLError, OSError, TimeoutError):
        return False
    finally:
        await producer.stop()
    return True


async def test_kafka_refuses_a_wrong_password_a_missing_ca_or_certificate(
    secure_broker: KafkaBroker, certificates: Certificates
) -> None:
    good = Settings.from_env(sasl_ssl(secure_broker, certificates))
    assert await can_produce(good)
    assert await can_produce(Settings.from_env(sasl_ssl(secure_broker, certificates, "PLAIN")))
    wrong = Settings.from_env(
        {**sasl_ssl(secure_broker, certificates), "CS_KAFKA_SASL_PASSWORD": "guess"}
    )
    assert not await can_produce(wrong)
    no_ca = Settings.from_env({**sasl_ssl(secure_broker, certificates), "CS_KAFKA_SSL_CAFILE": ""})
    assert not await can_produce(no_ca)  # the system CAs do not know the test CA
    no_certificate = Settings.from_env(
        {
            "CS_KAFKA_BOOTSTRAP": secure_broker.listener("SSL"),
            "CS_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CS_KAFKA_SSL_CAFILE": str(certificates.ca),
        }
    )
    assert not await can_produce(no_certificate)


async def test_redis_refuses_a_wrong_password_or_a_missing_ca(
    secure_redis: RedisServer, certificates: Certificates
) -> None:
    async def ping(**changes: str) -> bool:
        env = {**redis_tls(secure_redis, certificates), **changes}
        client: aioredis.Redis = redis_client(Settings.from_env(env))
        try:
            return bool(await client.ping())
        except (redis.RedisError, ssl.SSLError, OSError):
            return False
        finally:
            await client.aclose()

    assert await ping()
    assert not await ping(CS_REDIS_PASSWORD="guess")
    assert not await ping(CS_REDIS_PASSWORD="")
    assert not await ping(CS_REDIS_TLS_CAFILE="")
    assert not await ping(CS_REDIS_TLS="false")  # plain text to a TLS port
