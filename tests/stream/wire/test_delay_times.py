"""Delay times on the wire: a click's `send_time`, a conversion's `click_time`, and the
feedback timing a correction carries."""

from __future__ import annotations

import orjson
import pytest

from selector.reconcile import correction
from selector.stats import Event, fold
from stream.wire import codec
from stream.wire.corrections import to_delta, to_message
from stream.wire.messages import ClickEvent, ConversionEvent, encode

CLICK = {
    "schema": "click.v1",
    "event_id": "k1",
    "account_id": "acme",
    "contact_id": "p1",
    "creative_id": "c1",
    "time": 1_767_200_600.0,
}


def test_a_click_carries_its_send_time_and_a_conversion_its_click_time() -> None:
    click = codec.decode("click", orjson.dumps({**CLICK, "send_time": 1_767_200_000}))
    assert isinstance(click, ClickEvent)
    assert click.send_time == 1_767_200_000.0
    doc = {**CLICK, "schema": "conversion.v1", "revenue": 3.5, "click_time": 1_767_200_300.5}
    conversion = codec.decode("conversion", orjson.dumps(doc))
    assert isinstance(conversion, ConversionEvent)
    assert conversion.click_time == 1_767_200_300.5


@pytest.mark.parametrize("value", [None, "absent"])
def test_events_from_older_senders_have_no_origin_time(value: object) -> None:
    doc = dict(CLICK) if value == "absent" else {**CLICK, "send_time": value}
    click = codec.decode("click", orjson.dumps(doc))
    assert isinstance(click, ClickEvent) and click.send_time is None
    assert b"send_time" not in encode(click)  # and it is written without the field


@pytest.mark.parametrize(
    ("value", "reason"), [(-5, "invalid_value"), ("soon", "wrong_type"), (1e11, "invalid_value")]
)
def test_a_bad_send_time_is_rejected_with_its_reason(value: object, reason: str) -> None:
    rejected = codec.decode("click", orjson.dumps({**CLICK, "send_time": value}))
    assert isinstance(rejected, codec.Rejected)
    assert rejected.reason == reason and "send_time" in rejected.detail


def timed_stats() -> tuple[object, object]:
    t = 1_767_200_000.0
    seen = [Event("send", "c1", t), Event("send", "c2", t + 60)]
    missed = [
        Event("click", "c1", t + 700, origin_time=t),
        Event("conversion", "c1", t + 4000, 9_000_000, origin_time=t + 700),
    ]
    return fold(seen), fold(seen + missed)


def test_a_correction_round_trips_its_timing_and_restores_the_recomputed_timing() -> None:
    streamed, recomputed = timed_stats()
    delta = correction(streamed, recomputed)  # type: ignore[arg-type]
    assert delta is not None and not delta.timing.is_empty()
    decoded = codec.decode("stats_correction", encode(to_message("acme", delta, "r1", 0.0)))
    assert not isinstance(decoded, codec.Rejected)
    back = to_delta(decoded, None)
    assert back.timing == delta.timing
    assert streamed.merge(back).timing == recomputed.timing  # type: ignore[attr-defined]


def test_a_correction_without_timing_leaves_the_field_out_and_decodes_to_empty_timing() -> None:
    streamed, _ = timed_stats()
    plus = fold([Event("send", "c1", 1_767_200_000.0)], streamed)  # type: ignore[arg-type]
    delta = correction(plus, streamed)  # type: ignore[arg-type]
    assert delta is not None
    body = encode(to_message("acme", delta, "r1", 0.0))
    decoded = codec.decode("stats_correction", body)
    assert not isinstance(decoded, codec.Rejected)
    assert (b"timing" in body) == (not delta.timing.is_empty())
    assert to_delta(decoded, None).timing == delta.timing


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update(click_delays=t["click_delays"][:-1]),
        lambda t: t["sends"].update(c1=[[1, 2]]),
        lambda t: t.update(latest=-1.0),
        lambda t: t.update(extra=1),
    ],
)
def test_a_malformed_timing_is_rejected_not_applied(change: object) -> None:
    streamed, recomputed = timed_stats()
    delta = correction(streamed, recomputed)  # type: ignore[arg-type]
    assert delta is not None
    doc = orjson.loads(encode(to_message("acme", delta, "r1", 0.0)))
    change(doc["timing"])  # type: ignore[operator]
    rejected = codec.decode("stats_correction", orjson.dumps(doc))
    assert isinstance(rejected, codec.Rejected)
    assert rejected.reason in ("invalid_value", "wrong_type") and "timing" in rejected.detail
