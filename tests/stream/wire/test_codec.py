"""The codec against the JSON Schemas: whatever one rejects the other rejects, with the
codec's reason named; round trips; limits; the dead-letter and error encoders."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selector.batch import Decision
from stream.wire import codec
from stream.wire.codec import LIMITS, Limits, Rejected, dead_letter, decode, error_response
from stream.wire.messages import (
    KINDS,
    ClickEvent,
    ConversionEvent,
    DeadLetter,
    Message,
    SelectionError,
    SelectionRequest,
    SelectionResponse,
    SendEvent,
    encode,
    key_of,
    revenue_to_micros,
)
from stream.wire.reasons import DECODE_REJECTIONS

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
VALIDATORS: dict[str, jsonschema.Draft202012Validator] = {
    kind: jsonschema.Draft202012Validator(
        json.loads((SCHEMAS / f"{kind}.v1.schema.json").read_text())
    )
    for kind in KINDS
}
EXAMPLES = {
    f"{p.parent.name}/{p.stem}": (p.parent.name, json.loads(p.read_text()))
    for p in sorted(SCHEMAS.glob("examples/*/*.json"))
    if p.parent.name in KINDS  # batch envelopes: tests/schemas/test_batch_schemas.py
}
SEND = EXAMPLES["send/from_selection"][1]
CONVERSION = EXAMPLES["conversion/with_revenue"][1]
# What the codec may reject although the schema accepts: rules JSON Schema cannot state.
CODEC_ONLY = (
    *("traffic_pct must sum to 100", "lists a method twice", "more than once"),
    *("min must be below max", "declares a name twice"),  # custom_fields
    *("start != end", "unknown time zone", "bucket_days <= history_days"),  # send-time rules
)


def _reject_constant(value: str) -> float:
    raise ValueError(f"{value} is not JSON")


def _strict_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a double")
    return value


def schema_accepts(kind: str, raw: bytes) -> bool:
    """The contract on its own: RFC 8259 JSON (no NaN, no overflowing numbers), then the
    schema."""
    try:
        doc = json.loads(raw, parse_constant=_reject_constant, parse_float=_strict_float)
    except ValueError:
        return False
    return bool(VALIDATORS[kind].is_valid(doc))


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def with_(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy with fields replaced; a value of `...` removes the field."""
    out = dict(doc)
    for name, value in changes.items():
        if value is ...:
            out.pop(name, None)
        else:
            out[name] = value
    return out


# --- the named reject corpus ---------------------------------------------------------

LONG = "x" * 201
CORPUS: list[tuple[str, str, bytes, str]] = [
    ("malformed json", "send", b'{"schema": "send.v1", "event_id": ', "malformed_json"),
    ("not utf-8", "send", b'{"schema": "send.v1", "event_id": "\xff"}', "malformed_json"),
    ("NaN", "send", dumps(with_(SEND, time=float("nan"))), "malformed_json"),
    ("Infinity", "conversion", dumps(with_(CONVERSION, revenue=math.inf)), "malformed_json"),
    (
        "overflowing double",
        "send",
        dumps(SEND).replace(b"1767225601.25", b"1e400"),
        "malformed_json",
    ),
    ("array", "send", dumps([SEND]), "not_an_object"),
    ("string", "send", b'"send.v1"', "not_an_object"),
    ("null", "send", b"null", "not_an_object"),
    ("no schema", "send", dumps(with_(SEND, schema=...)), "schema_mismatch"),
    ("unknown version", "send", dumps(with_(SEND, schema="send.v2")), "schema_mismatch"),
    ("another message", "send", dumps(with_(SEND, schema="click.v1")), "schema_mismatch"),
    ("schema not a string", "send", dumps(with_(SEND, schema=["send.v1"])), "schema_mismatch"),
    ("negative revenue", "conversion", dumps(with_(CONVERSION, revenue=-0.01)), "invalid_value"),
    ("huge revenue", "conversion", dumps(with_(CONVERSION, revenue=1e300)), "invalid_value"),
    (
        "huge integer revenue",
        "conversion",
        dumps(with_(CONVERSION, revenue=10**30)),
        "invalid_value",
    ),
    ("millisecond time", "send", dumps(with_(SEND, time=1767225600123)), "invalid_value"),
    ("negative time", "send", dumps(with_(SEND, time=-1)), "invalid_value"),
    ("bool time", "send", dumps(with_(SEND, time=True)), "wrong_type"),
    ("bool revenue", "conversion", dumps(with_(CONVERSION, revenue=False)), "wrong_type"),
    ("string revenue", "conversion", dumps(with_(CONVERSION, revenue="24.99")), "wrong_type"),
    ("too long id", "send", dumps(with_(SEND, contact_id=LONG)), "invalid_value"),
    ("empty id", "send", dumps(with_(SEND, creative_id="")), "invalid_value"),
    ("numeric id", "send", dumps(with_(SEND, account_id=7)), "wrong_type"),
    ("null required id", "send", dumps(with_(SEND, event_id=None)), "wrong_type"),
    ("lowercase currency", "conversion", dumps(with_(CONVERSION, currency="usd")), "invalid_value"),
    (
        "currency and newline",
        "conversion",
        dumps(with_(CONVERSION, currency="USD\n")),
        "invalid_value",
    ),
    ("oversized", "send", dumps(with_(SEND, contact_id="x" * 70_000)), "oversized"),
]
for field in ("event_id", "account_id", "campaign_id", "contact_id", "creative_id", "time"):
    CORPUS.append((f"missing {field}", "send", dumps(with_(SEND, **{field: ...})), "missing_field"))
    wrong = 1.5 if field != "time" else "1767225600"
    CORPUS.append(
        (f"wrong type {field}", "send", dumps(with_(SEND, **{field: wrong})), "wrong_type")
    )
