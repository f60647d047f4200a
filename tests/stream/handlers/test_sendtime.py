"""The send-time services without Kafka: answers inside the sending hours and the window,
named reasons for bad requests, and a learner whose counts move the decisions and do not
move under re-delivery or duplicates."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import numpy as np
import orjson
import pytest
from prometheus_client import generate_latest

from selector.sendtime import SendTimeSettings, decode_slots, load_zone
from stream.handlers.reply_to import ReplyPolicy
from stream.handlers.sendtime import SendTimeService
from stream.handlers.sendtime_learning import SendTimeLearner
from stream.handlers.sendtime_store import MemorySendTimeStore, slots_key
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.sendtime_messages import SendTimeAnswer, SendTimeError
from tests.stream.handlers.service_fixtures import record

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
RESPONSE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((SCHEMAS / "send_time_response.v1.schema.json").read_text())
)
BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-03-09 22:30 in Berlin: the launch instant is quiet there
LAUNCH = datetime(2026, 3, 9, 22, 30, tzinfo=BERLIN).timestamp()
TOPICS = {"sends": "send", "clicks": "click"}


def ask(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "send_time_request.v1",
        "request_id": f"q{i}",
        "account_id": "acme",
        "campaign_id": "news",
        "contact_id": f"ct-{i}",
        "launch_time": LAUNCH,
        "window_seconds": 86_400,
        **extra,
    }


def service(store: MemorySendTimeStore, metrics: Metrics, **kw: Any) -> SendTimeService:
    return SendTimeService(
        store=store,
        metrics=metrics,
        responses_topic="send-time-responses",
        dead_letters_topic="dead-letters",
        seed=7,
        clock=lambda: LAUNCH,
        **kw,
    )


def answers(out: list[Outgoing]) -> list[SendTimeAnswer | SendTimeError]:
    found = []
    for o in out:
        if o.topic == "dead-letters":
            continue
        RESPONSE_SCHEMA.validate(json.loads(o.value))
        decoded = codec.decode("send_time_response", o.value)
        assert isinstance(decoded, SendTimeAnswer | SendTimeError)
        found.append(decoded)
    return found


def local(t: float, zone: str) -> datetime:
    found = load_zone(zone)
    assert found is not None
    return datetime.fromtimestamp(t, found)


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham", "+05:45"]


@pytest.mark.parametrize("zone", ZONES)
async def test_every_answer_is_inside_the_window_and_the_sending_hours(zone: str) -> None:
    metrics = Metrics()
    svc = service(MemorySendTimeStore(), metrics)
    hours = {"start": "09:00", "end": "20:30"}
    batch = [
        record(ask(i, zone=zone, sending_hours=hours if i % 2 else None), "send-time-requests", i)
        for i in range(200)
    ]
    found = answers(await svc.answer(batch))
    assert len(found) == 200 and all(isinstance(a, SendTimeAnswer) for a in found)
    for i, a in enumerate(found):
        assert isinstance(a, SendTimeAnswer) and a.request_id == f"q{i}"
        assert LAUNCH <= a.send_at <= LAUNCH + 86_400
        start, end = (9 * 60, 20 * 60 + 30) if i % 2 else (8 * 60, 21 * 60)
        when = local(a.send_at, zone)
        assert start <= when.hour * 60 + when.minute < end, (zone, when)
        assert a.zone == zone and a.zone_source == "request"
        assert a.slot == when.hour // 2
    arms = {a.arm for a in found if isinstance(a, SendTimeAnswer)}
    assert arms == {"optimized", "control"}


async def test_an_unusable_zone_falls_back_and_is_counted_without_the_zone_name() -> None:
    metrics = Metrics()
    svc = service(MemorySendTimeStore(), metrics)
    out = await svc.answer([record(ask(1, zone="Narnia/Cair"), "send-time-requests", 0)])
    (a,) = answers(out)
    assert isinstance(a, SendTimeAnswer) and a.zone == "UTC" and a.zone_source == "account"
    fallbacks = metrics.sendtime.zone_fallbacks.labels("account", "invalid")._value.get()
    assert fallbacks == 1
    assert b"Narnia" not in generate_latest(metrics.registry)


BAD = [
    ("malformed", b'{"schema": "send_time_request.v1", ', "malformed_json"),
    ("no window", ask(1, window_seconds=None), "wrong_type"),
    ("window above the account's", ask(1, window_seconds=8 * 86_400), "invalid_value"),
    ("negative window", ask(1, window_seconds=-1), "invalid_value"),
    ("start equals end", ask(1, sending_hours={"start": "09:00", "end": "09:00"}), "invalid_value"),
    ("hours not HH:MM", ask(1, sending_hours={"start": "9", "end": "21:00"}), "invalid_value"),
    ("millisecond launch", ask(1, launch_time=LAUNCH * 1000), "invalid_value"),
    ("internal reply topic", ask(1, reply_to="sends"), "forbidden_reply_to"),
    ("another account's key", ask(1, account_id="other"), "invalid_value"),
]


@pytest.mark.parametrize(("name", "doc", "reason"), BAD, ids=[b[0] for b in BAD])
async def test_bad_requests_get_a_named_reason_a_dead_letter_and_a_count(
    name: str, doc: Any, reason: str
) -> None:
    metrics = Metrics()
    policy = ReplyPolicy("send-time-responses", "creative-selection")
    svc = service(MemorySendTimeStore(), metrics, reply_policy=policy)
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    out = await svc.answer([Incoming(raw, b"acme", "send-time-requests", 3, 17)])
    assert [o.topic for o in out] == ["send-time-responses", "dead-letters"]
    (error,) = answers(out)
    assert isinstance(error, SendTimeError) and error.reason == reason
    letter = codec.decode("dead_letter", out[1].value)
    assert not isinstance(letter, codec.Rejected)
    assert (letter.reason, letter.offset, letter.original) == (reason, 17, raw)
    assert metrics.sendtime.errors.labels(reason)._value.get() == 1


async def test_an_allowed_reply_topic_gets_the_answer() -> None:
    policy = ReplyPolicy("send-time-responses", "creative-selection")
    svc = service(MemorySendTimeStore(), Metrics(), reply_policy=policy)
    doc = ask(1, reply_to="selection-replies.sender-eu")
    out = await svc.answer([record(doc, "send-time-requests", 0)])
    assert [o.topic for o in out] == ["selection-replies.sender-eu"]


def send(i: int, contact: str, t: float) -> dict[str, Any]:
    return {
        "schema": "send.v1", "event_id": f"s{i}", "account_id": "acme", "campaign_id": "news",
        "contact_id": contact, "creative_id": "c1", "time": t,
    }  # fmt: skip


def click(i: int, contact: str, t: float, send_id: str) -> dict[str, Any]:
    return {
        "schema": "click.v1", "event_id": f"k{i}", "account_id": "acme", "contact_id": contact,
        "creative_id": "c1", "time": t, "send_event_id": send_id,
    }  # fmt: skip


def history(contact: str, days: int) -> list[Incoming]:
    """A send a day at 09:xx and one at 19:xx Berlin time; only the evening ones clicked."""
    out, offset = [], {"sends": 0, "clicks": 0}
    for d in range(days):
        for hour in (9, 19):
            t = datetime(2026, 2, 1 + d, hour, 15, tzinfo=BERLIN).timestamp()
            sid = f"{contact}-{d}-{hour}"
            out.append(record(send(0, contact, t) | {"event_id": sid}, "sends", offset["sends"]))
            offset["sends"] += 1
            if hour == 19:
                doc = click(0, contact, t + 600, sid) | {"event_id": f"k-{sid}"}
                out.append(record(doc, "clicks", offset["clicks"]))
                offset["clicks"] += 1
    return out


def learner(store: MemorySendTimeStore, metrics: Metrics) -> SendTimeLearner:
    return SendTimeLearner(store=store, metrics=metrics, kinds=TOPICS, record_ttl=86_400)


def counts(store: MemorySendTimeStore, contact: str) -> tuple[np.ndarray, np.ndarray]:
    state = decode_slots(store.data[slots_key("acme", contact)], 12, False)
    assert not isinstance(state, Exception) and hasattr(state, "sends")
    sends = np.bincount(state.cell, weights=state.sends, minlength=12)
    clicks = np.bincount(state.cell, weights=state.responses, minlength=12)
    return sends, clicks


async def test_clicks_move_the_contacts_slot_posterior_and_its_send_times() -> None:
    store, metrics = MemorySendTimeStore(), Metrics()
    await service(store, metrics).answer(
        [record(ask(0, contact_id="ct-evening", zone="Europe/Berlin"), "send-time-requests", 0)]
    )
    outcomes = await learner(store, metrics).learn(history("ct-evening", 20))
    assert outcomes == {("send", "applied"): 40, ("response", "applied"): 20}
    sends, clicks = counts(store, "ct-evening")
    assert (sends[4], sends[9], clicks[4], clicks[9]) == (20, 20, 0, 20)  # 08-10h, 18-20h
    svc = service(store, metrics, settings_for=lambda a: SendTimeSettings(control_pct=0.0))
    batch = [
        record(ask(i, contact_id="ct-evening", launch_id=f"l{i}"), "send-time-requests", i)
        for i in range(200)
    ]
    slots = np.array([a.slot for a in answers(await svc.answer(batch))])  # type: ignore[union-attr]
    others = [record(ask(i, zone="Europe/Berlin"), "send-time-requests", i) for i in range(200)]
    new = np.array([a.slot for a in answers(await svc.answer(others))])  # type: ignore[union-attr]
    # the evening slot wins most draws (untried slots still win some: Beta(1, 1) against
    # Beta(21, 1)), the unanswered morning slot almost none; new contacts pick any of 7
    assert np.mean(slots == 9) > 0.6 and np.mean(slots == 4) < 0.05
    assert 0.05 < np.mean(new == 9) < 0.3 and 0.05 < np.mean(new == 4) < 0.3


async def test_redelivery_and_upstream_duplicates_change_nothing() -> None:
    store, metrics = MemorySendTimeStore(), Metrics()
    events = history("ct-1", 5)
    await learner(store, metrics).learn(events)
    before = dict(store.data)
    again = await learner(store, metrics).learn(events)  # the same positions: re-delivery
    assert store.data == before
    assert again == {("send", "replayed"): 10, ("response", "replayed"): 5}
    first_send = orjson.loads(events[0].value)
    first_click = orjson.loads(events[2].value)
    copies = [
        record(first_send, "sends", 100),  # the same event id at another offset
        record(first_click | {"event_id": "k-second"}, "clicks", 100),  # a second click
        record(click(9, "ct-1", LAUNCH, "never-sent"), "clicks", 101),
        record(first_click | {"send_event_id": None}, "clicks", 102),
        record(b"{", "sends", 101),
    ]
    outcomes = await learner(store, metrics).learn(copies)
    assert outcomes == {
        ("send", "duplicate"): 1,
        ("send", "rejected"): 1,
        ("response", "duplicate"): 1,
        ("response", "early"): 1,
        ("response", "unattributed"): 1,
    }
    sends, clicks = counts(store, "ct-1")
    assert (sends.sum(), clicks.sum()) == (10, 5)


async def test_a_click_read_before_its_send_counts_once_when_the_send_arrives() -> None:
    store, metrics = MemorySendTimeStore(), Metrics()
    events = history("ct-2", 6)
    sends = [e for e in events if e.topic == "sends"]
    clicks = [e for e in events if e.topic == "clicks"]
    first = await learner(store, metrics).learn(clicks[:3])  # three clicks, no send yet
    assert first == {("response", "early"): 3}
    again = await learner(store, metrics).learn(clicks[:3])  # read again before the sends
    assert again == {("response", "replayed"): 3}
    # the rest of the clicks come in the same batch as all the sends, before them
    mixed = await learner(store, metrics).learn(clicks[3:] + sends)
    assert mixed == {("send", "applied"): 12, ("response", "early"): 3, ("response", "applied"): 6}
    sends_per_slot, clicks_per_slot = counts(store, "ct-2")
    assert (sends_per_slot.sum(), clicks_per_slot.sum(), clicks_per_slot[9]) == (12, 6, 6)
    replay = await learner(store, metrics).learn(clicks + sends)  # all of it again
    # the clicks were read (early ones too: they advanced the contact's click offset)
    assert replay == {("response", "replayed"): 6, ("send", "replayed"): 12}
    again_sends, again_clicks = counts(store, "ct-2")
    assert (again_sends == sends_per_slot).all() and (again_clicks == clicks_per_slot).all()
    assert not any(k.startswith("st:early:") for k in store.data)


def batched(events: list[Incoming], per_message: int) -> list[Incoming]:
    """The same events as `event_batch.v1` messages of up to `per_message` per topic."""
    out = []
    for topic, kind in TOPICS.items():
        docs = [orjson.loads(e.value) for e in events if e.topic == topic]
        for n, start in enumerate(range(0, len(docs), per_message)):
            items = [
                {k: v for k, v in d.items() if k not in ("schema", "account_id")}
                for d in docs[start : start + per_message]
            ]
            doc = {"schema": "event_batch.v1", "kind": kind, "account_id": "acme", "events": items}
            out.append(record(doc, topic, n))
    return out


async def test_batch_messages_count_each_event_once_like_single_ones() -> None:
    single_store, batch_store, metrics = MemorySendTimeStore(), MemorySendTimeStore(), Metrics()
    events = history("ct-3", 8)
    await learner(single_store, metrics).learn(events)
    messages = batched(events, 5)  # sends first, then the clicks: a click after its send
    outcomes = await learner(batch_store, metrics).learn(messages)
    assert outcomes == {("send", "applied"): 16, ("response", "applied"): 8}
    assert all(
        (a == b).all()
        for a, b in zip(counts(single_store, "ct-3"), counts(batch_store, "ct-3"), strict=True)
    )
    again = await learner(batch_store, metrics).learn(messages[1:3])  # re-delivered
    assert again == {("send", "replayed"): 10}
    sends, clicks = counts(batch_store, "ct-3")
    assert (sends.sum(), clicks.sum()) == (16, 8)


async def test_metrics_never_name_a_contact() -> None:
    store, metrics = MemorySendTimeStore(), Metrics().start_series()
    await service(store, metrics).answer(
        [record(ask(i, contact_id=f"ct-secret-{i}"), "send-time-requests", i) for i in range(20)]
    )
    await learner(store, metrics).learn(history("ct-secret-x", 2))
    text = generate_latest(metrics.registry)
    assert b"ct-secret" not in text and b"creative_selection_send_times_total" in text
    hist = metrics.sendtime.local_time.labels("optimized")
    assert 0 < hist._sum.get() < 20 * 86_400


async def test_accounts_the_learner_does_not_learn_are_counted_and_left_alone() -> None:
    store, metrics = MemorySendTimeStore(), Metrics()
    events = history("ct-4", 3)
    quiet = SendTimeLearner(
        store=store, metrics=metrics, kinds=TOPICS, record_ttl=86_400, learns=lambda a: a != "acme"
    )
    outcomes = await quiet.learn(events)
    assert outcomes == {("send", "not_learned"): 6, ("response", "not_learned"): 3}
    assert store.data == {}
    learned = await learner(store, metrics).learn(events)  # every account's
    assert learned == {("send", "applied"): 6, ("response", "applied"): 3}
