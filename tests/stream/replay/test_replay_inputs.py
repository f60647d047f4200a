"""The replay's pure parts that read input: files (plain and gzip), topic records and
dead letters, offset and time ranges, and the index of events already in the target."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from stream.replay.existing import IndexBuilder, SeenIndex, event_hash
from stream.replay.inputs import FileSource, Item, TopicSource, record_item, saved_ranges
from stream.replay.ranges import parse_offsets, parse_time, resolve
from stream.settings import Settings
from stream.wire import codec

SETTINGS = Settings(topic_prefix="t.")
NOW = 1_767_225_600.0
SEND = {
    "schema": "send.v1",
    "event_id": "s1",
    "account_id": "acme",
    "campaign_id": "k",
    "contact_id": "ct",
    "creative_id": "c1",
    "time": NOW,
}


def event(kind: str = "send", n: int = 1, **fields: Any) -> dict[str, Any]:
    doc = {**SEND, "schema": f"{kind}.v1", "event_id": f"{kind}-{n}", **fields}
    if kind == "conversion":
        doc.setdefault("revenue", 12.5)
    if kind != "send":
        del doc["campaign_id"]
    return doc


def write_lines(path: Path, lines: list[Any], *, gzipped: bool = False) -> Path:
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


async def items_of(source: Any, start: dict[str, int] | None = None) -> list[Item]:
    return [item async for item in source.items(start or {})]


LINES = [
    event("send", 1),
    "",
    "{broken",
    "[1, 2]",
    json.dumps({**SEND, "schema": "selection_request.v1"}),
    event("click", 1, time="soon"),
    event("conversion", 1),
]


@pytest.mark.parametrize("gzipped", [False, True])
async def test_a_file_gives_numbered_items_with_bounded_reasons(
    tmp_path: Path, gzipped: bool
) -> None:
    path = write_lines(tmp_path / "events.jsonl", LINES, gzipped=gzipped)
    items = await items_of(FileSource(path, SETTINGS, NOW))
    assert [(i.where, i.line.reason) for i in items] == [
        ("line 1", None),
        ("line 3", "malformed_json"),
        ("line 4", "not_an_object"),
        ("line 5", "schema_mismatch"),
        ("line 6", "wrong_type"),
        ("line 7", None),
    ]
    sent, converted = items[0].line, items[-1].line
    assert (sent.topic, sent.key, sent.event.kind) == ("t.sends", b"acme", "send")  # type: ignore[union-attr]
    assert (converted.topic, json.loads(converted.value)["revenue"]) == ("t.conversions", 12.5)
    assert items[1].raw == b"{broken"


async def test_a_file_is_read_on_from_a_position(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", LINES)
    items = await items_of(FileSource(path, SETTINGS, NOW), {"line": 5})
    assert [i.position for i in items] == [5, 6, 7]


def test_a_file_identity_changes_with_its_content(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "events.jsonl", LINES)
    before = FileSource(path, SETTINGS, NOW).identity()
    write_lines(path, [event("send", 2), *LINES[1:]])
    after = FileSource(path, SETTINGS, NOW).identity()
    assert before["file"] == after["file"] and before != after


def record(value: bytes | None, partition: int = 2, offset: int = 17) -> ConsumerRecord[Any, Any]:
    size = 0 if value is None else len(value)
    return ConsumerRecord("src", partition, offset, 0, 0, b"acme", value, None, 4, size, ())


def letter(original: bytes, topic: str = "t.sends", *, keep: int = 524_288) -> bytes:
    return codec.dead_letter(
        original, b"acme", "unknown_creative", "x", topic, 1, 40, NOW, max_original_bytes=keep
    )


def test_a_topic_record_is_an_event_or_says_why_not() -> None:
    ok = record_item(record(json.dumps(event("click", 3)).encode()), SETTINGS, codec.LIMITS, NOW)
    assert (ok.where, ok.line.topic, ok.exempt, ok.ignored) == (
        "partition 2 offset 17",
        "t.clicks",
        None,
        False,
    )
    tombstone = record_item(record(None), SETTINGS, codec.LIMITS, NOW)
    assert tombstone.line.reason == "malformed_json" and tombstone.part == "p2"


def test_a_dead_letter_replays_its_original_and_exempts_its_position() -> None:
    original = json.dumps(event("send", 9)).encode()
    item = record_item(record(letter(original)), SETTINGS, codec.LIMITS, NOW)
    assert item.exempt == "t.sends:1:40" and item.raw == original
    assert (item.line.topic, item.line.value, item.line.reason) == ("t.sends", original, None)

    request = record_item(
        record(letter(b"{}", "t.selection-requests")), SETTINGS, codec.LIMITS, NOW
    )
    assert request.ignored and request.line.event is None and request.line.error is None

    cut = record_item(record(letter(original, keep=10)), SETTINGS, codec.LIMITS, NOW)
    assert cut.line.reason == "oversized" and "cut to 10 B" in (cut.line.error or "")

    broken = record_item(record(b'{"schema": "dead_letter.v1"}'), SETTINGS, codec.LIMITS, NOW)
    assert broken.line.reason == "missing_field"


def test_offsets_parse_for_every_partition_or_some() -> None:
    assert parse_offsets("100") == {None: 100}
    assert parse_offsets("0:100, 3:250") == {0: 100, 3: 250}
    assert parse_offsets("5,1:7") == {None: 5, 1: 7}
    for bad in ("", "a", "1:", "-1", "1:-3", "x:4"):
        with pytest.raises(ValueError, match=r"expected N or|>= 0"):
            parse_offsets(bad)


def test_times_are_iso_and_utc_unless_zoned() -> None:
    assert parse_time("2026-01-01") == NOW
    assert parse_time("2026-01-01T00:00:00Z") == NOW
    assert parse_time("2026-01-01T01:00:00+01:00") == NOW
    with pytest.raises(ValueError, match="expected an ISO time"):
        parse_time("yesterday")


def test_ranges_are_clamped_half_open_and_default_to_what_is_held() -> None:
    bounds = {0: (10, 50), 1: (0, 30), 2: (5, 5)}
    assert resolve(bounds) == {0: (10, 50), 1: (0, 30), 2: (5, 5)}
    assert resolve(bounds, {None: 20}, {1: 25}) == {0: (20, 50), 1: (20, 25), 2: (5, 5)}
    assert resolve(bounds, {0: 0, 1: 40}, {None: 100}) == {0: (10, 50), 1: (30, 30), 2: (5, 5)}
    assert resolve(bounds, {0: 30}, {0: 20}) == {0: (20, 20), 1: (0, 30), 2: (5, 5)}
    with pytest.raises(ValueError, match="no partition 7"):
        resolve(bounds, {7: 1})


def test_the_index_finds_an_account_s_event_ids_and_exempts_a_named_position() -> None:
    builder = IndexBuilder(["t.sends", "t.clicks", "t.conversions"])
    builder.add(0, 1, 40, json.dumps(event("send", 1)).encode())
    builder.add(1, 3, 7, json.dumps(event("click", 1)).encode())
    builder.add(1, 3, 8, b"{not json")
    builder.add(1, 3, 9, b'{"event_id": 5, "account_id": "acme"}')
    index = builder.build()
    assert len(index) == 2
    assert index.seen("acme", "send", "send-1") and index.seen("acme", "click", "click-1")
    assert not index.seen("acme", "send", "send-2") and not index.seen("other", "send", "send-1")
    assert not index.seen("acme", "send", "send-1", exempt="t.sends:1:40")  # the letter's original
    assert index.seen("acme", "send", "send-1", exempt="t.sends:1:41")
    assert index.seen("acme", "send", "send-1", exempt="elsewhere:1:40")

    index.add("acme", "send", "send-2")
    assert index.seen("acme", "send", "send-2") and len(index) == 3


def test_the_index_keys_by_kind_as_the_stats_do() -> None:
    """A click and a conversion may carry a send's event_id: each is its own event."""
    builder = IndexBuilder(["t.sends", "t.clicks", "t.conversions"])
    builder.add(0, 0, 1, json.dumps({**event("send", 1), "event_id": "shared"}).encode())
    index = builder.build()
    assert index.seen("acme", "send", "shared")
    assert not index.seen("acme", "click", "shared")
    assert not index.seen("acme", "conversion", "shared")
    index.add("acme", "click", "shared")
    assert index.seen("acme", "click", "shared") and not index.seen("acme", "conversion", "shared")
    with pytest.raises(ValueError, match="one kind per topic"):
        IndexBuilder(["t.sends"], ["send", "click"])


def test_an_id_present_twice_is_skipped_even_from_its_dead_letter() -> None:
    h = event_hash("acme", "send", "e")
    index = SeenIndex(["t.sends"], [h, 1, h, 2**64 - 1], [5, 6, 9, 7])
    assert index.seen("acme", "send", "e", exempt="t.sends:0:5")  # also at offset 9
    assert not SeenIndex(["t.sends"], [], []).seen("acme", "send", "e")


def test_a_rerun_of_the_same_selection_gets_the_ranges_resolved_then() -> None:
    selection = {"start_offset": "18", "end_offset": None, "since": None, "until": None}
    source = TopicSource(SETTINGS, "archive", {0: (18, 20), 1: (18, 21)}, NOW, selection)
    identity = json.loads(json.dumps(source.identity()))  # as a checkpoint stores it
    assert saved_ranges(identity, "archive", selection) == {0: (18, 20), 1: (18, 21)}
    assert saved_ranges(identity, "archive", {**selection, "start_offset": "19"}) is None
    assert saved_ranges(identity, "other", selection) is None