for field in ("revenue", "contact_id"):
    raw = dumps(with_(CONVERSION, **{field: ...}))
    CORPUS.append((f"missing conversion {field}", "conversion", raw, "missing_field"))


@pytest.mark.parametrize(
    ("kind", "raw", "reason"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_the_reject_corpus_is_rejected_by_both_with_the_codecs_reason(
    kind: str, raw: bytes, reason: str
) -> None:
    result = decode(kind, raw)
    assert isinstance(result, Rejected)
    assert result.reason == reason, result.detail
    assert result.reason in DECODE_REJECTIONS
    assert not schema_accepts(kind, raw)


# --- mutations of every example: codec and schema agree --------------------------------

REPLACEMENTS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    0.5,
    1.5,
    3.0,
    100,
    101,
    1e10 + 1,
    1e300,
    10**30,
    2**63,
    "",
    "x",
    "ABC",
    "USD\n",
    "ok",
    "error",
    "manual",
    "automated",
    "none",
    "scored",
    "x" * 201,
    "YWJj",
    "abc\n",
    [],
    ["x"],
    ["x", "x"],
    {},
    {"x": 1},
]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from paths(value, (*prefix, i))


def mutated(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def mutations(doc: dict[str, Any]) -> Iterator[Any]:
    for path in [(), *paths(doc)]:
        node = get(doc, path)
        if isinstance(node, dict):
            yield mutated(doc, path, {**node, "zz_unknown": 1}) if path else {**doc, "zz": 1}
        if path:
            yield mutated(doc, path, ...)
            for value in REPLACEMENTS:
                yield mutated(doc, path, value)


def assert_agree(kind: str, raw: bytes) -> None:
    result = decode(kind, raw, limits=Limits(max_revenue=math.inf))
    by_schema = schema_accepts(kind, raw)
    if isinstance(result, Rejected):
        assert result.reason in DECODE_REJECTIONS
        assert not by_schema or any(rule in result.detail for rule in CODEC_ONLY), (
            f"codec rejects ({result}) what the schema accepts: {raw!r}"
        )
    else:
        assert by_schema, f"codec accepts what the schema rejects: {raw!r}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_codec_and_schema_agree_on_every_single_mutation_of_every_example(name: str) -> None:
    kind, doc = EXAMPLES[name]
    for bad in mutations(doc):
        assert_agree(kind, dumps(bad))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(EXAMPLES)), data=st.data(), value=JSON)
def test_codec_and_schema_agree_on_random_values_anywhere(
    name: str, data: st.DataObject, value: Any
) -> None:
    kind, doc = EXAMPLES[name]
    path = data.draw(st.sampled_from(list(paths(doc))))
    assert_agree(kind, dumps(mutated(doc, path, value)))


