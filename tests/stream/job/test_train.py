"""The training job's decisions, without Kafka: which accounts train, the gate against the
model in use, versions, and a promoted model's document on the models topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from selector import Account
from selector.model.artifact import ContextualModel, from_bytes
from selector.model.examples import OutcomeEvent
from selector.model.train import TrainingConfig
from stream.job.train import TrainOptions, train_all
from stream.job.train_io import TrainRun
from stream.job.train_report import json_bytes, record, text
from stream.ops.model_metrics import TrainJobMetrics
from tests.stream.model_fixtures import MODEL_ONLY, world
from tests.stream.model_fixtures import model_account as account

pytestmark = pytest.mark.slow  # five trainings of 6,000-12,000 sends
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "contextual_model.v1.schema.json"
NOW = 2e6  # every send of the world is matured by then


@pytest.fixture(scope="module")
def events() -> list[OutcomeEvent]:
    return world(12_000, 1_500, seed=3)


def options(**changes: Any) -> TrainOptions:
    fast = TrainingConfig(evidence_rounds=0)  # the job's logic, not the fit, is tested here
    given: dict[str, Any] = {"min_sends": 500, "attribution_seconds": 3600.0, "config": fast}
    return TrainOptions(**{**given, **changes})


@pytest.fixture(scope="module")
def first(events: list[OutcomeEvent]) -> ContextualModel:
    catalogs = {"m": account("m", **MODEL_ONLY)}
    half = events[: len(events) // 2]
    results, published = train_all(catalogs, {"m": half}, {}, NOW, options())
    assert [(r.account_id, r.reason, r.version) for r in results] == [("m", "first_model", 1)]
    (model,) = published
    return model


def test_a_first_model_is_promoted_and_its_document_fits_the_schema(
    first: ContextualModel,
) -> None:
    assert (first.account_id, first.version, first.trained_at) == ("m", 1, NOW)
    document = json.loads(first.to_bytes())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)
    again = from_bytes(first.to_bytes())
    assert isinstance(again, ContextualModel) and again.version == 1


def test_only_accounts_that_use_model_or_are_named_train(events: list[OutcomeEvent]) -> None:
    catalogs: dict[str, Account | None] = {
        "plain": account("plain"),
        "named": account("named"),
        "broken": None,
    }
    data = {"plain": events, "named": events}
    results, _ = train_all(catalogs, data, {}, NOW, options(accounts=("named", "ghost")))
    assert [(r.account_id, r.reason) for r in results] == [
        ("ghost", "no_catalog"),
        ("named", "first_model"),
    ]
    results, _ = train_all(catalogs, data, {}, NOW, options())
    assert results == []


def test_an_account_trains_at_its_interval_and_needs_matured_sends(
    events: list[OutcomeEvent], first: ContextualModel
) -> None:
    daily = {"m": account("m", model_training_interval_seconds=86_400, **MODEL_ONLY)}
    current = {"m": first}
    soon, _ = train_all(daily, {"m": events}, current, NOW + 3600, options())
    assert [r.reason for r in soon] == ["not_due"]
    (few,), _ = train_all(daily, {"m": events[:300]}, {}, NOW, options())
    assert few.reason == "too_few_sends" and 0 < few.sends < 500
    young = options(attribution_seconds=NOW)  # nothing has matured
    assert train_all(daily, {"m": events}, {}, NOW, young)[0][0].reason == "too_few_sends"


def test_a_retrained_candidate_is_gated_against_the_model_in_use(
    events: list[OutcomeEvent], first: ContextualModel
) -> None:
    catalogs = {"m": account("m", **MODEL_ONLY)}
    (r,), published = train_all(  # twice the data of the first model: better
        catalogs, {"m": events}, {"m": first}, NOW + 86_400, options(force=True)
    )
    assert (r.reason, r.version, r.current_version) == ("better", 2, 1)
    assert r.candidate is not None and r.current is not None
    assert r.candidate.sends == r.current.sends  # the same held-out sends
    assert r.candidate.normalized_entropy < r.current.normalized_entropy
    assert [m.version for m in published] == [2]
    second = published[0]
    (same,), again = train_all(catalogs, {"m": events}, {"m": second}, NOW, options(force=True))
    assert (same.reason, again) == ("not_better", [])  # the same data: not better


def test_the_report_has_every_metric_and_the_job_metrics_have_no_ids(
    events: list[OutcomeEvent],
) -> None:
    catalogs = {"acct-secret": account("acct-secret", **MODEL_ONLY)}
    results, _ = train_all(catalogs, {"acct-secret": events}, {}, NOW, options())
    run = TrainRun(results, 1, len(events), {"kept": len(events)}, 1.0, 2.0, 0.5)  # type: ignore[arg-type]
    doc = json.loads(json_bytes(run))
    holdout = doc["accounts"][0]["candidate_holdout"]
    for name in ("log_loss", "normalized_entropy", "auc", "calibration", "revenue_mae"):
        assert holdout[name] is not None, name
    assert doc["accounts"][0]["metrics"]["per_creative_beta_log_loss"] > 0
    assert len(doc["accounts"][0]["metrics"]["importances"]) <= 10
    assert "acct-secret" in text(run) and "first_model" in text(run)
    metrics = TrainJobMetrics()
    record(metrics, run, 123.0)
    exposition = "\n".join(
        f"{s.name} {s.labels}" for f in metrics.registry.collect() for s in f.samples
    )
    assert "acct-secret" not in exposition
    assert metrics.gate.labels("first_model")._value.get() == 1
