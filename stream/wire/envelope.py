"""A consumed message with its position, and a message to publish: the plain values the
services take and return, so they can be tested without Kafka."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Incoming:
    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int

    @property
    def position(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """`group`: the position of the batch message this answers (None for a single
    message), so the answers to one batch can be published as one batch."""

    topic: str
    key: bytes
    value: bytes
    group: str | None = None
