"""Batch envelopes: every item decoded as its single form would be, a bad item refused
alone, and an envelope that cannot be trusted (size, count, schema, account, key)
refused whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.wire import batches, codec
from stream.wire.batches import MAX_ITEMS, Opened, open_events, open_requests, open_responses
from stream.wire.checks import Limits
from stream.wire.messages import (
    ClickEvent,
    SelectionError,
    SelectionRequest,
    SelectionResponse,
    SendEvent,
    encode,
)


def item(i: int, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "campaign_id": "k", "contact_id": f"u{i}", **extra}


def envelope(items: list[Any], account: Any = "acme", **extra: Any) -> bytes:
    doc = {"schema": "selection_request_batch.v1", "account_id": account, "requests": items}
    return orjson.dumps(doc | extra)


def opened(raw: bytes, **options: Any) -> Opened:
    result = open_requests(raw, **options)
    assert isinstance(result, Opened), result
    return result


def test_each_item_decodes_as_the_single_request_would() -> None:
    requests = [
        SelectionRequest("r1", "acme", "k", "u1"),
        SelectionRequest("r2", "acme", "k", "u2", 1000.5, "selection-replies.s1"),
    ]
    result = opened(batches.request_batch("acme", requests), key=b"acme")
    assert result.batched and result.account_id == "acme"
    assert [i.value for i in result.items] == requests
    for request in requests:
        single = codec.decode("selection_request", encode(request))
        assert single == request
        assert opened(encode(request)).items[0].value == single
        assert not opened(encode(request)).batched


def test_a_bad_item_is_refused_alone_with_its_index() -> None:
    raw = envelope(
        [item(0), item(1, contact_id=7), "not an object", item(3, schema="send.v1"), item(4)]
    )
    values = [i.value for i in opened(raw).items]
    assert isinstance(values[0], SelectionRequest) and isinstance(values[4], SelectionRequest)
    assert values[1] == codec.Rejected(
        "wrong_type", "requests[1].contact_id: must be a string, got integer"
    )
    assert values[2].reason == "not_an_object" and values[2].detail.startswith("requests[2]")
    assert values[3].reason == "schema_mismatch"


def test_an_item_of_another_account_is_refused_the_others_kept() -> None:
    items = opened(envelope([item(0, account_id="other"), item(1, account_id="acme")])).items
    assert items[0].value == codec.Rejected(
        "invalid_value", "requests[0].account_id: is not the batch's account_id"
    )
    assert isinstance(items[1].value, SelectionRequest)
    assert orjson.loads(items[0].raw(b"")) ["account_id"] == "other"  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (envelope([item(i) for i in range(MAX_ITEMS + 1)]), "oversized"),
        (envelope([]), "invalid_value"),
        (envelope([item(0)], account=None), "invalid_value"),
        (envelope([item(0)], account="x" * 201), "invalid_value"),
        (envelope([item(0)])[:-15] + b"}", "malformed_json"),
        (orjson.dumps({"schema": batches.REQUEST_BATCH, "account_id": "a"}), "invalid_value"),
        (orjson.dumps({"schema": "event_batch.v1", "events": [{}]}), "schema_mismatch"),
        (b"[1, 2]", "not_an_object"),
        (b"{not json", "malformed_json"),
        (None, "malformed_json"),
    ],
)  # fmt: skip
def test_an_envelope_that_cannot_be_trusted_is_refused_whole(raw: bytes, reason: str) -> None:
    result = open_requests(raw)
    assert isinstance(result, codec.Rejected) and result.reason == reason


def test_size_limits_single_and_batched() -> None:
    big = envelope([item(i, contact_id="c" * 150) for i in range(500)])
    assert 65_536 < len(big) < 1_048_576
    assert isinstance(open_requests(big), Opened)  # a batch may exceed one message's limit
    refused = open_requests(big, limits=Limits(max_batch_bytes=65_536))
    assert isinstance(refused, codec.Rejected) and refused.reason == "oversized"
    single = encode(SelectionRequest("r", "acme", "k", "u" * 150))
    refused = open_requests(single, max_bytes=100)
    assert isinstance(refused, codec.Rejected) and refused.reason == "oversized"


def test_the_key_must_be_the_batch_account() -> None:
    refused = open_requests(envelope([item(0)]), key=b"other")
    assert refused == codec.Rejected("invalid_value", "key: is not the batch's account_id")


def test_the_future_check_applies_to_each_item() -> None:
    raw = envelope([item(0, time=1000.0), item(1, time=1000.0 + 2 * 86_400)])
    values = [i.value for i in opened(raw, now=1000.0).items]
    assert isinstance(values[0], SelectionRequest)
    assert values[1].reason == "implausible_value"


def test_a_batch_holds_one_account_when_built() -> None:
    with pytest.raises(ValueError, match="one account"):
        batches.request_batch("acme", [SelectionRequest("r", "other", "k", "u")])
    with pytest.raises(ValueError, match="one kind"):
        batches.event_batch("send", "acme", [ClickEvent("e", "acme", "u", "c", 1.0)])


def test_events_batch_of_its_topic_kind_only() -> None:
    sends = [SendEvent(f"e{i}", "acme", "k", f"u{i}", "c1", 1000.0) for i in range(3)]
    raw = batches.event_batch("send", "acme", sends)
    result = open_events("send", raw, key=b"acme")
    assert isinstance(result, Opened) and [i.value for i in result.items] == sends
    assert open_events("click", raw) == codec.Rejected(
        "schema_mismatch", "kind: must be 'click' on this topic"
    )
    single = open_events("send", encode(sends[0]))
    assert isinstance(single, Opened) and single.items[0].value == sends[0]
    with pytest.raises(ValueError):
        open_events("selection_request", raw)


def test_bad_events_in_a_batch_are_refused_alone() -> None:
    doc = orjson.loads(
        batches.event_batch("send", "acme", [SendEvent("e", "acme", "k", "u", "c", 1.0)])
    )
    doc["events"] += [{"event_id": "e2"}, {**doc["events"][0], "time": -1}]  # fmt: skip
    result = open_events("send", orjson.dumps(doc))
    assert isinstance(result, Opened)
    reasons = [getattr(i.value, "reason", "ok") for i in result.items]
    assert reasons == ["ok", "missing_field", "invalid_value"]


def test_responses_single_or_batched() -> None:
    ok = SelectionResponse(
        "r1", "acme", "k", "c1", "automated", "thompson_single_step", "scored", "none", 0.5, 1, 9.0
    )
    error = SelectionError(None, None, "oversized", "too big", 9.0)
    raw = batches.response_batch([encode(ok), encode(error), b'{"status": 1}'])
    values = open_responses(raw)
    assert isinstance(values, list)
    assert values[:2] == [ok, error] and isinstance(values[2], codec.Rejected)
    assert open_responses(encode(ok)) == [ok]
    assert isinstance(open_responses(b"{"), codec.Rejected)


def test_salvaged_ids_of_a_refused_batch() -> None:
    raw = envelope([item(0), {"request_id": 5}, item(2)], key="ignored")
    assert batches.salvage_request_ids(raw) == (["r0", None, "r2"], "acme", True)
    assert batches.salvage_request_ids(encode(SelectionRequest("r", "a", "k", "u"))) == (
        ["r"],
        "a",
        False,
    )
    assert batches.salvage_request_ids(b"junk") == ([None], None, False)
