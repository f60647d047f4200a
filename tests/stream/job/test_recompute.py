"""The recomputation without Kafka: it decodes exactly as the stats agent does, counts
only what the cut covers, checks the catalog, and dedups per account and kind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selector.stats import Counts, Event, fold
from stream.job.recompute import Plain, Recompute, Scope, decode_event
from stream.wire import codec
from tests.stream.wire.test_codec import EXAMPLES, JSON, dumps, mutated, mutations, paths

NOW = 1_767_300_000.0
LIMITS = codec.Limits(max_revenue=500.0, max_future_seconds=60.0)
EVENT_EXAMPLES = sorted(n for n, (k, _) in EXAMPLES.items() if k in ("send", "click", "conversion"))


def assert_same_as_codec(kind: str, raw: bytes, key: bytes | None) -> None:
    ours = decode_event(kind, raw, key, LIMITS, NOW)
    theirs: Any = codec.decode(kind, raw, key=key, limits=LIMITS, now=NOW)
    if isinstance(theirs, codec.Rejected):
        assert ours == theirs
    else:
        revenue = getattr(theirs, "revenue_micros", 0)
        assert ours == (
            theirs.account_id,
            theirs.creative_id,
            theirs.event_id,
            theirs.time,
            revenue,
            getattr(theirs, {"click": "send_time", "conversion": "click_time"}.get(kind, ""), None),
        )
        assert type(ours[3]) is float


@pytest.mark.parametrize("name", EVENT_EXAMPLES)
def test_every_mutation_of_every_event_example_decodes_as_the_codec_decodes_it(name: str) -> None:
    kind, doc = EXAMPLES[name]
    key = doc["account_id"].encode()
    for bad in [doc, *mutations(doc)]:
        for k in (key, None, b"other"):
            assert_same_as_codec(kind, dumps(bad), k)


@pytest.mark.parametrize(
    "change",
    [
        {"time": NOW + 61},  # implausible: too far in the future
        {"time": NOW + 60},
        {"time": 12},
        {"revenue": 500.01},  # implausible: above the ceiling
        {"revenue": 500},
        {"revenue": 0.0000005},
        {"currency": "EUR"},
        {"currency": "eur"},
        {"send_event_id": None},
        {"zz": [1, 2]},
    ],
    ids=str,
)
def test_limits_and_optional_fields_decode_as_the_codec_decodes_them(
    change: dict[str, Any],
) -> None:
    doc = {**EXAMPLES["conversion/with_revenue"][1], **change}
    assert_same_as_codec("conversion", dumps(doc), doc["account_id"].encode())


def test_oversized_non_bytes_and_tombstones_are_the_codecs_verdict() -> None:
    doc = {**EXAMPLES["send/minimal"][1], "contact_id": "x" * 200}
    raw = dumps(doc)
    small = codec.Limits(max_bytes=len(raw) - 1)
    assert decode_event("send", raw, None, small, NOW) == codec.decode("send", raw, limits=small)
    assert decode_event("send", None, None, LIMITS, NOW) == codec.Rejected(
        "malformed_json", "no value (a tombstone?)"
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(EVENT_EXAMPLES), data=st.data(), value=JSON)
def test_random_values_anywhere_decode_as_the_codec_decodes_them(
    name: str, data: st.DataObject, value: Any
) -> None:
    kind, doc = EXAMPLES[name]
    path = data.draw(st.sampled_from(list(paths(doc))))
    assert_same_as_codec(kind, dumps(mutated(doc, path, value)), doc["account_id"].encode())


# --- the fold ---------------------------------------------------------------------------


def event(
    kind: str, event_id: str, account: str = "acme", creative: str = "c1", **extra: Any
) -> bytes:
    doc: dict[str, Any] = {
        "schema": f"{kind}.v1",
        "event_id": event_id,
        "account_id": account,
        "contact_id": "p1",
        "creative_id": creative,
        "time": 1_767_200_000.0,
        **extra,
    }
    if kind == "send":
        doc["campaign_id"] = "k"
    if kind == "conversion":
        doc.setdefault("revenue", 12.5)
    return json.dumps(doc).encode()


def records(*values: bytes, key: bytes | None = b"acme", first: int = 0) -> list[Plain]:
    return [Plain(first + i, key, v) for i, v in enumerate(values)]


SCOPE = Scope(
    cut={"acme": {"sends:0": 3, "clicks:0": 1, "conversions:0": 0}, "beta": {"sends:0": 99}},
    creatives={"acme": frozenset({"c1", "c2"}), "beta": frozenset({"c1"})},
    half_life={"acme": None, "beta": 600.0},
)


def test_only_records_at_or_below_the_accounts_cut_count() -> None:
    fold = Recompute(SCOPE, LIMITS, NOW)
    fold.feed("send", "sends", 0, records(*(event("send", f"s{i}") for i in range(6))))
    assert fold.tallies["acme"].stats().creative("c1") == Counts(sends=4)
    assert fold.outcomes["send", "after_cut"] == 2
    fold.feed("send", "sends", 1, records(event("send", "other-partition")))
    assert fold.outcomes["send", "after_cut"] == 3  # no cut on sends:1 for acme


def test_invalid_events_and_unknown_creatives_are_rejected_and_register_no_id() -> None:
    fold = Recompute(SCOPE, LIMITS, NOW)
    fold.feed(
        "send",
        "sends",
        0,
        records(
            event("send", "s1", creative="gone"),
            b"{not json",
            event("send", "s1"),
            event("send", "s1"),
        ),
    )
    assert fold.outcomes["send", "rejected"] == 2
    assert fold.outcomes["send", "counted"] == 1 and fold.outcomes["send", "duplicate"] == 1


def test_dedup_is_per_account_and_kind_and_the_first_occurrence_wins() -> None:
    fold = Recompute(SCOPE, LIMITS, NOW)
    fold.feed("send", "sends", 0, records(event("send", "e1", creative="c2"), event("send", "e1")))
    fold.feed("click", "clicks", 0, records(event("click", "e1")))  # same id, another kind
    fold.feed(
        "send", "sends", 0, records(event("send", "e1", account="beta"), key=b"beta", first=4)
    )
    acme = fold.tallies["acme"].stats()
    assert acme.creative("c2") == Counts(sends=1)  # the first e1 send, at offset 0
    assert acme.creative("c1") == Counts(clicks=1)
    assert fold.tallies["beta"].stats().creative("c1") == Counts(sends=1)
    assert fold.tallies["beta"].stats().half_life_seconds == 600.0


def test_conversions_count_revenue_in_exact_micros() -> None:
    fold = Recompute(SCOPE, LIMITS, NOW)
    fold.feed(
        "conversion",
        "conversions",
        0,
        records(event("conversion", "v1", revenue=0.1), event("conversion", "v2")),
    )
    assert fold.tallies["acme"].stats().creative("c1") == Counts(
        conversions=1, revenue_micros=100_000
    )


def test_the_stop_offset_is_one_past_the_highest_cut_of_the_partition() -> None:
    assert SCOPE.stop_offset("sends", 0) == 100
    assert SCOPE.stop_offset("clicks", 0) == 2
    assert SCOPE.stop_offset("sends", 3) == 0


def test_delay_times_fold_into_the_recomputed_timing_as_the_stats_agent_folds_them() -> None:
    fold_ = Recompute(SCOPE, LIMITS, NOW)
    t = 1_767_200_000.0
    fold_.feed("send", "sends", 0, records(event("send", "s1", time=t - 900)))
    clicks = (
        event("click", "k1", time=t, send_time=t - 900),
        event("click", "k2", time=t + 5, send_time=None),  # null: no delay observed
    )
    fold_.feed("click", "clicks", 0, records(*clicks))
    fold_.feed(
        "conversion",
        "conversions",
        0,
        records(event("conversion", "v1", time=t, click_time=t - 60)),
    )
    streamed = fold(
        [
            Event("send", "c1", t - 900),
            Event("click", "c1", t, origin_time=t - 900),
            Event("conversion", "c1", t, 12_500_000, origin_time=t - 60),
        ]
    )
    recomputed = fold_.tallies["acme"].stats()
    assert recomputed.creative("c1") == Counts(1, 2, 1, 12_500_000)
    assert recomputed.timing.click_delays == streamed.timing.click_delays
    assert sum(recomputed.timing.click_delays) == 1
    assert recomputed.timing.conversion_delays == streamed.timing.conversion_delays
    assert sum(recomputed.timing.conversion_delays) == 1


@pytest.mark.parametrize("origin", [-1.0, "soon", True, 2e10])
def test_a_bad_delay_time_is_the_codecs_verdict(origin: object) -> None:
    raw = event("click", "k1", send_time=origin)
    assert_same_as_codec("click", raw, b"acme")
    assert isinstance(decode_event("click", raw, b"acme", LIMITS, NOW), codec.Rejected)
