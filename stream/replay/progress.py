"""How far a replay got: the acknowledged prefix of its input, the checkpoint file that
records it, the tally of outcomes, and the rejects file.

Items are settled in input order. A published item settles when the broker has
acknowledged it (acks from every in-sync replica); skipped, rejected and ignored items
settle at once, but only after every item before them. The checkpoint holds, per source
part, the next position after the settled prefix, the tally of that prefix, and the size
of the rejects file at that point; it is written to a temporary file, synced and renamed
over the old one, so a reader sees the old or the new checkpoint, never half of one. A
resumed run reads on from those positions, truncates the rejects file to that size and
continues the tally, so what it reports is the whole replay, each item counted once.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

Outcome = Literal["published", "present", "rejected", "ignored"]
OUTCOMES: tuple[Outcome, ...] = ("published", "present", "rejected", "ignored")
VERSION = 1


def tally_key(outcome: Outcome, detail: str) -> str:
    """`published:send`, `present:click`, `rejected:wrong_type`, `ignored:dead_letter`."""
    return f"{outcome}:{detail}"


def by_outcome(tally: Mapping[str, int], outcome: Outcome) -> dict[str, int]:
    """Counts of one outcome by kind or reason."""
    prefix = f"{outcome}:"
    return {k[len(prefix) :]: v for k, v in sorted(tally.items()) if k.startswith(prefix)}


def outcome_totals(tally: Mapping[str, int]) -> dict[str, int]:
    """Counts per outcome, over kinds and reasons."""
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for key, count in tally.items():
        totals[key.partition(":")[0]] += count
    return totals


@dataclass(frozen=True, slots=True)
class Checkpoint:
    source: dict[str, Any]
    target: dict[str, Any]
    positions: dict[str, int] = field(default_factory=dict)
    tally: dict[str, int] = field(default_factory=dict)
    rejects_bytes: int = 0
    done: bool = False

    def mismatch(self, source: Mapping[str, Any], target: Mapping[str, Any]) -> str | None:
        """Why this checkpoint cannot be resumed with `source` into `target`, if so."""
        if dict(source) != self.source:
            return f"it is for another input ({self.source})"
        if dict(target) != self.target:
            return f"it is for another target ({self.target})"
        return None


def load(path: Path) -> Checkpoint | None:
    """The checkpoint at `path`, None if there is none; ValueError if unreadable."""
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a replay checkpoint ({exc})") from None
    if not isinstance(doc, dict) or doc.pop("version", None) != VERSION:
        raise ValueError(f"{path}: not a version {VERSION} replay checkpoint")
    try:
        return Checkpoint(**doc)
    except TypeError as exc:
        raise ValueError(f"{path}: not a replay checkpoint ({exc})") from None


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically: temporary file, fsync, rename, fsync of the directory."""
    data = orjson.dumps({"version": VERSION, **asdict(checkpoint)}, option=orjson.OPT_INDENT_2)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Checkpointer:
    """Saves the checkpoint at most every `every` seconds, and whenever asked to."""

    def __init__(
        self,
        path: Path | None,
        base: Checkpoint,
        *,
        every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.base, self.every, self._clock = path, base, every, clock
        self._last = clock()
        self.saves = 0

    def due(self) -> bool:
        return self._clock() - self._last >= self.every

    def save(
        self, positions: Mapping[str, int], tally: Counter[str], rejects: int, done: bool = False
    ) -> None:
        self._last = self._clock()
        if self.path is None:
            return
        state = Checkpoint(
            self.base.source, self.base.target, dict(positions), dict(tally), rejects, done
        )
        save(self.path, state)
        self.saves += 1


@dataclass(slots=True)
class _Entry:
    part: str
    after: int  # the position to read next once this item is settled
    key: str
    delivery: asyncio.Future[Any] | None
    payload: Any


class AckTracker:
    """Items in input order, each settled by its delivery (or at once without one)."""

    def __init__(self, positions: Mapping[str, int]) -> None:
        self.positions = dict(positions)
        self._queue: deque[_Entry] = deque()
        self.in_flight = 0
        self.failed: BaseException | None = None  # the first delivery that failed

    def add(
        self,
        part: str,
        position: int,
        key: str,
        delivery: asyncio.Future[Any] | None = None,
        payload: Any = None,
    ) -> None:
        self._queue.append(_Entry(part, position + 1, key, delivery, payload))
        self.in_flight += delivery is not None

    def settle(self) -> list[tuple[str, Any]]:
        """(tally key, payload) of the items newly settled, in order. Settling stops at a
        failed delivery, which is kept in `failed`: nothing after it counts as done."""
        settled = []
        while self._queue and self.failed is None:
            entry = self._queue[0]
            if entry.delivery is not None:
                if not entry.delivery.done():
                    break
                if entry.delivery.cancelled():
                    self.failed = asyncio.CancelledError("delivery cancelled")
                    break
                if entry.delivery.exception() is not None:
                    self.failed = entry.delivery.exception()
                    break
                self.in_flight -= 1
            self._queue.popleft()
            self.positions[entry.part] = entry.after
            settled.append((entry.key, entry.payload))
        return settled

    async def wait_oldest(self, timeout: float | None = None) -> None:
        """Until the oldest unsettled delivery completes (or `timeout` passes)."""
        oldest = next((e.delivery for e in self._queue if e.delivery is not None), None)
        if oldest is not None:
            await asyncio.wait([oldest], timeout=timeout)

    async def wait_all(self, timeout: float | None) -> None:
        pending = [e.delivery for e in self._queue if e.delivery is not None]
        if pending:
            await asyncio.wait(pending, timeout=timeout)


class RejectsFile:
    """One JSON line per rejected input: where, reason, detail and the input itself, so
    nothing rejected vanishes and a fixed copy can be replayed. Opened lazily."""

    def __init__(self, path: Path, keep_bytes: int = 0) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        if path.exists():
            with path.open("r+b") as file:
                file.truncate(keep_bytes)
        self.size = keep_bytes

    def write(self, where: str, reason: str, detail: str, raw: bytes) -> None:
        if self._file is None:
            self._file = self.path.open("ab")
        record = {"where": where, "reason": reason, "detail": detail}
        record["input"] = raw.decode("utf-8", "backslashreplace")
        data = orjson.dumps(record) + b"\n"
        self._file.write(data)
        self.size += len(data)

    def sync(self) -> int:
        """Flush to disk; the size to record in a checkpoint."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
        return self.size

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
