"""Delay times through a real worker: clicks that carry their send's time and conversions
that carry their click's time reach the streamed stats' feedback timing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from selector.timing import delay_bin
from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.wire.messages import ClickEvent, ConversionEvent, SendEvent
from tests.integration.changelog import latest_ledgers
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNT: dict[str, Any] = {
    "account_id": "acme",
    "settings": {"goal": "revenue"},
    "offers": [{"offer_id": "o1", "payout": 30}],
    "creatives": [{"creative_id": f"c{i}", "offer_id": "o1"} for i in range(2)],
    "campaigns": [{"campaign_id": "k", "default_creative_id": "c0", "automated_percent": 80}],
}
T0 = 1_767_000_000.0


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("delays")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    asyncio.run(publish(validate_documents([ACCOUNT], process.settings), process.settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


def events() -> list[Any]:
    """40 sends; 30 clicks 10 minutes after their send (20 saying so, 10 from a sender
    that does not); 12 conversions an hour after the click, 8 of them saying so."""
    out: list[Any] = []
    for i in range(40):
        contact, creative, sent = f"p{i}", f"c{i % 2}", T0 + 60.0 * i
        out.append(SendEvent(f"s{i}", "acme", "k", contact, creative, sent))
        if i < 30:
            clicked = sent + 600.0
            send_time = sent if i < 20 else None
            out.append(
                ClickEvent(f"k{i}", "acme", contact, creative, clicked, f"s{i}", "k", send_time)
            )
            if i < 12:
                click_time = clicked if i < 8 else None
                conversion = ConversionEvent(
                    f"v{i}", "acme", contact, creative, clicked + 3600.0, 5.0, click_time=click_time
                )
                out.append(conversion)
    return out


async def test_clicks_and_conversions_with_their_causes_time_reach_the_stats_timing(
    worker: WorkerProcess,
) -> None:
    sent = events()
    async with SelectionClient(worker.settings) as client:
        await client.publish_events(sent)
    await worker.wait_for("creative_selection_events_total", len(sent), outcome="applied")
    ledger = (await latest_ledgers(worker.settings))["acme"]
    stats, timing = ledger.stats, ledger.stats.timing
    assert sum(c.clicks for c in stats.counts.values()) == 30  # every click counts
    assert sum(c.conversions for c in stats.counts.values()) == 12
    assert sum(timing.click_delays) == 20 == timing.click_delays[delay_bin(600.0)]
    assert sum(timing.conversion_delays) == 8 == timing.conversion_delays[delay_bin(3600.0)]
    assert sum(n for rows in timing.sends.values() for n, _ in rows.values()) == 40
