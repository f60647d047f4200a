import asyncio

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
    # nothing committed yet: the partition is read from its start
    assert continuity.check(messages("sends", 1, 40)) == [Jump("sends", 1, 0, 40)]


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


def test_an_assignment_resumes_from_the_record_not_the_commit() -> None:
    seen: list[tuple[str, int, bool]] = []
    continuity = Continuity(lambda t, p: 50, on_resume=lambda t, p, j: seen.append((t, p, j)))
    continuity.check(messages("sends", 0, 50, 51))
    continuity.resume_at({("sends", 0): 40, ("sends", 1): 7})
    assert continuity.through("sends", 0) == 39  # nothing of this assignment seen yet
    # the commit (50) is ahead of the record (40): the first message is a resume jump
    assert continuity.check(messages("sends", 0, 50)) == [Jump("sends", 0, 40, 50, resume=True)]
    # the commit is behind the record: re-deliveries come first, and that is no jump
    assert continuity.check(messages("sends", 1, 5, 6, 7, 8)) == []
    assert seen == [("sends", 0, True), ("sends", 1, False)]
    assert (continuity.through("sends", 0), continuity.through("sends", 1)) == (50, 8)
    assert continuity.through("clicks", 0) is None
    # a partition without a record resumes from the committed offset
    assert continuity.check(messages("clicks", 0, 52)) == [Jump("clicks", 0, 50, 52)]


def test_a_compacted_topic_is_checked_only_at_the_resume_point() -> None:
    continuity = Continuity(lambda t, p: None, contiguous=False)
    continuity.resume_at({("offers", 0): 3})
    assert continuity.check(messages("offers", 0, 9, 12, 30)) == [
        Jump("offers", 0, 3, 9, resume=True)
    ]
    assert continuity.check(messages("offers", 0, 40)) == []
    # without a record or a commit, from the start: a compacted head is a jump to read
    assert continuity.check(messages("offers", 1, 6, 8)) == [Jump("offers", 1, 0, 6)]
    continuity.forget([("offers", 0)])
    assert continuity.through("offers", 0) is None


async def test_every_jump_is_read_at_once() -> None:
    started: list[Jump] = []
    both = asyncio.Event()

    async def fetch(jump: Jump) -> list[Incoming]:
        started.append(jump)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), timeout=5)
        return []

    jumps = [Jump("sends", 0, 1, 3), Jump("clicks", 0, 7, 9)]
    assert len(await with_missing(messages("sends", 0, 3), jumps, fetch)) == 1
    assert started == jumps


def test_a_batch_that_failed_is_expected_again_from_its_first_offset() -> None:
    continuity = Continuity(lambda t, p: 0)
    assert continuity.check(messages("sends", 0, 0, 1, 2, 3)) == []
    batch = messages("sends", 0, 4, 5) + messages("clicks", 0, 0)
    assert continuity.check(batch) == []
    continuity.rewind({("sends", 0): 4, ("clicks", 0): 0, ("conversions", 0): 9})
    # the next message after the failed batch shows the hole, read back from 4
    assert continuity.check(messages("sends", 0, 6)) == [Jump("sends", 0, 4, 6)]
    assert continuity.behind(lambda t, p: {"clicks": 1}.get(t)) == [Jump("clicks", 0, 0, 1)]
    assert continuity.through("conversions", 0) is None  # never seen: nothing to rewind