@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    for kind in KINDS:
        result = decode(kind, raw)
        assert isinstance(result, Rejected)


@given(doc=st.dictionaries(st.sampled_from(list(SEND)), JSON, max_size=8))
def test_arbitrary_objects_never_raise(doc: dict[str, Any]) -> None:
    for kind in KINDS:
        decode(kind, dumps({"schema": f"{kind}.v1", **doc}))


def test_catalog_rules_beyond_the_schema_are_the_codecs() -> None:
    settings_doc = EXAMPLES["account_settings/full"][1]
    methods = [{"method": "random", "traffic_pct": 60}, {"method": "random", "traffic_pct": 40}]
    twice = with_(settings_doc, settings={"methods": methods})
    result = decode("account_settings", dumps(twice))
    assert isinstance(result, Rejected) and result.reason == "invalid_value"
    assert schema_accepts("account_settings", dumps(twice))
    offers = EXAMPLES["offers/basic"][1]
    dup = with_(offers, offers=[offers["offers"][0]] * 2)
    offers_result = decode("offers", dumps(dup))
    assert isinstance(offers_result, Rejected) and "more than once" in offers_result.detail


def test_unknown_fields_are_ignored_in_events_and_rejected_in_what_we_own() -> None:
    assert isinstance(decode("send", dumps({**SEND, "channel": "sms"})), SendEvent)
    offers = EXAMPLES["offers/basic"][1]
    result = decode("offers", dumps({**offers, "channel": "sms"}))
    assert isinstance(result, Rejected) and result.reason == "invalid_value"


def test_details_name_the_field_but_never_echo_a_string_value() -> None:
    phone = "+1-555-0100-" * 20
    for doc in (with_(SEND, contact_id=phone), with_(CONVERSION, currency="+1-555-0100")):
        result = decode("conversion" if "revenue" in doc else "send", dumps(doc))
        assert isinstance(result, Rejected) and "555" not in result.detail
        assert result.detail.split(":")[0] in ("contact_id", "currency")


# --- limits, keys, plausibility -------------------------------------------------------


def test_size_limit_is_inclusive_and_configurable() -> None:
    raw = dumps(SEND)
    assert isinstance(decode("send", raw, max_bytes=len(raw)), SendEvent)
    result = decode("send", raw, max_bytes=len(raw) - 1)
    assert isinstance(result, Rejected) and result.reason == "oversized"
    small = Limits(max_bytes=10)
    assert decode("send", raw, limits=small) == Rejected(
        "oversized", f"{len(raw)} bytes, the limit is 10"
    )
    assert LIMITS.max_bytes_for("campaigns") > LIMITS.max_bytes_for("send")


def test_the_kafka_key_must_be_the_account() -> None:
    raw = dumps(SEND)
    assert isinstance(decode("send", raw, key=SEND["account_id"].encode()), SendEvent)
    result = decode("send", raw, key=b"acct-other")
    assert isinstance(result, Rejected) and result.reason == "invalid_value"


def test_implausible_values_are_named_and_configurable() -> None:
    raw = dumps(with_(CONVERSION, revenue=2_000_000))
    assert isinstance(decode("conversion", raw, limits=Limits(max_revenue=1e7)), ConversionEvent)
    result = decode("conversion", raw)
    assert isinstance(result, Rejected) and result.reason == "implausible_value"
    assert schema_accepts("conversion", raw)
    raw = dumps(with_(SEND, time=SEND["time"] + 2 * 86400))
    assert isinstance(decode("send", raw), SendEvent)  # no clock, no check
    future = decode("send", raw, now=SEND["time"])
    assert isinstance(future, Rejected) and future.reason == "implausible_value"
    assert isinstance(decode("send", raw, now=SEND["time"] + 86400 + 1), SendEvent)


def test_a_tombstone_is_rejected_not_raised() -> None:
    result = decode("offers", None)
    assert isinstance(result, Rejected) and result.reason == "malformed_json"


def test_an_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown message kind"):
        decode("sends", b"{}")


