"""End to end on real Kafka and Redis: a worker process learns from feedback, holds
cooldowns and the control split, and answers every request, invalid ones included."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.adapters.catalog_files import publish, validate_documents
from stream.client import SelectionClient
from stream.wire.messages import ClickEvent, SelectionError, SelectionResponse, SendEvent
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration

ACCOUNT: dict[str, Any] = {
    "account_id": "acme",
    "settings": {"goal": "clicks", "learning_threshold": 300, "cooldown_seconds": 86400},
    "offers": [{"offer_id": "o1", "payout": 30}],
    "creatives": [{"creative_id": f"c{i}", "offer_id": "o1"} for i in range(3)],
    "campaigns": [{"campaign_id": "k", "default_creative_id": "c0", "automated_percent": 80}],
}


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("e2e")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    asyncio.run(publish(validate_documents([ACCOUNT], process.settings), process.settings))
    asyncio.run(process.wait_for("creative_selection_catalog_updates_total", 4))
    yield process
    process.stop()


async def ask(worker: WorkerProcess, contacts: list[str], campaign: str = "k") -> list[Any]:
    async with SelectionClient(worker.settings, timeout=30) as client:
        return await client.select_many([("acme", campaign, c, None) for c in contacts])


def outcomes(clicks: dict[str, int], sends: int = 1000) -> list[Any]:
    events: list[Any] = []
    for creative, n_clicks in clicks.items():
        for i in range(sends):
            contact = f"{creative}-x{i}"
            events.append(SendEvent(f"s-{contact}", "acme", "k", contact, creative, 100.0 + i))
            if i < n_clicks:
                events.append(ClickEvent(f"k-{contact}", "acme", contact, creative, 200.0 + i))
    return events


async def test_learns_holds_the_split_and_cooldowns(worker: WorkerProcess) -> None:
    before = await ask(worker, [f"a{i}" for i in range(600)])
    assert all(isinstance(r, SelectionResponse) for r in before)
    automated = [r for r in before if r.arm == "automated"]
    assert abs(len(automated) / 600 - 0.8) < 0.06
    assert {r.creative_id for r in before if r.arm == "control"} == {"c0"}
    share_before = Counter(r.creative_id for r in automated)["c1"] / len(automated)

    events = outcomes({"c0": 50, "c1": 300, "c2": 50})
    async with SelectionClient(worker.settings) as client:
        await client.publish_events(events)
    await worker.wait_for("creative_selection_events_total", len(events), outcome="applied")

    after = await ask(worker, [f"b{i}" for i in range(1000)])
    scored = [r for r in after if isinstance(r, SelectionResponse) and r.pool == "scored"]
    share_after = Counter(r.creative_id for r in scored)["c1"] / len(scored)
    assert share_before < 0.5 < 0.9 < share_after
    assert all(r.params_version > 0 for r in scored)

    # cooldowns: an automated contact never gets a creative twice within the cooldown
    repeat = [f"b{i}" for i, r in enumerate(after) if r.arm == "automated"][:30]
    seen: dict[str, list[str]] = {c: [after[int(c[1:])].creative_id] for c in repeat}
    for _ in range(2):
        for contact, answer in zip(repeat, await ask(worker, repeat), strict=True):
            seen[contact].append(answer.creative_id)
    assert all(len(set(creatives)) == 3 for creatives in seen.values())
    last = await ask(worker, repeat)
    assert {(r.pool, r.reason) for r in last} == {("fallback", "all_in_cooldown")}


async def test_every_request_gets_an_answer_invalid_ones_included(worker: WorkerProcess) -> None:
    s = worker.settings
    answers = await ask(worker, ["z1", "z2"], campaign="no-such-campaign")
    assert {a.reason for a in answers if isinstance(a, SelectionError)} == {"unknown_campaign"}
    async with SelectionClient(s, timeout=30) as client:
        ghost = await client.select("ghost-account", "k", "z3")
    assert isinstance(ghost, SelectionError) and ghost.reason == "unknown_account"

    consumer = AIOKafkaConsumer(
        s.topic("selection-responses"),
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        bad = [
            b"{not json",
            b"[]",
            orjson.dumps(
                {
                    "schema": "selection_request.v1",
                    "request_id": "bad-types",
                    "account_id": "acme",
                    "campaign_id": 5,
                    "contact_id": "z4",
                }
            ),
        ]
        for raw in bad:
            await producer.send_and_wait(s.topic("selection-requests"), raw, key=b"acme")
        errors: Counter[str] = Counter()
        deadline = asyncio.get_running_loop().time() + 30
        while sum(errors.values()) < 3 and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    body = orjson.loads(record.value)
                    batched = body.get("schema") == "selection_response_batch.v1"
                    for item in body["responses"] if batched else [body]:
                        if item["status"] == "error" and item["request_id"] in (None, "bad-types"):
                            errors[item["error"]["reason"]] += 1
        assert errors == {"malformed_json": 1, "not_an_object": 1, "wrong_type": 1}
    finally:
        await consumer.stop()
        await producer.stop()
    assert worker.health() is not None and worker.proc is not None and worker.proc.poll() is None
