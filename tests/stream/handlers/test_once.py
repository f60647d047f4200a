"""One answer per request: how a batch is sorted against the partition's record, and the
record kept for the next re-delivery."""

from __future__ import annotations

from stream.handlers.once import next_records, sort_out
from stream.wire.answered import Answered
from stream.wire.envelope import Incoming, Outgoing


def requests(partition: int, *offsets: int) -> list[Incoming]:
    return [Incoming(b"{}", b"acme", "requests", partition, o) for o in offsets]


def answer(key: bytes, body: bytes) -> Outgoing:
    return Outgoing("responses", key, body)


def test_without_a_record_everything_is_new_once() -> None:
    sorted_ = sort_out(requests(0, 3, 4, 3, 4, 5), lambda p: None)
    assert [m.offset for m in sorted_.fresh[0]] == [3, 4, 5]
    assert (sorted_.skipped, sorted_.repeated, sorted_.again) == (2, 0, {})


def test_the_last_batch_gets_its_answers_again_and_older_ones_are_skipped() -> None:
    record = Answered(10, 12, (answer(b"acme", b"r10"), answer(b"acme", b"r11")))
    sorted_ = sort_out(requests(0, 8, 9, 10, 11, 12, 13), {0: record}.get)
    assert [m.offset for m in sorted_.fresh[0]] == [13]
    assert (sorted_.skipped, sorted_.repeated) == (2, 3)
    assert sorted_.resend() == list(record.answers)


def test_partitions_are_sorted_apart() -> None:
    records = {0: Answered(5, 6, (answer(b"a", b"x"),)), 1: None}
    sorted_ = sort_out(requests(0, 6, 7) + requests(1, 0), records.get)
    assert {p: [m.offset for m in ms] for p, ms in sorted_.fresh.items()} == {0: [7], 1: [0]}
    assert set(sorted_.again) == {0}
    assert [m.partition for m in sorted_.requests()] == [0, 1]


def test_a_new_record_keeps_this_batchs_answers_per_partition() -> None:
    sorted_ = sort_out(requests(0, 4, 5) + requests(1, 9), lambda p: None)
    out = [answer(b"a", b"a4"), answer(b"b", b"b9"), answer(b"a", b"a5")]
    records = next_records(sorted_, out, lambda o: {b"a": 0, b"b": 1}[o.key])
    assert records == {
        0: Answered(4, 5, (out[0], out[2])),
        1: Answered(9, 9, (out[1],)),
    }


def test_answers_sent_again_stay_in_the_new_record_and_unplaced_go_everywhere() -> None:
    kept = Answered(10, 11, (answer(b"a", b"old"),))
    sorted_ = sort_out(requests(0, 11, 12) + requests(1, 3), {0: kept}.get)
    stray = answer(b"", b"unreadable request")
    records = next_records(sorted_, [answer(b"a", b"new"), stray], lambda o: 0 if o.key else None)
    assert records[0] == Answered(10, 12, (kept.answers[0], answer(b"a", b"new"), stray))
    assert records[1] == Answered(3, 3, (stray,))


def test_a_partition_with_only_repeats_keeps_its_record() -> None:
    kept = Answered(1, 2, (answer(b"a", b"x"),))
    sorted_ = sort_out(requests(0, 1, 2), {0: kept}.get)
    assert sorted_.fresh == {} and next_records(sorted_, [], lambda o: 0) == {}
