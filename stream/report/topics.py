"""The live report from the topics: what `creative-select report` reads and how.

Which records: selection responses and sends from the first offset whose record time is
at or after `since` to the first at or after `until` (plus `lateness`, for records
published after the moment they describe); clicks and conversions from `since` to
`until` plus the attribution window (plus `lateness`), since an outcome may come days
after its send. Record times are the broker's (`offsets_for_times`, see
`stream.replay.ranges`); the report itself then keeps exactly the sends whose own
`time` is in `[since, until)`, so the offsets only bound what is read.

How: each topic-partition's range is read with the fast reader
(`stream.adapters.kafka_reader`) and its values handed, a fetched run at a time, to
`stream.report.raw.ColumnFeed`, which decodes them in batches into columns
(`stream.wire.columns`, the codec's results at a fraction of its cost) for
`selector.live_join.JoinAccumulator`; undecodable and unmatched records are counted by
reason there, never raised. The catalog
(`stream.job.cut.read_catalog`) gives each account's per-click payouts (creatives of
`cto` offers), each campaign's `automated_percent` and the goal.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from selector.live_join import ATTRIBUTION_WINDOW, KINDS, JoinAccumulator, Kind
from selector.live_ope import Goal, OpeOptions
from selector.live_report import LiveReport, ReportOptions, build_live_report
from stream.adapters.kafka_reader import Range, open_consumer, read_ranges
from stream.handlers.catalog import AccountCatalog
from stream.job.cut import read_catalog
from stream.replay.ranges import topic_ranges
from stream.report.raw import ColumnFeed
from stream.report.snapshots import account_snapshots, read_snapshots
from stream.settings import Settings
from stream.wire import codec
from stream.wire.messages import TOPICS

__all__ = [
    "LATENESS",
    "ReadRequest",
    "accounts_option",
    "catalog_options",
    "read_into",
    "read_plan",
    "records_in",
    "report_topics",
    "stop_time",
]
LATENESS = 3600.0  # records published up to an hour after the moment they describe
Plan = dict[Kind, dict[tuple[str, int], Range]]
Progress = Callable[[int], None]
_OUTCOMES: frozenset[Kind] = frozenset({"click", "conversion"})


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """What to report: `accounts` (None: all), sends in `[since, until)` (epoch seconds,
    None: unbounded), outcomes up to `window` after `until`, `lateness` of publishing."""

    accounts: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None
    window: float = ATTRIBUTION_WINDOW
    lateness: float = LATENESS


def stop_time(request: ReadRequest, kind: Kind) -> float | None:
    """The record time to read `kind` up to (None: the current end)."""
    if request.until is None:
        return None
    extra = request.window if kind in _OUTCOMES else 0.0
    return request.until + extra + request.lateness


def read_plan(settings: Settings, request: ReadRequest) -> Plan:
    """Per kind, the offset range of each topic-partition to read."""

    async def plan() -> Plan:
        out: Plan = {}
        for kind in KINDS:
            topic = settings.topic(TOPICS[kind])
            found = await topic_ranges(
                settings, topic, since=request.since, until=stop_time(request, kind)
            )
            out[kind] = {(topic, p): r for p, r in found.items()}
        return out

    return asyncio.run(plan())


def records_in(plan: Plan) -> int:
    return sum(stop - start for ranges in plan.values() for start, stop in ranges.values())


def _click_payouts(catalog: AccountCatalog) -> dict[str, float]:
    account = catalog.account
    if account is None:
        return {}
    cto = {o.offer_id: o.payout for o in account.offers if o.payout_type == "cto"}
    return {c.creative_id: cto[c.offer_id] for c in account.creatives if c.offer_id in cto}


def catalog_options(
    catalogs: Mapping[str, AccountCatalog], request: ReadRequest
) -> tuple[ReportOptions, OpeOptions]:
    """The report's options from the accounts' catalogs: per-click payouts, each
    campaign's automated percentage, each account's goal."""
    typed = {a: c.account for a, c in catalogs.items() if c.account is not None}
    payouts = {a: _click_payouts(c) for a, c in catalogs.items()}
    percent = {
        a: {c.campaign_id: c.automated_percent for c in x.campaigns} for a, x in typed.items()
    }
    goals: dict[str, Goal] = {a: x.settings.goal for a, x in typed.items()}
    options = ReportOptions(
        since=request.since,
        until=request.until,
        accounts=request.accounts,
        click_payouts={a: p for a, p in payouts.items() if p},
        automated_percent=percent,
        attribution_window=request.window,
    )
    return options, OpeOptions(goals=goals)


def read_into(
    settings: Settings, plan: Plan, accumulator: JoinAccumulator, progress: Progress
) -> None:
    """Every planned record into `accumulator`, one fetched run at a time."""
    kinds = {topic: kind for kind, ranges in plan.items() for topic, _ in ranges}
    feed = ColumnFeed(accumulator, codec.Limits(settings.max_message_bytes))

    def on_run(topic: str, _partition: int, run: list[Any]) -> None:
        feed.add_kind(kinds[topic], [m.value() for m in run])

    ranges = {tp: r for per_kind in plan.values() for tp, r in per_kind.items()}
    consumer = open_consumer(settings, f"{settings.app_id}-report")
    try:
        read_ranges(consumer, ranges, on_run, progress)
    finally:
        consumer.close()
    feed.close()


def _bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="report",
        unit="rec",
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled,
    )


def report_topics(
    settings: Settings,
    request: ReadRequest,
    *,
    seed: int = 0,
    progress: bool = True,
    now: float | None = None,
) -> LiveReport:
    """Read the catalog, the parameter snapshots (the counterfactual target,
    `stream.report.snapshots`) and the planned ranges, join, and build the report
    (off-policy bootstrap draws from `seed`)."""
    catalogs = read_catalog(settings, time.time() if now is None else now)
    options, ope = catalog_options(catalogs, request)
    snapshots = read_snapshots(settings, request.accounts)
    timed = account_snapshots(catalogs, snapshots, np.random.default_rng([seed, 1]))
    ope = replace(ope, timed=timed)
    plan = read_plan(settings, request)
    accumulator = JoinAccumulator(request.accounts)
    with _bar(records_in(plan), progress) as bar:
        read_into(settings, plan, accumulator, bar.update)
    joined = accumulator.finish(request.since, request.until, request.window)
    return build_live_report(joined, options, rng=np.random.default_rng(seed), ope=ope)


def accounts_option(values: Iterable[str] | None) -> frozenset[str] | None:
    """`--account A --account B,C` as a set (None: every account)."""
    names = {v.strip() for value in values or () for v in value.split(",") if v.strip()}
    return frozenset(names) or None
