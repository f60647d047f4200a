"""The daily job, `thompson_stats_job` (`creative-select stats-job`): recompute every
account's stats from the event topics, compare them with the streamed state at an exact
cut, publish the differences as corrections that the stats agent applies, then publish
the parameter snapshot. Events keep flowing meanwhile.

1. The cut (`stream.job.cut.take_cut`): every account's latest streamed value, once every
   correction published before is in it. Its applied offsets say, per account, which
   events the value folds.
2. The recomputation (`stream.job.readers`): the same decoding, catalog check and
   `event_id` dedup as the stats agent, over each account's events up to its cut.
3. The comparison (`selector.reconcile`): per account and creative, counts and the Beta
   means of CTR and CVR; a correction per account whose counts differ.
4. Corrections to `stats-corrections` (not with `report_only`), then, once the worker
   has applied them, the parameter snapshot (`stream.job.snapshot`).
5. The contacts' send-time slot counts in Redis, recounted from the sends and clicks
   topics and corrected where they drifted (`stream.job.sendtime_recount`); then each
   account's send-time prior fitted to the recounted counts and published to the
   send-time priors topic, which the workers follow (`stream.job.sendtime_priors`).

Accounts whose stats have no catalog are left alone (counted as skipped): without a
catalog every event would be invalid, and a catalog that failed to load must not erase
an account's history.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from selector import BetaPrior, ConfigError, settings_from_dict
from selector.ingest import Ledger
from selector.reconcile import CreativeDrift, DriftSummary, correction, creative_drift, summarize
from selector.stats import AccountStats
from stream.adapters.kafka_reader import Range, open_consumer, watermarks
from stream.handlers.catalog import AccountCatalog
from stream.job import cut as job_io
from stream.job import sendtime_priors
from stream.job import snapshot as params_snapshot
from stream.job.readers import Folded, Task, recompute
from stream.job.recompute import Scope
from stream.job.sendtime_recount import SlotReconciliation
from stream.job.sendtime_recount import reconcile as reconcile_slots
from stream.settings import Settings
from stream.wire import codec
from stream.wire.corrections import to_message
from stream.wire.messages import TOPICS, encode

EVENT_KINDS = {"send": TOPICS["send"], "click": TOPICS["click"], "conversion": TOPICS["conversion"]}
TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Options:
    report_only: bool = False  # compare and report; publish nothing
    snapshot: bool = True  # publish the parameter snapshot after the corrections
    send_times: bool = True  # reconcile the contacts' send-time slot counts too
    processes: int = 2
    timeout: float = 120.0  # for the worker to apply corrections
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True, slots=True)
class Outcome:
    run_id: str
    summary: DriftSummary
    drifts: Mapping[str, tuple[CreativeDrift, ...]]  # accounts with drift only
    records: Counter[tuple[str, str]]  # (kind, outcome) of every record read
    corrections: int  # published
    skipped_accounts: int  # streamed stats without a catalog
    snapshots: int  # accounts in the published snapshot
    read_seconds: float
    seconds: float
    send_times: SlotReconciliation | None = None  # None: not run (no Redis, or not asked)
    priors: int = 0  # send-time priors published

    @property
    def records_read(self) -> int:
        return sum(self.records.values())


def scope_of(
    cut: Mapping[str, Ledger], catalogs: Mapping[str, AccountCatalog]
) -> tuple[Scope, int]:
    """The recomputation's scope, and how many accounts it leaves out for lack of a catalog."""
    accounts = [a for a in cut if a in catalogs]
    creatives = {a: catalogs[a].creative_ids for a in accounts}
    return (
        Scope(
            {a: dict(cut[a].applied) for a in accounts},
            creatives,
            {a: cut[a].stats.half_life_seconds for a in accounts},
        ),
        len(cut) - len(accounts),
    )


def event_ranges(settings: Settings, scope: Scope) -> dict[TP, Range]:
    """[start, stop) of every event topic-partition; fails when retention has deleted
    events the cut covers (a recomputation without them would undercount)."""
    tps = [(settings.topic(t), p) for t in EVENT_KINDS.values() for p in range(settings.partitions)]
    consumer = open_consumer(settings)
    try:
        marks = watermarks(consumer, tps)
    finally:
        consumer.close()
    ranges = {}
    for (topic, p), (low, high) in marks.items():
        stop = min(scope.stop_offset(topic, p), high)
        if low > 0 and stop > 0:
            raise job_io.JobError(
                f"{topic}:{p} starts at offset {low}: retention deleted events the streamed "
                "stats include, so a recomputation would undercount. Keep the event topics "
                "(retention.ms=-1) or run with --report-only to inspect."
            )
        ranges[topic, p] = (low, stop)
    return ranges


