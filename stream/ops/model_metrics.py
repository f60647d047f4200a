"""The contextual model's metrics: the worker's (profiles kept live, models loaded and
used) and the training job's. Registered into `stream.ops.metrics.Metrics`'s registry
(`Metrics.model`) and a `TrainJobMetrics` registry, under the same prefix.

Labels take bounded values only: outcomes, reasons of `selector.model` (record decode
reasons, model load reasons, promotion gate reasons) and the decision's source. Per-
account figures (a model's version, its held-out metrics) are unbounded, so they are
exported as aggregates over accounts: the newest and oldest model in use, histograms of
the held-out normalized entropy and calibration over the accounts trained.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from selector.custom_fields import FIELD_REASONS
from selector.model.metrics import GATE_REASONS as GATE_VERDICTS
from selector.model.record import DECODE_REASONS

PREFIX = "creative_selection"
PROFILE_OUTCOMES = ("applied", "replayed", "duplicate", *DECODE_REASONS, "store_failure")
MODEL_LOADS = ("loaded", "older", "rejected")
MODEL_SOURCES = ("model", "fallback")
# what became of a custom-field value a request carried: stored in the profile, the same
# as the stored one, dropped (by `FIELD_REASONS`), or not stored (the store failed)
CUSTOM_OUTCOMES = ("stored", "unchanged", *FIELD_REASONS, "store_failure")
# the gate's verdicts, and why the job trained no candidate (stream.job.train.SKIPS)
GATE_REASONS = (*GATE_VERDICTS, "not_due", "too_few_sends", "no_catalog")
NE_BUCKETS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0, 1.02, 1.1)
CALIBRATION_BUCKETS = (0.5, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.5)


class ModelMetrics:
    """What a worker does with profiles and models."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.profile_events = Counter(
            f"{PREFIX}_profile_events_total",
            "Events folded into contact profiles, by outcome (applied, replayed, duplicate; "
            "stored values that did not decode, by reason; store failures, retried).",
            ["outcome"],
            registry=r,
        )
        self.model_loads = Counter(
            f"{PREFIX}_model_loads_total",
            "Models read from the models topic: loaded, older than the one in use, rejected.",
            ["outcome"],
            registry=r,
        )
        self.models_in_use = Gauge(
            f"{PREFIX}_models_in_use",
            "Accounts with a promoted contextual model loaded in this worker.",
            registry=r,
        )
        self.model_newest_trained = Gauge(
            f"{PREFIX}_model_newest_trained_timestamp_seconds",
            "When the most recently trained model in use was trained (Unix time).",
            registry=r,
        )
        self.model_oldest_trained = Gauge(
            f"{PREFIX}_model_oldest_trained_timestamp_seconds",
            "When the least recently trained model in use was trained (Unix time): an "
            "account whose training stopped shows here.",
            registry=r,
        )
        self.model_requests = Counter(
            f"{PREFIX}_model_requests_total",
            "Decisions of the model method: scored by a promoted model (predictions served) "
            "or by the Thompson fallback (reason model_unavailable).",
            ["source"],
            registry=r,
        )
        self.custom_values = Counter(
            f"{PREFIX}_custom_values_total",
            "Custom-field values carried by selection requests, by outcome: stored in the "
            "contact's profile, unchanged, dropped (unknown_field, not_a_number, "
            "out_of_bounds, not_a_string, unknown_category: listed in the response's "
            "custom_dropped), or store_failure (used for the decision, not stored).",
            ["outcome"],
            registry=r,
        )
        for outcome in CUSTOM_OUTCOMES:
            self.custom_values.labels(outcome)
        for outcome in PROFILE_OUTCOMES:
            self.profile_events.labels(outcome)
        for outcome in MODEL_LOADS:
            self.model_loads.labels(outcome)
        for source in MODEL_SOURCES:
            self.model_requests.labels(source)
        self.model_newest_trained.set(math.nan)  # no model yet
        self.model_oldest_trained.set(math.nan)


class TrainJobMetrics:
    """What one run of `creative-select train` found, pushed or written when it ends."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.gate = Gauge(
            f"{PREFIX}_train_gate_accounts",
            "Accounts of the last training run, by the promotion gate's reason "
            "(first_model and better promote; too_few_sends: not trained).",
            ["reason"],
            registry=r,
        )
        self.published = Gauge(
            f"{PREFIX}_train_models_published",
            "Models the last training run published to the models topic.",
            registry=r,
        )
        self.sends = Gauge(
            f"{PREFIX}_train_sends",
            "Matured sends the last training run trained and evaluated on, all accounts.",
            registry=r,
        )
        self.events = Gauge(
            f"{PREFIX}_train_events",
            "Events the last training run read from the event topics.",
            registry=r,
        )
        self.duration = Gauge(
            f"{PREFIX}_train_duration_seconds",
            "Duration of the last training run.",
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_train_last_success_timestamp_seconds",
            "When the last training run ended without error (Unix time).",
            registry=r,
        )
        self.normalized_entropy = Histogram(
            f"{PREFIX}_train_holdout_normalized_entropy",
            "Held-out normalized entropy of each account's candidate click model.",
            buckets=NE_BUCKETS,
            registry=r,
        )
        self.calibration = Histogram(
            f"{PREFIX}_train_holdout_calibration",
            "Held-out calibration (predicted / observed clicks) of each candidate.",
            buckets=CALIBRATION_BUCKETS,
            registry=r,
        )
        for reason in GATE_REASONS:
            self.gate.labels(reason).set(0)
