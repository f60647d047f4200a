"""What the selection agent has answered in one request partition: the value of the
`partition-to-answers` table (`stream.handlers.once` says how it is used).

`through` is the highest request offset of the partition answered so far; `first` the
lowest offset of the last batch, whose responses (`answers`, as published) are kept
until the next batch replaces them, so a request of that batch delivered again gets the
very answer it already got.

The encoding is binary and versioned: a version byte, `first` and `through` (signed
64-bit), the number of answers, then per answer its topic, key and value, each
length-prefixed.

>>> from stream.wire.envelope import Outgoing
>>> value = Answered(10, 12, (Outgoing("responses", b"acme", b"{}"),))
>>> loads(dumps(value)) == value
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stream.wire.envelope import Outgoing

VERSION = 1
_HEAD = struct.Struct(">BqqI")
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Answered:
    first: int
    through: int
    answers: tuple[Outgoing, ...] = ()

    def holds(self, offset: int) -> bool:
        """Whether the request at `offset` is one whose answer is kept here."""
        return self.first <= offset <= self.through


def dumps(value: Answered) -> bytes:
    parts = [_HEAD.pack(VERSION, value.first, value.through, len(value.answers))]
    for answer in value.answers:
        for field in (answer.topic.encode(), answer.key, answer.value):
            parts.append(_LENGTH.pack(len(field)))
            parts.append(field)
    return b"".join(parts)


def loads(raw: bytes) -> Answered:
    """The value `dumps` wrote; ValueError for anything else."""
    try:
        version, first, through, count = _HEAD.unpack_from(raw, 0)
        if version != VERSION:
            raise ValueError(f"unknown answered-record version {version}")
        at = _HEAD.size
        answers = []
        for _ in range(count):
            fields = []
            for _ in range(3):
                (length,) = _LENGTH.unpack_from(raw, at)
                at += _LENGTH.size
                if at + length > len(raw):
                    raise ValueError("truncated answered record")
                fields.append(raw[at : at + length])
                at += length
            answers.append(Outgoing(fields[0].decode(), fields[1], fields[2]))
    except struct.error as exc:
        raise ValueError(f"unreadable answered record: {exc}") from None
    if at != len(raw):
        raise ValueError("trailing bytes in answered record")
    return Answered(first, through, tuple(answers))
