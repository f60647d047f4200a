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
reason there, never raised.

Send-time answers (`send-time-responses`), when the range holds any, are read first,
from `ANSWER_LEAD` before `since` (an answer comes before its send) to `until` (plus
`lateness`); then the responses and sends, then the clicks and conversions, all shown to
the same tap (`stream.report.sendtime.SendTimeTap`), which keeps the sends and clicks
that join the answers and adds a send-time section per account. Without answers
everything is read in one pass. The catalog (its latest version of
`stream.job.cut.read_catalog_history`) gives each account's per-click payouts (creatives
of `cto` offers), each campaign's `automated_percent` and the goal; the counterfactual
reads each parameter snapshot against the version in force at its time.

The models topic (`stream.report.models`) is read whole, before the rest: every version
of the accounts' contextual models on it, with its record time, becomes the accounts'
model-metrics sections (`selector.live_models`), the versions the reported `model`
decisions named marked as in range; what does not decode is counted by reason.
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
from selector.live_models import ModelLog
from selector.live_ope import Goal, OpeOptions
from selector.live_report import LiveReport, ReportOptions, build_live_report
from selector.sendtime.settings import MAX_WINDOW
from stream.adapters.kafka_reader import Range, open_consumer, read_ranges
from stream.handlers.catalog import AccountCatalog
from stream.job.cut import read_catalog_history
from stream.replay.ranges import topic_ranges
from stream.report.models import model_ranges, read_models
from stream.report.raw import ColumnFeed
from stream.report.sendtime import KIND as ANSWERS
from stream.report.sendtime import SendTimeTap
from stream.report.snapshots import account_snapshots, read_snapshots
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import open_events, open_responses
from stream.wire.messages import TOPICS

__all__ = [
    "ANSWER_LEAD",
    "LATENESS",
    "ReadRequest",
    "accounts_option",
    "catalog_options",
    "read_answers",
    "read_into",
    "read_plan",
    "records_in",
    "report_topics",
    "stop_time",
]
LATENESS = 3600.0  # records published up to an hour after the moment they describe
ANSWER_LEAD = MAX_WINDOW  # a send-time answer precedes its send by at most its window
Ranges = dict[tuple[str, int], Range]
Plan = dict[Kind, Ranges]
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


def answer_plan(settings: Settings, request: ReadRequest) -> Ranges:
    """The offset range of each partition of the send-time answers' topic to read (none
    when the topic does not exist)."""
    topic = settings.topic(TOPICS[ANSWERS])
    since = None if request.since is None else request.since - ANSWER_LEAD
    until = None if request.until is None else request.until + request.lateness
    try:
        found = asyncio.run(topic_ranges(settings, topic, since=since, until=until))
    except ValueError:  # no such topic: no send-time answers
        return {}
    return {(topic, p): r for p, r in found.items()}


def records_in(plan: Plan, *more: Ranges) -> int:
    ranges = [*plan.values(), *more]
    return sum(stop - start for per_topic in ranges for start, stop in per_topic.values())


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
    settings: Settings,
    plan: Plan,
    accumulator: JoinAccumulator,
    progress: Progress,
    tap: SendTimeTap | None = None,
) -> None:
    """Every planned record into `accumulator`, one fetched run at a time; with a `tap`
    holding answers, the responses and sends first, then the outcomes, each also shown
    to the tap."""
    kinds = {topic: kind for kind, ranges in plan.items() for topic, _ in ranges}
    limits = codec.Limits(settings.max_message_bytes)
    active = tap if tap else None
    feed = ColumnFeed(accumulator, limits, None if active is None else active.add_columns)

    def on_run(topic: str, _partition: int, run: list[Any]) -> None:
        kind = kinds[topic]
        singles: list[Any] = []
        for m in run:
            value = m.value()
            if type(value) is bytes and _BATCH_MARK in value:
                # a batch envelope: opened by the codec, after what came before it
                feed.add_kind(kind, singles)
                feed.close()
                singles = []
                messages = opened(kind, value, limits)
                if active is not None:
                    active.add_messages(kind, messages)
                accumulator.add_raw(((kind, v) for v in messages), _decoded)
            else:
                singles.append(value)
        feed.add_kind(kind, singles)

    stages: list[frozenset[Kind]] = [frozenset(KINDS)]
    if active is not None:
        stages = [frozenset({"selection_response", "send"}), _OUTCOMES]
    consumer = open_consumer(settings, f"{settings.app_id}-report")
    try:
        for stage in stages:
            ranges = {tp: r for kind in stage for tp, r in plan.get(kind, {}).items()}
            read_ranges(consumer, ranges, on_run, progress)
            feed.close()
    finally:
        consumer.close()


def read_answers(settings: Settings, ranges: Ranges, tap: SendTimeTap, progress: Progress) -> None:
    """The send-time answers in `ranges` into `tap`."""

    def on_run(_topic: str, _partition: int, run: list[Any]) -> None:
        tap.add_answers(m.value() for m in run)

    consumer = open_consumer(settings, f"{settings.app_id}-report")
    try:
        read_ranges(consumer, ranges, on_run, progress)
    finally:
        consumer.close()


_BATCH_MARK = b'_batch.v1"'  # in the schema name of every batch envelope


def opened(kind: str, raw: bytes | None, limits: codec.Limits) -> list[Any]:
    """A record's messages, decoded: one, or each of a batch envelope's."""
    if kind == "selection_response":
        responses = open_responses(raw)
        return [responses] if isinstance(responses, codec.Rejected) else responses
    events = open_events(kind, raw, limits=limits)
    return [events] if isinstance(events, codec.Rejected) else [i.value for i in events.items]


def _decoded(_kind: str, value: Any) -> Any:
    return value


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
    """Read the catalog's versions, the parameter snapshots (the counterfactual target,
    `stream.report.snapshots`, each against the catalog of its time), the send-time
    answers, the models topic and the planned ranges, join, and build the report
    (off-policy bootstrap draws from `seed`) with its send-time and model sections."""
    history = read_catalog_history(settings, time.time() if now is None else now)
    catalogs = {account: versions[-1][1] for account, versions in history.items()}
    options, ope = catalog_options(catalogs, request)
    snapshots = read_snapshots(settings, request.accounts)
    rng = np.random.default_rng([seed, 1])
    timed = account_snapshots(catalogs, snapshots, rng, history)
    ope = replace(ope, timed=timed)
    plan, answers = read_plan(settings, request), answer_plan(settings, request)
    accumulator = JoinAccumulator(request.accounts)
    limits = codec.Limits(settings.max_message_bytes)
    tap = SendTimeTap(request.accounts, request.since, request.until, limits)
    models, model_log = model_ranges(settings), ModelLog(request.accounts)
    with _bar(records_in(plan, answers, models), progress) as bar:
        read_models(settings, models, model_log, bar.update)
        read_answers(settings, answers, tap, bar.update)
        read_into(settings, plan, accumulator, bar.update, tap)
    joined = accumulator.finish(request.since, request.until, request.window)
    report = build_live_report(joined, options, rng=np.random.default_rng(seed), ope=ope)
    return model_log.apply(tap.apply(report, catalogs))


def accounts_option(values: Iterable[str] | None) -> frozenset[str] | None:
    """`--account A --account B,C` as a set (None: every account)."""
    names = {v.strip() for value in values or () for v in value.split(",") if v.strip()}
    return frozenset(names) or None
