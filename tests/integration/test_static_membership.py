"""Static group membership through the settings: the broker knows the worker by its
CS_GROUP_INSTANCE_ID, and a worker killed and restarted under the same id serves again
well within CS_SESSION_TIMEOUT_SECONDS, while a restarted dynamic member has to wait for
the group to drop the dead one, a whole session timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 20.0


async def member_ids(bootstrap: str, group: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups
    return [member[0] for member in described[5]]  # (error, group, state, ..., members)


def restart_after_kill(env: dict[str, str], root: Path) -> tuple[list[str], float]:
    """The group's member ids while the first worker runs, and the seconds from starting
    a second worker, after SIGKILL of the first, until it is healthy."""
    first = WorkerProcess(env, root / "first.log")
    first.start()
    members = asyncio.run(member_ids(env["CS_KAFKA_BOOTSTRAP"], env["CS_APP_ID"]))
    first.kill()
    second = WorkerProcess(env, root / "second.log")
    started = time.monotonic()
    second.start()
    took = time.monotonic() - started
    second.stop()
    return members, took


def settings(kafka_bootstrap: str, redis_url: str, root: Path, **extra: str) -> dict[str, str]:
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        root / "state",
        CS_SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT),
        CS_COOLDOWN_STORE="memory",
        **extra,
    )


def test_a_static_member_is_back_at_once(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    env = settings(kafka_bootstrap, redis_url, tmp_path, CS_GROUP_INSTANCE_ID="worker-0")
    members, took = restart_after_kill(env, tmp_path)
    assert len(members) == 1 and members[0].startswith("worker-0-")
    assert took < SESSION_TIMEOUT / 2


def test_a_dynamic_member_waits_out_the_session_timeout(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    members, took = restart_after_kill(settings(kafka_bootstrap, redis_url, tmp_path), tmp_path)
    assert len(members) == 1 and not members[0].startswith("worker-0-")
    assert took > SESSION_TIMEOUT * 0.75
