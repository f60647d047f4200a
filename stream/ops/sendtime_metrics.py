"""The send-time metrics (`stream.ops.metrics` registers them with the others, under the
same prefix). Labels are bounded: arms, reasons, zone sources and issues, event kinds and
outcomes; never contact, campaign or account ids, never zone names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from selector.sendtime.batch import ARMS, REASONS
from selector.sendtime.clock import ZONE_ISSUES, ZONE_SOURCES
from selector.sendtime.codec import CODEC_REASONS
from selector.sendtime.counts import SLOT_OUTCOMES
from stream.wire.reasons import REJECTIONS

PREFIX = "creative_selection"
# The local time of day in seconds, a bucket an hour: a send at 09:30 falls in le="36000".
HOUR_BUCKETS = tuple(float(3600 * h) for h in range(1, 25))
BATCH_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LEARN_KINDS = ("send", "response")
# What became of a send or click the learner read: the fold's outcomes, and why an
# event had no effect before it reached the fold.
LEARN_OUTCOMES = (*SLOT_OUTCOMES, "rejected", "unattributed", "early", "not_learned")
STATE_ISSUES = (*CODEC_REASONS, "store_unavailable")
AGENTS = ("answer_send_time_requests", "learn_send_times")


class SendTimeMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.decisions = Counter(
            f"{PREFIX}_send_times_total",
            "Send times decided, by arm and reason (sampled, explored, only_slot, control, "
            "no_allowed_time).",
            ["arm", "reason"],
            registry=r,
        )
        self.local_time = Histogram(
            f"{PREFIX}_sendtime_local_time_seconds",
            "Local time of day of the decided send times (seconds after local midnight; a "
            "bucket per hour), by arm.",
            ["arm"],
            buckets=HOUR_BUCKETS,
            registry=r,
        )
        self.deferred = Counter(
            f"{PREFIX}_sendtime_deferred_total",
            "Decisions whose launch instant was quiet for the contact (deferred to sending "
            "hours), by arm.",
            ["arm"],
            registry=r,
        )
        self.zone_fallbacks = Counter(
            f"{PREFIX}_sendtime_zone_fallbacks_total",
            "Decisions that did not use the request's zone: where the zone came from "
            "(profile, account, utc) and why (missing, invalid).",
            ["source", "issue"],
            registry=r,
        )
        self.errors = Counter(
            f"{PREFIX}_sendtime_errors_total",
            "Send-time requests answered with an error, by reason.",
            ["reason"],
            registry=r,
        )
        self.state_issues = Counter(
            f"{PREFIX}_sendtime_state_issues_total",
            "Contacts whose stored slot counts could not be used (decided as new contacts), "
            "by reason.",
            ["reason"],
            registry=r,
        )
        self.events = Counter(
            f"{PREFIX}_sendtime_events_total",
            "Sends and responses (clicks) read by the send-time learner, by outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_sendtime_batch_seconds",
            "Time to handle one batch, by agent (answer_send_time_requests, learn_send_times).",
            ["agent"],
            buckets=BATCH_SECONDS,
            registry=r,
        )
        self._loads(r)

    def _loads(self, r: CollectorRegistry) -> None:
        self.prior_loads = Counter(
            f"{PREFIX}_sendtime_prior_loads_total",
            "Messages of the send-time priors topic this worker read, by outcome (loaded, "
            "older: a version not newer than the one in use, rejected).",
            ["outcome"],
            registry=r,
        )

    def start_series(self) -> None:
        """Every series of these small label sets exists from the start, at 0."""
        for arm in ARMS:
            self.deferred.labels(arm)
            self.local_time.labels(arm)
            for reason in REASONS:
                self.decisions.labels(arm, reason)
        for kind in LEARN_KINDS:
            for outcome in LEARN_OUTCOMES:
                self.events.labels(kind, outcome)
        for source in ZONE_SOURCES[1:]:
            for issue in ZONE_ISSUES[1:]:
                self.zone_fallbacks.labels(source, issue)
        for rejection in REJECTIONS:
            self.errors.labels(rejection)
        for state_issue in STATE_ISSUES:
            self.state_issues.labels(state_issue)
        for agent in AGENTS:
            self.batch_seconds.labels(agent)
        for load in ("loaded", "older", "rejected"):
            self.prior_loads.labels(load)


class SlotJobMetrics:
    """What the daily job's slot reconciliation found (gauges of its last run, beside the
    stats job's): contacts by what became of them, drift by event kind. No ids."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.contacts = Gauge(
            f"{PREFIX}_sendtime_reconciliation_contacts",
            "Contacts of the last slot reconciliation, by outcome (compared, drifting, "
            "corrected, moving: read past the log, missing: no usable stored counts).",
            ["outcome"],
            registry=r,
        )
        self.drift_events = Gauge(
            f"{PREFIX}_sendtime_reconciliation_drift_events",
            "Slot counts the last reconciliation found off (absolute difference summed over "
            "contacts and cells), by kind (send, response).",
            ["kind"],
            registry=r,
        )
        self.priors = Gauge(
            f"{PREFIX}_sendtime_reconciliation_priors",
            "Accounts whose send-time prior the last run fitted and published.",
            registry=r,
        )
