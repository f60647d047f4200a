"""Send times through a real broker and Redis, one worker: answers inside the sending
hours and the delivery window over several zones (DST included), on the default topic and
on a sender's reply topic; bad requests answered with their reasons and dead-lettered;
sends and clicks moving a contact's slot counts in Redis, and its send times with them,
and doing nothing more when published again; an account's catalog changing its answers
(its slots and sending hours, a campaign's own hours); and the daily job's recount of
the slot counts finding drift put into Redis and repairing it; a prior published on
the priors topic steering the answers without a restart. And the measurement from
the topics: the pitfall scenario's experiments published as answers, sends and clicks,
read back, give the simulator's estimates."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from selector.domain import Campaign, SelectionSettings
from selector.sendtime import (
    ContactSlots,
    SlotPrior,
    apply_slot_correction,
    decode_slots,
    encode_slots,
    load_zone,
)
from selector.sendtime.counts import SlotDelta
from selector.sendtime.report import build_report
from selector.sendtime.scenario import sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate
from stream.adapters.kafka_config import kafka_config
from stream.adapters.producer import open_producer, send_messages
from stream.adapters.topic_specs import TopicSpec, ensure_topics
from stream.client import SendTime, publish_events
from stream.commands import topics
from stream.handlers.sendtime_priors import PRIORS_TOPIC, PublishedPrior, encode_prior
from stream.handlers.sendtime_store import slots_key
from stream.job.cut import read_catalog
from stream.job.sendtime_recount import reconcile as reconcile_slots
from stream.sendtime.live import messages_of_run
from stream.sendtime.live_topics import publish, results
from stream.sendtime_client import SendTimeClient
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import (
    AccountSettingsSnapshot,
    CampaignsSnapshot,
    ClickEvent,
    Message,
    SendEvent,
    SendTimeAnswer,
    SendTimeError,
)
from tests.integration.worker import WorkerProcess, worker_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

SENDER = "sender-eu"
BERLIN = ZoneInfo("Europe/Berlin")
# Sunday 2026-03-29 01:30 in Berlin, half an hour before the clocks go forward
LAUNCH = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN).timestamp()
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Sydney", "-03:30")


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    root = tmp_path_factory.mktemp("send-times")
    process = WorkerProcess(
        worker_settings(kafka_bootstrap, redis_url, root / "state"), root / "worker.log"
    )
    process.start()
    asyncio.run(topics.create(process.settings, io.StringIO(), senders=[SENDER]))
    yield process
    process.stop()


def local_minute(t: float, zone: str) -> int:
    found = load_zone(zone)
    assert found is not None
    when = datetime.fromtimestamp(t, found)
    return when.hour * 60 + when.minute


async def test_send_times_are_inside_the_sending_hours_and_the_window(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    async with SendTimeClient(settings, timeout=60.0) as client:
        answers = await asyncio.gather(
            *(
                client.send_time(
                    "acme",
                    "news",
                    f"ct-{i}",
                    LAUNCH,
                    36 * 3600.0,
                    zone=ZONES[i % len(ZONES)],
                    sending_hours={"start": "09:00", "end": "20:00"} if i % 2 else None,
                )
                for i in range(300)
            )
        )
    assert all(isinstance(a, SendTimeAnswer) for a in answers)
    for i, a in enumerate(answers):
        assert isinstance(a, SendTimeAnswer)
        assert LAUNCH <= a.send_at <= LAUNCH + 36 * 3600
        start, end = (9 * 60, 20 * 60) if i % 2 else (8 * 60, 21 * 60)
        assert start <= local_minute(a.send_at, ZONES[i % len(ZONES)]) < end, a
    assert {a.arm for a in answers} == {"optimized", "control"}  # type: ignore[union-attr]
    replies = settings.topic(f"selection-replies.{SENDER}")
    async with SendTimeClient(settings, responses_topic=replies, timeout=60.0) as client:
        own = await client.send_time("acme", "news", "ct-x", LAUNCH, 86_400.0)
    assert isinstance(own, SendTimeAnswer) and own.request_id
    assert await worker.wait_for("creative_selection_send_times_total", 301) >= 301


def bad_requests(settings: Settings) -> dict[str, tuple[bytes, str]]:
    """request_id -> (raw request, the reason its answer must give)."""

    def doc(rid: str, **extra: Any) -> bytes:
        body = {
            "schema": "send_time_request.v1", "request_id": rid, "account_id": "acme",
            "campaign_id": "news", "contact_id": "ct-1", "launch_time": LAUNCH,
            "window_seconds": 86_400, **extra,
        }  # fmt: skip
        return orjson.dumps(body)

    return {
        "bad-window": (doc("bad-window", window_seconds=10 * 86_400), "invalid_value"),
        "bad-hours": (
            doc("bad-hours", sending_hours={"start": "10:00", "end": "10:00"}),
            "invalid_value",
        ),
        "bad-type": (doc("bad-type", launch_time="tomorrow"), "wrong_type"),
        "bad-json": (doc("bad-json")[:-1], "malformed_json"),
        "bad-reply": (doc("bad-reply", reply_to=settings.topic("sends")), "forbidden_reply_to"),
        "bad-unknown": (
            doc("bad-unknown", reply_to=settings.topic("selection-replies.nobody")),
            "unknown_reply_to",
        ),
    }


async def read_until(
    settings: Settings, topic: str, want: int, match: Any, timeout: float = 60.0
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, **kafka_config(settings), group_id=None, auto_offset_reset="earliest"
    )
    found: list[bytes] = []
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            while len(found) < want:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [r.value for r in records if match(r.value)]
    finally:
        await consumer.stop()
    return found


async def test_bad_requests_are_answered_with_their_reasons_and_dead_lettered(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    bad = bad_requests(settings)
    producer = AIOKafkaProducer(**kafka_config(settings))
    await producer.start()
    try:
        for raw, _ in bad.values():
            await producer.send_and_wait(settings.topic("send-time-requests"), raw, key=b"acme")
    finally:
        await producer.stop()
    ids = {rid.encode() for rid in bad}
    answers = await read_until(
        settings, settings.topic("send-time-responses"), len(bad) - 1,
        lambda v: any(b'"' + i + b'"' in v for i in ids),
    )  # fmt: skip
    reasons = {}
    for raw in answers:
        answer = codec.decode("send_time_response", raw)
        assert isinstance(answer, SendTimeError), answer
        reasons[answer.request_id] = answer.reason
    # the malformed one cannot be correlated: its id is not readable
    expected = {rid: reason for rid, (_, reason) in bad.items() if rid != "bad-json"}
    assert reasons == expected
    letters = await read_until(
        settings, settings.topic("dead-letters"), len(bad),
        lambda v: b"send-time-requests" in v,
    )  # fmt: skip
    letter_reasons = sorted(orjson.loads(v)["reason"] for v in letters)
    assert letter_reasons == sorted(reason for _, reason in bad.values())
    assert await worker.wait_for("creative_selection_sendtime_errors_total", len(bad)) == len(bad)


def evening_history(contact: str, days: int) -> list[SendEvent | ClickEvent]:
    """Two sends a day, 09:15 and 19:15 Berlin time; only the evening ones clicked."""
    out: list[SendEvent | ClickEvent] = []
    for d in range(days):
        for hour in (9, 19):
            t = datetime(2026, 2, 1 + d, hour, 15, tzinfo=BERLIN).timestamp()
            sid = f"{contact}-{d}-{hour}"
            out.append(SendEvent(sid, "acme", "news", contact, "c1", t))
            if hour == 19:
                out.append(ClickEvent(f"k-{sid}", "acme", contact, "c1", t + 600, sid))
    return out


async def stored_counts(settings: Settings, contact: str) -> tuple[np.ndarray, np.ndarray]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        blob = await client.get(slots_key("acme", contact, settings.redis_key_prefix))
    finally:
        await client.aclose()
    state = decode_slots(blob, 12, False)
    assert isinstance(state, ContactSlots)
    sends = np.bincount(state.cell, weights=state.sends, minlength=12)
    return sends, np.bincount(state.cell, weights=state.responses, minlength=12)


async def test_clicks_move_the_slot_counts_and_the_send_times_once(worker: WorkerProcess) -> None:
    settings = worker.settings
    contact = f"ct-evening-{uuid.uuid4().hex[:6]}"
    async with SendTimeClient(settings, timeout=60.0) as client:
        first = await client.send_time(
            "acme", "news", contact, LAUNCH, 86_400.0, zone="Europe/Berlin"
        )
        assert isinstance(first, SendTimeAnswer) and first.zone == "Europe/Berlin"
        events = evening_history(contact, 20)
        await publish_events(settings, events)
        name = "creative_selection_sendtime_events_total"
        await worker.wait_for(name, 20, kind="response", outcome="applied")
        sends, clicks = await stored_counts(settings, contact)
        assert (sends[4], sends[9], clicks[4], clicks[9]) == (20, 20, 0, 20)
        await publish_events(settings, events)  # the same events again: upstream duplicates
        await worker.wait_for(name, 60, outcome="duplicate")
        again = await stored_counts(settings, contact)
        assert (again[0] == sends).all() and (again[1] == clicks).all()
        later = await asyncio.gather(
            *(
                client.send_time(
                    "acme",
                    "news",
                    contact,
                    LAUNCH + 7 * 86_400,
                    86_400.0,
                    zone="Europe/Berlin",
                    launch_id=f"l{i}",
                    control_pct=0,
                )
                for i in range(100)
            )
        )
    slots = np.array([a.slot for a in later if isinstance(a, SendTimeAnswer)])
    assert slots.size == 100
    # 18-20h won most draws; the morning slot that never answered almost none
    assert np.mean(slots == 9) > 0.6 and np.mean(slots == 4) < 0.05


async def test_the_pitfalls_estimates_from_the_topics_are_the_simulators(
    kafka_bootstrap: str,
) -> None:
    doc = yaml.safe_load((ROOT / "scenarios" / "sendtime_pitfall.yaml").read_text())
    doc["contacts"] = 1000
    scenario = sendtime_scenario_from_dict(doc)
    standard, aligned = simulate(scenario), simulate(scenario, aligned=True)
    expected = {e.method: e for e in build_report(standard, aligned).estimates}
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}-", partitions=4
    )
    messages: list[Message] = []
    for run in (standard, aligned):
        for part in messages_of_run(run, scenario, "acme"):
            messages += part
    assert await publish(settings, messages) == len(messages)
    window = scenario.campaigns.outcome_window_hours
    live = await asyncio.to_thread(results, settings, window, scenario.settings.zone, 5)
    assert not live.unjoined
    got = live.reports["acme"].estimates
    assert [e.method for e in got] == list(expected)
    for e in got:
        want = expected[e.method]
        assert (e.sends, e.strata) == (want.sends, want.strata)
        assert (e.lift, e.low, e.high) == pytest.approx((want.lift, want.low, want.high), rel=1e-9)


async def answers_by_catalog(settings: Settings, account: str, campaign: str) -> list[SendTime]:
    async with SendTimeClient(settings, timeout=60.0) as client:
        found = await asyncio.gather(
            *(
                client.send_time(account, campaign, f"ct-{i}", LAUNCH, 36 * 3600.0)
                for i in range(40)
            )
        )
    return list(found)


def berlin_minutes(found: list[SendTime]) -> list[int]:
    assert all(isinstance(a, SendTimeAnswer) for a in found), found
    return [local_minute(a.send_at, "Europe/Berlin") for a in found]  # type: ignore[union-attr]


async def test_the_accounts_catalog_sets_its_slots_and_sending_hours(
    worker: WorkerProcess,
) -> None:
    """Before its catalog the account answers by the defaults (UTC, 12 slots, 08-21);
    once its settings say Berlin, 24 slots and 14:00-16:00, every answer is there, and its
    campaign `news` keeps its own 10:00-12:00."""
    settings = worker.settings
    account = f"tuned-{uuid.uuid4().hex[:6]}"
    before = await answers_by_catalog(settings, account, "promo")
    assert all(isinstance(a, SendTimeAnswer) and a.zone == "UTC" for a in before)
    assert all(480 <= local_minute(a.send_at, "UTC") < 1260 for a in before)  # type: ignore[union-attr]
    block = {"slots": 24, "hours": {"start": "14:00", "end": "16:00"}, "zone": "Europe/Berlin"}
    parts: list[Message] = [
        CampaignsSnapshot(
            account,
            (Campaign("news", "c0"), Campaign("promo", "c0")),
            {"news": {"start": "10:00", "end": "12:00"}},
        ),
        AccountSettingsSnapshot(account, SelectionSettings(), block),
    ]
    async with open_producer(settings) as producer:
        await asyncio.gather(*await send_messages(producer, settings, parts))
    async with asyncio.timeout(60):
        while True:  # the catalog reaches the worker a moment after it is stored
            promo = await answers_by_catalog(settings, account, "promo")
            if all(isinstance(a, SendTimeAnswer) and a.zone != "UTC" for a in promo):
                break
            await asyncio.sleep(0.5)
    minutes = berlin_minutes(promo)
    assert all(840 <= m < 960 for m in minutes), minutes
    assert {a.slot for a in promo} <= {14, 15}  # type: ignore[union-attr]
    news = berlin_minutes(await answers_by_catalog(settings, account, "news"))
    assert all(600 <= m < 720 for m in news), news


async def test_the_daily_job_finds_and_repairs_drift_in_the_slot_counts(
    worker: WorkerProcess,
) -> None:
    """The learner's counts agree with the job's recount; counts broken in Redis are
    found with their size, repaired, and a second run finds nothing."""
    settings = worker.settings
    contact = f"ct-drift-{uuid.uuid4().hex[:6]}"
    await publish_events(settings, evening_history(contact, 10))
    async with asyncio.timeout(60):
        while True:  # the learner's metrics count every test's events: read the counts
            try:
                sends, clicks = await stored_counts(settings, contact)
                if (sends.sum(), clicks.sum()) == (20, 10):
                    break
            except AssertionError:  # nothing stored yet
                pass
            await asyncio.sleep(0.25)
    catalogs = read_catalog(settings, time.time())
    clean = await asyncio.to_thread(reconcile_slots, settings, catalogs, correct=False, run_seq=1)
    assert clean.contacts >= 1 and not [d for d in clean.drifts if d.contact_id == contact]
    key = slots_key("acme", contact, settings.redis_key_prefix)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        state = decode_slots(await client.get(key), 12, False)
        assert isinstance(state, ContactSlots)
        evening = int(np.flatnonzero(state.responses > 0)[0])
        phantom = SlotDelta(
            *(np.array([v]) for v in (state.bucket[evening], state.cell[evening], 4, -1))
        )
        broken, _ = apply_slot_correction(state, phantom, 3, 0, 1)
        await client.set(key, encode_slots(broken, 12, False))
        run = int(time.time() * 1000)
        fixed = await asyncio.to_thread(
            reconcile_slots, settings, catalogs, correct=True, run_seq=run
        )
        [found] = [d for d in fixed.drifts if d.contact_id == contact]
        assert (found.sends, found.responses, found.corrected) == (-4, 1, True)
        again = await asyncio.to_thread(
            reconcile_slots, settings, catalogs, correct=True, run_seq=run + 1
        )
        assert not [d for d in again.drifts if d.contact_id == contact]
    finally:
        await client.aclose()
    repaired = await stored_counts(settings, contact)
    assert (repaired[0] == sends).all() and (repaired[1] == clicks).all()


async def test_a_published_prior_is_in_use_without_a_restart(worker: WorkerProcess) -> None:
    """An account's answers follow the prior published on the priors topic: one that
    makes 18:00-20:00 (slot 9) by far the likeliest sends new contacts there."""
    settings = worker.settings
    account = f"primed-{uuid.uuid4().hex[:6]}"
    topic = settings.topic(PRIORS_TOPIC)
    await ensure_topics(settings, [TopicSpec(topic, settings.partitions, True)])
    alpha, beta = np.ones((1, 12)), np.full((1, 12), 99.0)
    alpha[0, 9], beta[0, 9] = 50.0, 50.0
    prior = SlotPrior(alpha, beta, 100.0, 1000, np.ones(1))
    body = encode_prior(PublishedPrior(account, 1, time.time(), 12, False, prior))
    name = "creative_selection_sendtime_prior_loads_total"
    loaded = worker.metric(name, outcome="loaded")
    async with open_producer(settings) as producer:
        await producer.send_and_wait(topic, body, key=account.encode())
    await worker.wait_for(
        "creative_selection_sendtime_prior_loads_total", loaded + 1, outcome="loaded"
    )
    async with SendTimeClient(settings, timeout=60.0) as client:
        found = await asyncio.gather(
            *(
                client.send_time(account, "news", f"ct-{i}", LAUNCH, 36 * 3600.0,
                                 zone="Europe/Berlin", control_pct=0)
                for i in range(60)
            )
        )  # fmt: skip
    slots = [a.slot for a in found if isinstance(a, SendTimeAnswer)]
    assert len(slots) == 60 and sum(s == 9 for s in slots) >= 50, slots
