"""Raw topic values into the live report's join, decoded a batch at a time into columns
(`stream.wire.columns`): what `creative-select report` does with the bytes it reads.

`ColumnFeed` keeps up to `BATCH` values per kind and hands each full batch, decoded, to
`selector.live_join.JoinAccumulator.add_columns`; `close` hands the rest; `on_columns`,
when given, sees each decoded batch too (the send-time tap, `stream.report.sendtime`).
The report is the one `selector.live_report.report_from_raw` gives with the codec's
decoder, value by value (the same records, rejections and order), at a fraction of the
cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

import numpy as np

from selector.live_join import KINDS, JoinAccumulator, Kind
from selector.live_ope import OpeOptions
from selector.live_report import LiveReport, ReportOptions, build_live_report
from stream.wire.checks import LIMITS, Limits
from stream.wire.columns import decode_columns

BATCH = 1 << 16
_KIND, _VALUE = itemgetter(0), itemgetter(1)

__all__ = ["BATCH", "ColumnFeed", "OnColumns", "report_from_bytes"]
OnColumns = Callable[[Kind, Mapping[str, Sequence[Any]], int], None]


class ColumnFeed:
    """(kind, value bytes) pairs into `accumulator`, a batch per kind at a time. Owns
    its pending values; `close` before `accumulator.finish`."""

    def __init__(
        self,
        accumulator: JoinAccumulator,
        limits: Limits = LIMITS,
        on_columns: OnColumns | None = None,
    ) -> None:
        self._accumulator = accumulator
        self._limits = limits
        self._on_columns = on_columns
        self._pending: dict[Kind, list[Any]] = {kind: [] for kind in KINDS}

    def add(self, items: Iterable[tuple[Kind, bytes | None]]) -> None:
        """(kind, value) pairs, kinds in any order; runs of one kind cost least."""
        for kind, run in groupby(items, key=_KIND):
            self.add_kind(kind, map(_VALUE, run))

    def add_kind(self, kind: Kind, raws: Iterable[bytes | None]) -> None:
        """Values all of one kind (a topic's run)."""
        if kind not in self._pending:
            self._accumulator.add_unknown(sum(1 for _ in raws))
            return
        values = iter(raws)
        while True:
            bucket = self._pending[kind]
            bucket.extend(islice(values, BATCH - len(bucket)))
            if len(bucket) < BATCH:
                return
            self._flush(kind)

    def _flush(self, kind: Kind) -> None:
        raws = self._pending[kind]
        if raws:
            self._pending[kind] = []
            c = decode_columns(kind, raws, self._limits)
            if self._on_columns is not None:
                self._on_columns(kind, c.values, c.size)
            self._accumulator.add_columns(kind, c.values, c.size, c.rejected, c.errors)

    def close(self) -> None:
        for kind in KINDS:
            self._flush(kind)


def report_from_bytes(
    items: Iterable[tuple[Kind, bytes | None]],
    options: ReportOptions | None = None,
    *,
    limits: Limits = LIMITS,
    rng: np.random.Generator | None = None,
    ope: OpeOptions | None = None,
) -> LiveReport:
    """The live report of (kind, value bytes) pairs, in any order."""
    options = options or ReportOptions()
    accumulator = JoinAccumulator(options.accounts)
    feed = ColumnFeed(accumulator, limits)
    feed.add(items)
    feed.close()
    joined = accumulator.finish(options.since, options.until, options.attribution_window)
    return build_live_report(joined, options, rng=rng, ope=ope)
