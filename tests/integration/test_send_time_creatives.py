"""A send-time request with `select_creative` through a real broker and Redis, one
worker: the answer carries the send time and one of the campaign's creatives; a campaign
the selection catalog does not have gets a selection error beside its send time; without
the flag the answer has no selection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stream.adapters.catalog_files import publish, validate_documents
from stream.sendtime_client import SendTimeClient
from stream.wire.messages import SelectionError, SelectionResponse, SendTimeAnswer
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNT = "acct-st"
CREATIVES = {"c0", "c1", "c2"}


def catalog(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "settings": {"goal": "clicks", "cooldown_seconds": 3600},
        "offers": [{"offer_id": "o1", "payout": 30}],
        "creatives": [{"creative_id": c, "offer_id": "o1"} for c in sorted(CREATIVES)],
        "campaigns": [{"campaign_id": "k", "default_creative_id": "c0"}],
    }


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("send-time-creatives")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    settings = process.settings
    asyncio.run(publish(validate_documents([catalog(ACCOUNT)], settings), settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


async def test_one_request_gets_its_send_time_and_one_of_the_campaigns_creatives(
    worker: WorkerProcess,
) -> None:
    launch = time.time()
    async with SendTimeClient(worker.settings, timeout=60.0) as client:
        both = await asyncio.gather(
            *(
                client.send_time(ACCOUNT, "k", f"ct-{i}", launch, 86_400.0, select_creative=True)
                for i in range(20)
            )
        )
        unknown = await client.send_time(
            ACCOUNT, "nope", "ct-x", launch, 86_400.0, select_creative=True
        )
        plain = await client.send_time(ACCOUNT, "k", "ct-y", launch, 86_400.0)
    for a in both:
        assert isinstance(a, SendTimeAnswer), a
        assert launch <= a.send_at <= launch + 86_400
        s = a.selection
        assert isinstance(s, SelectionResponse), s
        assert s.request_id == a.request_id and s.campaign_id == "k"
        assert s.creative_id in CREATIVES
    assert isinstance(unknown, SendTimeAnswer) and launch <= unknown.send_at
    assert isinstance(unknown.selection, SelectionError)
    assert unknown.selection.reason == "unknown_campaign"
    assert isinstance(plain, SendTimeAnswer) and plain.selection is None