def test_integral_floats_are_integers_as_in_json_schema() -> None:
    doc = EXAMPLES["selection_response/ok_scored"][1]
    result = decode("selection_response", dumps(with_(doc, params_version=1842.0)))
    assert isinstance(result, SelectionResponse) and result.params_version == 1842
    assert type(result.params_version) is int


# --- round trips and revenue ----------------------------------------------------------

ID = st.text(min_size=1, max_size=200).filter(
    lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
)
TIME = st.floats(0, 1e10) | st.integers(0, 10**10).map(float)
OPT = st.none() | ID
EVENTS = st.one_of(
    st.builds(SendEvent, ID, ID, ID, ID, ID, TIME, OPT),
    st.builds(ClickEvent, ID, ID, ID, ID, TIME, OPT, OPT),
    st.builds(
        ConversionEvent,
        ID,
        ID,
        ID,
        ID,
        TIME,
        st.floats(0, 1e6),
        OPT,
        OPT,
        st.none() | st.sampled_from(["USD", "EUR"]),
    ),
    st.builds(
        SelectionRequest,
        ID,
        ID,
        ID,
        ID,
        st.none() | TIME,
        st.none() | st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True),
    ),
)


@settings(max_examples=300)
@given(message=EVENTS)
def test_events_round_trip_and_validate(message: Message) -> None:
    raw = encode(message)
    assert decode(message.kind, raw) == message
    assert schema_accepts(message.kind, raw)
    assert key_of(message) == message.account_id.encode()  # type: ignore[union-attr]


@given(micros=st.integers(0, 10**15))
def test_revenue_converts_to_integer_micros_exactly(micros: int) -> None:
    text = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
    assert revenue_to_micros(float(text)) == micros
    raw = dumps(with_(CONVERSION, revenue=0)).replace(
        b'"revenue": 0', f'"revenue": {text}'.encode()
    )
    event = decode("conversion", raw, limits=Limits(max_revenue=math.inf))
    assert isinstance(event, ConversionEvent) and event.revenue_micros == micros


def test_a_response_from_a_decision_round_trips() -> None:
    request = decode("selection_request", dumps(EXAMPLES["selection_request/minimal"][1]))
    assert isinstance(request, SelectionRequest)
    decision = Decision("cr-spring-b", "automated", "thompson_two_step", "scored", "none", 0.25, 7)
    response = SelectionResponse.from_decision(request, decision, 1767225600.5)
    assert decode("selection_response", encode(response)) == response
    assert codec.ok_response(request, decision, 1767225600.5) == encode(response)
    assert "contact_id" not in orjson.loads(encode(response))
    unknown = Decision("cr-x", "automated", "thompson_two_step", "scored", "none", math.nan, 7)
    assert SelectionResponse.from_decision(request, unknown, 0.0).propensity is None


def test_a_degraded_response_says_so_and_an_exact_one_leaves_the_field_out() -> None:
    request = decode("selection_request", dumps(EXAMPLES["selection_request/minimal"][1]))
    assert isinstance(request, SelectionRequest)
    decision = Decision("cr-a", "automated", "thompson_single_step", "scored", "none", 0.5, 3)
    degraded = SelectionResponse.from_decision(request, decision, 10.0, "degraded")
    raw = codec.ok_response(request, decision, 10.0, degraded=True)
    assert raw == encode(degraded) and orjson.loads(raw)["cooldowns"] == "degraded"
    assert decode("selection_response", raw) == degraded
    assert schema_accepts("selection_response", raw)
    exact = codec.ok_response(request, decision, 10.0)
    assert "cooldowns" not in orjson.loads(exact)
    assert decode("selection_response", exact) == SelectionResponse.from_decision(
        request, decision, 10.0
    )
    wrong = orjson.dumps({**orjson.loads(raw), "cooldowns": "stale"})
    assert isinstance(decode("selection_response", wrong), codec.Rejected)


@given(
    propensity=st.one_of(st.floats(allow_nan=True), st.just(np.float64(0.3))),
    version=st.one_of(st.integers(0, 2**53 - 1), st.just(np.int64(12))),
    now=st.floats(0, 1e10),
)
def test_ok_response_writes_the_encoders_bytes(propensity: float, version: int, now: float) -> None:
    request = decode("selection_request", dumps(EXAMPLES["selection_request/minimal"][1]))
    assert isinstance(request, SelectionRequest)
    decision = Decision("cr-a", "control", "control", "fallback", "none", propensity, version)
    expected = encode(SelectionResponse.from_decision(request, decision, now))
    assert codec.ok_response(request, decision, now) == expected


