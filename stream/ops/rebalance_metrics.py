"""The metrics of rebalances: where partitions resumed from, requests delivered again,
changelog records a recovery left out, batches a rebalance overtook
(`stream.worker.resume`, `stream.worker.delivery`). `stream.ops.metrics.Metrics` has them."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

PREFIX = "creative_selection"
STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The steps of answering one batch of selection requests, in order (`answer_step`).
ANSWER_STEPS = ("decide", "store_record", "publish")


class RebalanceMetrics:
    """The rebalance part of the service's metrics."""

    def _rebalances(self, r: CollectorRegistry) -> None:
        self.resumes = Counter(
            f"{PREFIX}_resumes_total",
            "Partitions an agent resumed after an assignment, by where from: `record` when "
            "the group's committed offset was ahead of the durable record (the stats "
            "ledgers, the answered-through record, the catalog's applied offsets) and the "
            "messages in between were read back, `committed` otherwise.",
            ["agent", "start"],
            registry=r,
        )
        self.redelivered_requests = Counter(
            f"{PREFIX}_redelivered_requests_total",
            "Selection requests delivered again after they were answered, by what they got: "
            "`skipped` (their answer is stored) or `answered_again` (the same answer sent "
            "again, because the batch's responses may not have been stored).",
            ["outcome"],
            registry=r,
        )
        self.stale_changelog_records = Counter(
            f"{PREFIX}_stale_changelog_records_total",
            "Changelog records a table recovery did not apply because this worker had "
            "written the key since (Faust re-reads a worker's own writes at a rebalance).",
            ["table"],
            registry=r,
        )
        self.answer_step = Histogram(
            f"{PREFIX}_selection_step_seconds",
            "Time one batch of selection requests spent in each step, by step: `decide` "
            "(open, check, cooldowns and the decisions), `store_record` (waiting for the "
            "previous batch's responses to be stored, then storing and confirming the "
            "partition's answered record), `publish` (handing the responses to the "
            "producer).",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.recovery_restarts = Counter(
            f"{PREFIX}_recovery_stalls_total",
            "Changelog partitions whose table recovery had received nothing for "
            "`CS_RECOVERY_STALL_SECONDS` while records were left to read, and were sought "
            "back to the recovery's position and resumed (`stream.worker.agents"
            ".watch_recovery`).",
            registry=r,
        )
        self.rebalance_dropped = Counter(
            f"{PREFIX}_rebalance_dropped_messages_total",
            "Messages of batches a rebalance overtook, left for whichever worker holds the "
            "partition next to read again from its durable record.",
            ["agent"],
            registry=r,
        )

    def _start_rebalance_series(self, agents: Iterable[str]) -> None:
        for step in ANSWER_STEPS:
            self.answer_step.labels(step)
        for agent in agents:
            self.rebalance_dropped.labels(agent)
            for start in ("record", "committed"):
                self.resumes.labels(agent, start)
        for outcome in ("skipped", "answered_again"):
            self.redelivered_requests.labels(outcome)
