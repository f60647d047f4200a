from stream.wire.envelope import Incoming
from stream.worker.delivery import Continuity, Jump, with_missing


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


async def test_missing_messages_go_right_before_the_message_after_them() -> None:
    batch = messages("sends", 0, 3, 4) + messages("clicks", 0, 9)
    jumps = [Jump("sends", 0, 1, 3), Jump("clicks", 0, 7, 9)]
    fetched = []

    async def fetch(jump: Jump) -> list[Incoming]:
        fetched.append(jump)
        return messages(jump.topic, jump.partition, *range(jump.expected, jump.got))

    repaired = await with_missing(batch, jumps, fetch)
    assert [(m.topic, m.offset) for m in repaired] == [
        ("sends", 1), ("sends", 2), ("sends", 3), ("sends", 4),
        ("clicks", 7), ("clicks", 8), ("clicks", 9),
    ]  # fmt: skip
    assert fetched == jumps
    assert Continuity(lambda t, p: {"sends": 1, "clicks": 7}[t]).check(repaired) == []
