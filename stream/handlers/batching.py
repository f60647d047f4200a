"""Selection requests that arrive in batches (`stream.wire.batches`): each item is
answered as a request of its own, and the answers to one batch message go back as one
`selection_response_batch.v1` per reply topic and per step of the answer (the answers
whose reply topic had to be checked first come in a batch of their own), so a sender
gets exactly one answer per request whichever form it sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.wire.batches import Item, response_batch
from stream.wire.envelope import Incoming, Outgoing


@dataclass(frozen=True, slots=True)
class Part:
    """An item of a batch message: read like the message it came from (`Incoming`'s
    attributes), with the item's own bytes as its value (for its dead letter)."""

    message: Incoming
    item: Item
    field: str = "requests"  # the envelope's list: requests, or events

    @property
    def value(self) -> bytes:
        return self.item.raw(self.message.value)

    @property
    def key(self) -> bytes | None:
        return self.message.key

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def partition(self) -> int:
        return self.message.partition

    @property
    def offset(self) -> int:
        return self.message.offset

    @property
    def position(self) -> str:
        return self.message.position

    @property
    def group(self) -> str:
        """Answers with the same group are published as one batch."""
        return self.message.position

    def where(self, detail: str) -> str:
        """`detail` naming the item, unless it already does."""
        prefix = f"{self.field}[{self.item.place}]"
        return detail if detail.startswith(prefix) else f"{prefix}: {detail}"


Source = Incoming | Part


def group_of(source: Source) -> str | None:
    return source.group if isinstance(source, Part) else None


def pack(out: list[Outgoing]) -> list[Outgoing]:
    """The answers of each batch message merged, per topic, into one response batch in
    the place of the first of them; answers to single messages and dead letters as they
    are, in order.

    >>> a = Outgoing("r", b"k", b'{"n":1}', "t:0:5")
    >>> b = Outgoing("dl", b"k", b"letter")
    >>> c = Outgoing("r", b"k", b'{"n":2}', "t:0:5")
    >>> [o.value for o in pack([a, b, c])]  # doctest: +NORMALIZE_WHITESPACE
    [b'{"schema":"selection_response_batch.v1","responses":[{"n":1},{"n":2}]}', b'letter']
    """
    if all(o.group is None for o in out):
        return out
    bodies: dict[tuple[str, str], list[bytes]] = {}
    order: list[Outgoing | tuple[tuple[str, str], bytes]] = []
    for o in out:
        if o.group is None:
            order.append(o)
            continue
        where = (o.group, o.topic)
        found = bodies.get(where)
        if found is None:
            bodies[where] = [o.value]
            order.append((where, o.key))
        else:
            found.append(o.value)
    packed: list[Outgoing] = []
    for x in order:
        if isinstance(x, Outgoing):
            packed.append(x)
        else:
            packed.extend(Outgoing(x[0][1], x[1], response_batch(c)) for c in chunks(bodies[x[0]]))
    return packed


MAX_PACKED_BYTES = 512 * 1024  # a response batch's bodies, well below a produce request's 1 MiB


def chunks(bodies: list[bytes], limit: int = MAX_PACKED_BYTES) -> list[list[bytes]]:
    """`bodies` in order, cut into runs of at most `limit` bytes (a longer body alone).

    >>> [len(c) for c in chunks([b"x" * 4] * 5, limit=10)]
    [2, 2, 1]
    """
    out: list[list[bytes]] = [[]]
    size = 0
    for body in bodies:
        if out[-1] and size + len(body) + 1 > limit:
            out.append([])
            size = 0
        out[-1].append(body)
        size += len(body) + 1
    return out