def prior_of(catalog: AccountCatalog) -> BetaPrior:
    if catalog.account is not None:
        return catalog.account.settings.prior
    try:
        return settings_from_dict(dict(catalog.settings)).prior
    except ConfigError:
        return BetaPrior()


def compare(
    cut: Mapping[str, Ledger],
    folded: Folded,
    catalogs: Mapping[str, AccountCatalog],
    scope: Scope,
) -> tuple[dict[str, tuple[CreativeDrift, ...]], dict[str, AccountStats]]:
    """Drift per account (accounts with drift only) and the correction of each."""
    drifts, deltas = {}, {}
    for account in sorted(scope.cut):
        streamed = cut[account].stats
        tally = folded.tallies.get(account)
        recomputed = (
            tally.stats() if tally else AccountStats(half_life_seconds=streamed.half_life_seconds)
        )
        found = creative_drift(streamed, recomputed, prior_of(catalogs[account]))
        delta = correction(streamed, recomputed)
        if found and delta is not None:
            drifts[account], deltas[account] = found, delta
    return drifts, deltas


def run(
    settings: Settings,
    options: Options,
    progress: Callable[[int, int], None] = lambda done, total: None,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """One run; `progress(records_read, records_total)` while reading."""
    started = time.monotonic()
    cut = job_io.take_cut(settings, options.timeout)
    catalogs = job_io.read_catalog(settings, clock())
    scope, skipped = scope_of(cut, catalogs)
    read_started = time.monotonic()
    folded = recompute_scope(settings, scope, options.processes, progress, clock())
    read_seconds = time.monotonic() - read_started
    drifts, deltas = compare(cut, folded, catalogs, scope)
    published = snapshots = 0
    if not options.report_only:
        now = clock()
        bodies = [
            (a.encode(), encode(to_message(a, delta, options.run_id, now)))
            for a, delta in deltas.items()
        ]
        published = job_io.publish(settings, job_io.corrections_topic(settings), bodies)
        if options.snapshot:
            snapshots = publish_snapshot(settings, options.timeout, clock, catalogs)
    send_times, priors = reconcile_send_times(settings, options, catalogs, clock)
    return Outcome(
        options.run_id,
        summarize(len(scope.cut), drifts.values()),
        drifts,
        folded.outcomes,
        published,
        skipped,
        snapshots,
        read_seconds,
        time.monotonic() - started,
        send_times,
        priors,
    )


def reconcile_send_times(
    settings: Settings,
    options: Options,
    catalogs: Mapping[str, AccountCatalog],
    clock: Callable[[], float],
) -> tuple[SlotReconciliation | None, int]:
    """The slot reconciliation (unless not asked or without Redis), then, unless
    `report_only`, every account's prior fitted to the recounted counts and published;
    returns the reconciliation and the priors published."""
    if not options.send_times or settings.cooldown_store == "memory":
        return None, 0
    seq = run_seq(clock)
    found = reconcile_slots(settings, catalogs, correct=not options.report_only, run_seq=seq)
    if options.report_only:
        return found, 0
    return found, sendtime_priors.publish(
        settings, sendtime_priors.fitted_priors(found, clock(), seq)
    )


def run_seq(clock: Callable[[], float]) -> int:
    """This run's position among runs (milliseconds): its slot corrections apply once."""
    return int(clock() * 1000)


def recompute_scope(
    settings: Settings,
    scope: Scope,
    processes: int,
    progress: Callable[[int, int], None],
    now: float,
) -> Folded:
    """Every account's stats recomputed from the event topics up to its cut."""
    ranges = event_ranges(settings, scope)
    total, done = sum(stop - start for start, stop in ranges.values()), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    limits = codec.Limits(
        settings.max_message_bytes,
        max_revenue=settings.max_revenue,
        max_future_seconds=settings.max_future_seconds,
    )
    kinds = {settings.topic(t): k for k, t in EVENT_KINDS.items()}
    return recompute(Task(settings, scope, ranges, kinds, limits, now), processes, step)


def publish_snapshot(
    settings: Settings,
    timeout: float,
    clock: Callable[[], float] = time.time,
    catalogs: Mapping[str, AccountCatalog] | None = None,
) -> int:
    """Publish every account's parameters from the streamed stats, once the worker has
    applied every correction; returns the number of accounts."""
    stats = job_io.take_cut(settings, timeout)
    if catalogs is None:
        catalogs = job_io.read_catalog(settings, clock())
    snapshots = params_snapshot.build(stats, catalogs, clock())
    params_snapshot.publish(settings, snapshots)
    return len(snapshots.messages)