def test_ok_response_names_the_dropped_custom_values_as_the_encoder_does() -> None:
    request = decode("selection_request", dumps(EXAMPLES["selection_request/minimal"][1]))
    assert isinstance(request, SelectionRequest)
    decision = Decision("cr-a", "automated", "model", "scored", "none", 0.5, 3)
    dropped = (("plan", "unknown_category"), ("age", "out_of_bounds"))
    body = codec.ok_response(request, decision, 10.0, custom_dropped=dropped)
    response = dataclasses.replace(
        SelectionResponse.from_decision(request, decision, 10.0),
        custom_dropped=tuple({"field": f, "reason": r} for f, r in dropped),
    )
    assert body == encode(response)
    assert schema_accepts("selection_response", body)
    assert decode("selection_response", body) == response


# --- dead letters and error responses -------------------------------------------------


def test_dead_letter_keeps_source_and_original_and_validates() -> None:
    raw, key = b'{"schema": "send.v1", oops', b"acct-7f3a"
    record = dead_letter(raw, key, "malformed_json", "bad", "sends", 3, 42, 1767225600.0)
    assert schema_accepts("dead_letter", record)
    letter = decode("dead_letter", record)
    assert letter == DeadLetter(
        "malformed_json", "bad", "sends", 3, 42, raw, len(raw), key, 1767225600.0
    )


def test_dead_letter_cuts_a_huge_original_and_says_so() -> None:
    raw = b"x" * 100_000
    record = dead_letter(
        raw, None, "oversized", "d" * 5000, "sends", 0, 1, 0.0, max_original_bytes=1000
    )
    letter = decode("dead_letter", record)
    assert isinstance(letter, DeadLetter)
    assert letter.original == raw[:1000] and letter.original_size == 100_000
    assert letter.key is None and len(letter.detail) == 2000
    assert orjson.loads(record)["original"] == base64.b64encode(raw[:1000]).decode()


def test_error_response_is_valid_whatever_was_wrong() -> None:
    record = error_response("req-1", "acct-1", "unknown_campaign", "campaign_id: unknown", 5.0)
    assert schema_accepts("selection_response", record)
    assert decode("selection_response", record) == SelectionError(
        "req-1", "acct-1", "unknown_campaign", "campaign_id: unknown", 5.0
    )
    record = error_response("r" * 300, "", "invalid_value", "m" * 9000, 5.0)
    error = decode("selection_response", record)
    assert isinstance(error, SelectionError) and schema_accepts("selection_response", record)
    assert (error.request_id, error.account_id, len(error.message)) == (None, None, 2000)


def test_ids_are_salvaged_from_a_rejected_request_when_readable() -> None:
    bad = dumps({"request_id": "req-9", "account_id": "acct-1", "time": "soon"})
    assert codec.salvage_ids(bad) == ("req-9", "acct-1")
    assert codec.salvage_ids(b"[1]") == (None, None)
    assert codec.salvage_ids(b"{") == (None, None)
    assert codec.salvage_ids(dumps({"request_id": 5})) == (None, None)


# --- benchmark (reported, not asserted) -----------------------------------------------


def rates(n: int = 20_000) -> tuple[float, float]:
    raws = [dumps(with_(SEND, event_id=f"snd-{i}")) for i in range(n)]
    start = time.perf_counter()
    for raw in raws:
        decode("send", raw)
    codec_rate = n / (time.perf_counter() - start)
    validate = VALIDATORS["send"].is_valid
    start = time.perf_counter()
    for raw in raws[: n // 10]:
        validate(orjson.loads(raw))
    return codec_rate, (n // 10) / (time.perf_counter() - start)


def test_bench_decode_against_jsonschema(capsys: pytest.CaptureFixture[str]) -> None:
    codec_rate, schema_rate = rates()
    with capsys.disabled():
        print(
            f"\nsend.v1: codec {codec_rate:,.0f} msgs/s, jsonschema {schema_rate:,.0f} msgs/s "
            f"({codec_rate / schema_rate:.0f}x)"
        )
