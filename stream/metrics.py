"""Every metric the service exports, in one place, under one prefix.

Naming follows Prometheus conventions: base units, `_total` for counters, `_seconds`
for durations, explicit histogram buckets. Labels take values from bounded sets only
(methods, arms, pools, reasons, event kinds, outcomes): never contact ids, never
creative ids, never account ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "creative_selection"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000)


class Metrics:
    """The service's metrics, registered in their own registry (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
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
