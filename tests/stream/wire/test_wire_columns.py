"""Decoding a batch into columns gives what the codec gives value by value: the same
accepted values in the same order, the same rejections by reason, the same error count."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.wire import codec
from stream.wire.checks import Limits
from stream.wire.columns import ColumnKind, decode_columns
from stream.wire.messages import (
    ClickEvent,
    ConversionEvent,
    SelectionError,
    SelectionResponse,
    SendEvent,
    encode,
)

BUILD = {
    "selection_response": SelectionResponse,
    "send": SendEvent,
    "click": ClickEvent,
    "conversion": ConversionEvent,
}
VALID: dict[ColumnKind, Any] = {
    "selection_response": SelectionResponse(
        "r1", "acct", "camp", "cr-1", "automated", "random", "uniform", "none", 0.25, 3, 1.7e9
    ),
    "send": SendEvent("s1", "acct", "camp", "contact-1", "cr-1", 1.7e9, "r1"),
    "click": ClickEvent("k1", "acct", "contact-1", "cr-1", 1.7e9 + 5, "s1", "camp"),
    "conversion": ConversionEvent("v1", "acct", "contact-1", "cr-1", 1.7e9 + 9, 12.5, "s1"),
}
MISSING = object()


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # integers beyond 64 bits too


CANDIDATES: list[Any] = [
    MISSING, None, True, False, 0, 1, 3.0, -1, 0.5, 1e11, 2**64, "", "x" * 200, "x" * 201,
    [], {}, "ok", "error", "exact", "degraded", "USD", "usd", "automated", "random",
    "uniform", "none", "send.v1", 2e6, 1.7e9,
]  # fmt: skip


def expected(
    kind: ColumnKind, raws: list[Any], limits: Limits
) -> tuple[list[Any], Counter[str], int]:
    decoded = [codec.decode(kind, raw, limits=limits) for raw in raws]
    accepted = [d for d in decoded if isinstance(d, BUILD[kind])]
    rejected = Counter(d.reason for d in decoded if isinstance(d, codec.Rejected))
    return accepted, rejected, sum(isinstance(d, SelectionError) for d in decoded)


def assert_same(kind: ColumnKind, raws: list[Any], limits: Limits = codec.LIMITS) -> None:
    accepted, rejected, errors = expected(kind, raws, limits)
    got = decode_columns(kind, raws, limits)
    assert got.size == len(accepted)
    assert got.rejected == rejected
    assert got.errors == errors
    for f in fields(BUILD[kind]):
        want = [getattr(m, f.name) for m in accepted]
        column = list(got.values.get(f.name, [None] * got.size))
        assert column == want, f.name
        assert [type(x) for x in column] == [type(x) for x in want] or f.name in {
            "time",
            "decided_at",
            "revenue",
            "propensity",
        }, f.name  # a JSON integer stays an int where the codec makes a float


def variants(kind: ColumnKind) -> list[bytes | None]:
    doc = orjson.loads(encode(VALID[kind]))
    names = [*doc, "cooldowns", "model_version", "currency", "request_id", "send_event_id", "x"]
    out: list[bytes | None] = [None, b"", b"{", b"[1]", b'"text"', b"{}", orjson.dumps(doc)]
    for name in names:
        for value in CANDIDATES:
            changed = dict(doc)
            if value is MISSING:
                changed.pop(name, None)
            else:
                changed[name] = value
            out += [dumps(changed), dumps(doc)]
    return out


@pytest.mark.parametrize("kind", list(BUILD))
def test_every_variant_of_every_field_decodes_as_the_codec_decodes_it(kind: ColumnKind) -> None:
    raws = variants(kind)
    assert_same(kind, raws)
    accepted, rejected, _ = expected(kind, raws, codec.LIMITS)
    assert len(accepted) > len(raws) // 2 and len(rejected) >= 4  # both sides exercised


@pytest.mark.parametrize("kind", list(BUILD))
def test_a_clean_batch_and_an_empty_one(kind: ColumnKind) -> None:
    assert_same(kind, [encode(VALID[kind])] * 5)
    assert decode_columns(kind, []).size == 0


def test_limits_apply_size_and_revenue() -> None:
    limits = Limits(max_bytes=200, max_revenue=10.0)
    small = ConversionEvent("v", "a", "c", "k", 1.7e9, 5.0)
    big = ConversionEvent("v" * 150, "a", "c", "k", 1.7e9, 5.0)
    rich = ConversionEvent("w", "a", "c", "k", 1.7e9, 50.0)
    raws = [encode(small), encode(big), encode(rich)]
    assert_same("conversion", raws, limits)
    assert decode_columns("conversion", raws, limits).rejected == {
        "oversized": 1,
        "implausible_value": 1,
    }


def test_a_value_the_codec_accepts_after_a_stricter_check_keeps_its_place() -> None:
    doc = orjson.loads(encode(VALID["selection_response"]))
    raws = [orjson.dumps({**doc, "request_id": f"r{i}"}) for i in range(4)]
    raws[1] = orjson.dumps({**doc, "request_id": "float-version", "params_version": 7.0})
    got = decode_columns("selection_response", raws)
    assert list(got.values["request_id"]) == ["r0", "float-version", "r2", "r3"]
    assert list(got.values["params_version"]) == [3, 7, 3, 3]


def test_error_responses_are_counted() -> None:
    error = codec.error_response("r2", "acct", "unknown_campaign", "no such campaign", 1e9)
    raws = [encode(VALID["selection_response"]), error, error]
    assert_same("selection_response", raws)
    assert decode_columns("selection_response", raws).errors == 2


scalars = st.none() | st.booleans() | st.integers(-5, 2**60) | st.text(max_size=5)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(list(BUILD)),
    changes=st.lists(
        st.tuples(st.integers(0, 20), st.sampled_from(["account_id", "time", "propensity",
                  "params_version", "send_event_id", "revenue", "arm", "schema", "x"]),
                  json_values),
        max_size=6,
    ),
)  # fmt: skip
def test_random_changes_decode_as_the_codec_decodes_them(
    kind: ColumnKind, changes: list[tuple[int, str, Any]]
) -> None:
    doc = orjson.loads(encode(VALID[kind]))
    docs = [dict(doc, **{"event_id": f"e{i}"}) for i in range(20)]
    for i, name, value in changes:
        docs[i % len(docs)][name] = value
    assert_same(kind, [dumps(d) for d in docs])


def test_the_checked_fields_are_the_codecs() -> None:
    """A field the codec learns (and this module not yet) sends every value carrying it
    to the codec: still exact, only slower. This test says when to add its check."""
    from stream.wire.columns import _specs
    from stream.wire.shapes import DECODERS, OK

    specs = _specs(codec.LIMITS)
    assert OK.known is not None
    assert set(specs["selection_response"].checks) == {*OK.known, "schema"}
    for kind in ("send", "click", "conversion"):
        shape: Any = DECODERS[kind]
        assert set(specs[kind].checks) == {name for name, _, _ in shape.fields} | {"schema"}
