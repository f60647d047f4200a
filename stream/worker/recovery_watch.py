"""Which changelog partitions a table recovery has stopped receiving from (the check
behind `stream.worker.agents.watch_recovery`, which says why)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def stalled(
    active: set[Any],
    offsets: Mapping[Any, int],
    highwaters: Mapping[Any, int],
    received_at: Mapping[Any, float],
    started_at: float,
    now: float,
    stall_seconds: float,
) -> dict[Any, int]:
    """The active changelog partitions with records left that received nothing for
    `stall_seconds` (since the recovery began, when none has arrived), each with the
    offset to seek to: the one after the last applied, 0 when none was.

    >>> stalled({"a", "b"}, {"a": 9, "b": -1}, {"a": 9, "b": 40}, {}, 0.0, 31.0, 30.0)
    {'b': 0}
    """
    out = {}
    for tp in active:
        have, need = offsets.get(tp, -1), highwaters.get(tp, -1)
        if need is None or need < 0 or (have is not None and have >= need):
            continue
        last = received_at.get(tp, started_at)
        if now - max(last, started_at) >= stall_seconds:
            out[tp] = 0 if have is None or have < 0 else have + 1
    return out
