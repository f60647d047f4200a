"""A live worker's metrics pass `promtool check metrics`, and realistic contact ids never
appear in the metrics scrape or in the INFO log."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest

from stream.client import SelectionClient
from stream.commands.publish_catalog import publish, validate_documents
from stream.messages import ClickEvent, ConversionEvent, SendEvent
from tests.integration.test_worker_e2e import ACCOUNT
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

PHONES = [f"+1415555{i:04d}" for i in range(300)]
EMAILS = [f"jane.doe{i}@example.com" for i in range(300)]


@pytest.fixture(scope="module")
def busy_worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("observability")
    env = worker_settings(kafka_bootstrap, redis_url, root / "state")
    process = WorkerProcess(env, root / "worker.log")
    process.start()
    asyncio.run(traffic(process))
    yield process
    process.stop()


async def traffic(worker: WorkerProcess) -> None:
    s = worker.settings
    await publish(validate_documents([ACCOUNT], s), s)
    await worker.wait_for("creative_selection_catalog_updates_total", 4)
    contacts = PHONES + EMAILS
    async with SelectionClient(s, timeout=30) as client:
        await client.select_many([("acme", "k", c, None) for c in contacts])
        await client.select_many([("acme", "no-such-campaign", c, None) for c in PHONES[:20]])
        events = []
        for i, contact in enumerate(contacts):
            events.append(SendEvent(f"s{i}", "acme", "k", contact, "c1", 100.0 + i))
            events.append(ClickEvent(f"k{i}", "acme", contact, "c1", 200.0 + i))
            events.append(ConversionEvent(f"v{i}", "acme", contact, "c9", 300.0 + i, 5.0))
        await client.publish_events(events)
    await worker.wait_for("creative_selection_events_total", 2 * len(contacts), outcome="applied")
    await worker.wait_for("creative_selection_dead_letters_total", len(contacts))


def test_live_scrape_passes_promtool_check_metrics(busy_worker: WorkerProcess) -> None:
    scrape = busy_worker.metrics()
    assert "creative_selection_decisions_total" in scrape
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_contact_id_in_metrics_or_info_logs(busy_worker: WorkerProcess) -> None:
    scrape = busy_worker.metrics()
    log = busy_worker.log_path.read_text(errors="replace")
    assert "dead letter unknown_creative" in log  # the log did record the bad events
    for contact in PHONES + EMAILS:
        assert contact not in scrape
        assert contact not in log
    assert "415555" not in scrape and "example.com" not in log
