from stream.continuity import Continuity, Jump
from stream.envelope import Incoming


def messages(topic: str, partition: int, *offsets: int) -> list[Incoming]:
    return [Incoming(b"", b"a", topic, partition, o) for o in offsets]


def test_contiguous_offsets_from_the_committed_one_pass() -> None:
    continuity = Continuity(lambda topic, partition: 10)
    assert continuity.check(messages("sends", 0, 10, 11, 12)) == []
    assert continuity.check(messages("sends", 0, 13) + messages("clicks", 1, 10)) == []


def test_a_skipped_offset_is_a_jump_within_and_across_batches() -> None:
    continuity = Continuity(lambda topic, partition: 0)
    assert continuity.check(messages("sends", 0, 0, 1, 3)) == [Jump("sends", 0, 2, 3)]
    assert continuity.check(messages("sends", 0, 5)) == [Jump("sends", 0, 4, 5)]


def test_the_first_message_must_be_the_committed_offset() -> None:
    continuity = Continuity(lambda topic, partition: {0: 7, 1: None}[partition])
    assert continuity.check(messages("sends", 0, 8)) == [Jump("sends", 0, 7, 8)]
    assert continuity.check(messages("sends", 1, 40)) == []  # nothing committed yet


def test_re_reads_are_not_jumps_and_revocation_starts_over() -> None:
    committed = {("sends", 0): 5}
    continuity = Continuity(lambda topic, partition: committed[topic, partition])
    assert continuity.check(messages("sends", 0, 5, 6, 4, 5, 6, 7)) == []
    committed["sends", 0] = 20
    continuity.forget([("sends", 0)])
    assert continuity.check(messages("sends", 0, 21)) == [Jump("sends", 0, 20, 21)]
