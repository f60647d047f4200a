"""Every metric the service exports, in one place, under one prefix.

Naming follows Prometheus conventions: base units, `_total` for counters, `_seconds`
for durations, explicit histogram buckets. Labels take values from bounded sets only
(methods, arms, pools, reasons, event kinds, outcomes, topics and partitions): never
contact ids, never creative ids, never account ids.

Accounts and creatives are unbounded, so what is per account (creative share, exposure
diversity, learning pools) is exported as aggregates over the accounts a worker served
in the last hour (`stream.ops.exposure` says how each is computed). Faust's own sensors
register into the same registry under `creative_selection_faust_` (`stream.worker.sensors`).
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from selector.batch import REASONS
from stream.ops.model_metrics import ModelMetrics
from stream.ops.rebalance_metrics import PREFIX as PREFIX
from stream.ops.rebalance_metrics import RebalanceMetrics
from stream.ops.sendtime_metrics import SendTimeMetrics, SlotJobMetrics

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)
AGENTS = (
    *("answer_selection_requests", "count_outcomes", "update_catalog", "dedup"),
    *("answer_send_time_requests", "learn_send_times"),
)
EVENT_KINDS = ("send", "click", "conversion")
EVENT_OUTCOMES = ("applied", "replayed", "duplicate", "rejected")
ARM_LABELS = ("automated", "control", "manual", "unattributed")
DEPENDENCIES = ("broker", "redis")
# Why a request's reply_to was refused (stream.handlers.reply_to.ReplyRefusal), and what a
# check of a reply topic found; labels never hold the topic names themselves.
REPLY_REFUSALS = ("internal_topic", "not_allowed", "missing_topic")
REPLY_CHECKS = ("found", "missing", "unconfirmed")


class Metrics(RebalanceMetrics):
    """The service's metrics, registered in their own registry (tests make their own)."""

    def _outcomes_by_arm(self, r: CollectorRegistry) -> None:
        arm_help = (
            " by the arm of the contact in the event's campaign (automated, control, manual; "
            "unattributed when the event names no campaign the catalog knows)."
        )
        self.decisions_expected_control = Counter(
            f"{PREFIX}_decisions_expected_control",
            "Sum over decisions of the campaign's configured control probability "
            "(1 - automated_percent/100): the control decisions the split should produce.",
            registry=r,
        )
        self.arm_sends = Counter(
            f"{PREFIX}_arm_sends", "Applied send events," + arm_help, ["arm"], registry=r
        )
        self.arm_clicks = Counter(
            f"{PREFIX}_arm_clicks", "Applied click events," + arm_help, ["arm"], registry=r
        )
        self.arm_conversions = Counter(
            f"{PREFIX}_arm_conversions",
            "Applied conversion events," + arm_help,
            ["arm"],
            registry=r,
        )
        self.arm_revenue = Counter(
            f"{PREFIX}_arm_revenue",
            "Revenue of applied conversion events in currency units," + arm_help,
            ["arm"],
            registry=r,
        )

    def _exposure(self, r: CollectorRegistry) -> None:
        self.top_creative_share = Gauge(
            f"{PREFIX}_top_creative_share",
            "Largest share of one account's automated decisions going to a single creative, "
            "over the accounts with enough decisions in the last hour (NaN: none).",
            registry=r,
        )
        self.exposure_entropy_ratio = Gauge(
            f"{PREFIX}_exposure_entropy_ratio",
            "Entropy of each account's creative shares divided by its maximum (1 uniform, "
            "0 one creative), decision-weighted mean over the same accounts (NaN: none).",
            registry=r,
        )
        self.exposure_accounts = Gauge(
            f"{PREFIX}_exposure_accounts",
            "Accounts in the creative-share measures, by whether one creative takes at "
            "least 95% of their automated decisions (dominated) or not (diverse).",
            ["state"],
            registry=r,
        )

    def start_series(self) -> Metrics:
        """For a worker: series of small, known label sets exist from the start at 0, so
        a rate over them is defined before the first event; unmeasured gauges are NaN,
        which no alert threshold matches (0 would)."""
        for reason in REASONS[1:]:
            self.fallbacks.labels(reason)
        for agent in AGENTS:
            self.agent_errors.labels(agent)
        for kind in EVENT_KINDS:
            for outcome in EVENT_OUTCOMES:
                self.events.labels(kind, outcome)
        for counter in (self.arm_sends, self.arm_clicks, self.arm_conversions, self.arm_revenue):
            for arm in ARM_LABELS:
                counter.labels(arm)
        for outcome in ("applied", "replayed", "rejected"):
            self.corrections.labels(outcome)
        for outcome in ("completed", "failed"):
            self.dedup_refills.labels(outcome)
        for dependency in DEPENDENCIES:
            self.dependency_up.labels(dependency).set(math.nan)
        for cause in REPLY_REFUSALS:
            self.reply_to_refused.labels(cause)
        for outcome in REPLY_CHECKS:
            self.reply_topic_checks.labels(outcome)
        self._start_rebalance_series(AGENTS[:3])
        self.top_creative_share.set(math.nan)
        self.exposure_entropy_ratio.set(math.nan)
        self.sendtime.start_series()
        return self

    def _consumer_lag(self, r: CollectorRegistry) -> None:
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag_messages",
            "Messages between the committed offset and the end of each partition this worker "
            "consumes (refreshed every few seconds; partitions it no longer holds disappear).",
            ["topic", "partition"],
            registry=r,
        )

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._outcomes_by_arm(r)
        self._exposure(r)
        self._consumer_lag(r)
        self._agents(r)
        self._events(r)
        self._replies(r)
        self._rebalances(r)
        self._outages(r)
        self.model = ModelMetrics(r)
        self.sendtime = SendTimeMetrics(r)  # send-time decisions and learning

    def _outages(self, r: CollectorRegistry) -> None:
        """What the worker does while Redis or the broker cannot be reached."""
        self._cooldown_outage(r)
        self._dedup_outage(r)
        self.dependency_up = Gauge(
            f"{PREFIX}_dependency_up",
            "1 when the background probe last reached the dependency (broker, redis).",
            ["dependency"],
            registry=r,
        )

    def _cooldown_outage(self, r: CollectorRegistry) -> None:
        self.cooldown_degraded = Gauge(
            f"{PREFIX}_cooldowns_degraded",
            "1 while the cooldown store does not answer and cooldowns come from this "
            "worker's own record of its recent decisions, else 0.",
            registry=r,
        )
        self.degraded_decisions = Counter(
            f"{PREFIX}_decisions_degraded_total",
            "Decisions made while the cooldown store did not answer (responses say "
            '"cooldowns": "degraded").',
            registry=r,
        )
        self.cooldown_store_failures = Counter(
            f"{PREFIX}_cooldown_store_failures_total",
            "Times the cooldown store failed or timed out and cooldowns became degraded.",
            registry=r,
        )
        self.cooldown_writes_pending = Gauge(
            f"{PREFIX}_cooldown_writes_pending",
            "Cooldown writes kept in memory for the store while it does not answer.",
            registry=r,
        )
        self.cooldown_writes_replayed = Counter(
            f"{PREFIX}_cooldown_writes_replayed_total",
            "Kept cooldown writes stored once the store answered again.",
            registry=r,
        )
        self.cooldown_writes_dropped = Counter(
            f"{PREFIX}_cooldown_writes_dropped_total",
            "Kept cooldown writes dropped because too many were waiting (oldest first).",
            registry=r,
        )

    def _dedup_outage(self, r: CollectorRegistry) -> None:
        self.dedup_waiting = Gauge(
            f"{PREFIX}_dedup_waiting",
            "1 while the dedup store does not answer and event ingestion waits, else 0.",
            registry=r,
        )
        self.dedup_retries = Counter(
            f"{PREFIX}_dedup_retries_total",
            "Dedup round trips that failed or timed out; the batch is asked again.",
            registry=r,
        )
        self.dedup_refilling = Gauge(
            f"{PREFIX}_dedup_refilling",
            "1 while dedup records lost by the store are refilled from the event topics.",
            registry=r,
        )
        self.dedup_refills = Counter(
            f"{PREFIX}_dedup_refills_total",
            "Refills of a source partition's dedup records, by outcome (completed, failed).",
            ["outcome"],
            registry=r,
        )
        self.dedup_refill_records = Counter(
            f"{PREFIX}_dedup_refill_records_total",
            "Dedup records written back by refills.",
            registry=r,
        )

    def _replies(self, r: CollectorRegistry) -> None:
        self.reply_to_refused = Counter(
            f"{PREFIX}_reply_to_refused",
            "Selection requests whose reply_to was refused and answered with an error on the "
            "default responses topic, by cause (internal_topic, not_allowed, missing_topic).",
            ["cause"],
            registry=r,
        )
        self.reply_topic_checks = Counter(
            f"{PREFIX}_reply_topic_checks",
            "Reply topics looked up in the cluster's metadata (answers are cached), by what "
            "the check found (found, missing, unconfirmed: it failed or timed out).",
            ["outcome"],
            registry=r,
        )

    def _agents(self, r: CollectorRegistry) -> None:
        self.decisions = Counter(
            f"{PREFIX}_decisions_total",
            "Selection decisions, by method, arm and pool.",
            ["method", "arm", "pool"],
            registry=r,
        )
        self.fallbacks = Counter(
            f"{PREFIX}_fallbacks_total",
            "Decisions that fell back to the campaign's default creative, by reason.",
            ["reason"],
            registry=r,
        )
        self.selection_errors = Counter(
            f"{PREFIX}_selection_errors_total",
            "Selection requests answered with an error, by reason.",
            ["reason"],
            registry=r,
        )
        self.selection_latency = Histogram(
            f"{PREFIX}_selection_batch_seconds",
            "Time to answer one batch of selection requests, from decode to responses sent.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_age = Histogram(
            f"{PREFIX}_selection_request_age_seconds",
            "Age of a selection request when answered (now minus its timestamp).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Messages per processed batch, by agent.",
            ["agent"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )

    def _events(self, r: CollectorRegistry) -> None:
        self.events = Counter(
            f"{PREFIX}_events_total",
            "Outcome events by kind and outcome (applied, replayed, duplicate, rejected).",
            ["kind", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason and source topic.",
            ["reason", "topic"],
            registry=r,
        )
        self.catalog_updates = Counter(
            f"{PREFIX}_catalog_updates_total",
            "Catalog snapshots applied, by part.",
            ["part"],
            registry=r,
        )
        self.agent_errors = Counter(
            f"{PREFIX}_agent_errors_total",
            "Unexpected exceptions caught in an agent (the batch is dead-lettered).",
            ["agent"],
            registry=r,
        )
        self.skipped_messages_read = Counter(
            f"{PREFIX}_skipped_messages_read_total",
            "Messages the consumer skipped before an agent, read again by the agent itself.",
            registry=r,
        )
        self.corrections = Counter(
            f"{PREFIX}_corrections_total",
            "Stats corrections from the daily job, by outcome (applied, replayed, rejected).",
            ["outcome"],
            registry=r,
        )
        self.learning_pool_size = Gauge(
            f"{PREFIX}_learning_pool_creatives",
            "Creatives in the learning pool, summed over the accounts this worker serves.",
            registry=r,
        )


class StatsJobMetrics:
    """What one run of the daily job (`creative-select stats-job`) found: gauges that a
    CronJob writes to a textfile or pushes to a Pushgateway when it ends. Drift is the
    absolute count difference between the streamed and the recomputed stats, summed over
    accounts and creatives; labels are event kinds and rates only."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._drift(r)
        self._run(r)
        self.send_times = SlotJobMetrics(r)

    def _drift(self, r: CollectorRegistry) -> None:
        self.drift_events = Gauge(
            f"{PREFIX}_reconciliation_drift_events",
            "Events the last reconciliation corrected (absolute difference), by kind.",
            ["kind"],
            registry=r,
        )
        self.drift_revenue = Gauge(
            f"{PREFIX}_reconciliation_drift_revenue",
            "Revenue the last reconciliation corrected (absolute difference), currency units.",
            registry=r,
        )
        self.drift_accounts = Gauge(
            f"{PREFIX}_reconciliation_drift_accounts",
            "Accounts whose streamed counts differed from the recomputation.",
            registry=r,
        )
        self.drift_creatives = Gauge(
            f"{PREFIX}_reconciliation_drift_creatives",
            "Creatives whose streamed counts differed from the recomputation.",
            registry=r,
        )
        self.mean_shift = Gauge(
            f"{PREFIX}_reconciliation_max_mean_shift",
            "Largest change of a creative's posterior mean the correction makes, by rate.",
            ["rate"],
            registry=r,
        )

    def _run(self, r: CollectorRegistry) -> None:
        self.accounts = Gauge(
            f"{PREFIX}_reconciliation_accounts",
            "Accounts compared by the last reconciliation.",
            registry=r,
        )
        self.records = Gauge(
            f"{PREFIX}_reconciliation_records",
            "Event records the last reconciliation read, by kind and outcome "
            "(counted, duplicate, rejected, after_cut).",
            ["kind", "outcome"],
            registry=r,
        )
        self.corrections = Gauge(
            f"{PREFIX}_reconciliation_corrections",
            "Corrections the last reconciliation published (one per drifting account).",
            registry=r,
        )
        self.read_rate = Gauge(
            f"{PREFIX}_reconciliation_read_records_per_second",
            "Event records read and folded per second by the last reconciliation.",
            registry=r,
        )
        self.duration = Gauge(
            f"{PREFIX}_reconciliation_duration_seconds",
            "Duration of the last reconciliation run.",
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_reconciliation_last_success_timestamp_seconds",
            "When the last reconciliation run ended without error (Unix time).",
            registry=r,
        )
        self.snapshot_accounts = Gauge(
            f"{PREFIX}_params_snapshot_accounts",
            "Accounts in the last published parameter snapshot.",
            registry=r,
        )
