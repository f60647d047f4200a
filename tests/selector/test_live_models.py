"""Model metrics in the live report: the models topic's versions per account, decoded or
counted by reason, as sections marking the versions the reported decisions named."""

from __future__ import annotations

import dataclasses
import doctest
import json
from typing import Any

from selector import live_models
from selector.live_models import ModelLog, ModelVersion, model_sections
from selector.live_report import report_from_records
from selector.model.artifact import ContextualModel
from tests.selector.model.test_artifact import model
from tests.selector.test_live_sections import model_log

T0 = 1.7e9
HELD = {"sends": 1200, "clicks": 150, "log_loss": 0.31234567, "normalized_entropy": 0.87654321,
        "auc": 0.7123456, "calibration": 1.0234, "revenue_mae": 0.51234, "revenue_rmse": 1.25,
        "by": "time", "fraction": 0.2}  # fmt: skip
TOP = [["creative=deal", 0.41], ["plan=pro", 0.25], ["per_click", 0.1]]


def version(account: str, v: int, **metrics: Any) -> ContextualModel:
    base = {"training_sends": 4800, "holdout": {**HELD, "auc": 0.7 + v / 100}, "importances": TOP}
    return dataclasses.replace(
        model(), account_id=account, version=v, trained_at=T0 + v * 86400.0,
        metrics={**base, **metrics},
    )  # fmt: skip


def test_the_module_example_runs() -> None:
    assert doctest.testmod(live_models).failed == 0


def test_a_row_per_version_with_its_held_out_metrics_and_the_importances_in_use() -> None:
    versions = [ModelVersion(version("a", v), T0 + v * 86400.0 + 60) for v in (3, 1, 2)]
    metrics, top = model_sections(versions, current=3, seen={2, 3})
    assert metrics.key == "model_metrics" and top.key == "model_importances"
    assert [r[0] for r in metrics.rows] == ["1", "2", "3"]
    assert metrics.rows[0] == (
        "1", "2023-11-15 22:13", "2023-11-15 22:14", "", "", "yes", "4,800", "1,200",
        "0.3123", "0.8765", "0.7100", "1.023", "0.5123", "1.2500",
    )  # fmt: skip
    assert [r[3:5] for r in metrics.rows] == [("", ""), ("", "yes"), ("yes", "yes")]
    first = metrics.data["versions"][0]
    assert first["holdout"] == {**HELD, "auc": 0.71} and first["training_sends"] == 4800
    assert (first["in_use"], first["in_range"], first["promoted"]) == (False, False, None)
    assert top.title == "Model feature importances (version 3, in use)"
    assert top.rows == (("creative=deal", "41.0%"), ("plan=pro", "25.0%"), ("per_click", "10.0%"))
    assert top.data == {"version": 3, "importances": TOP}


def test_promoted_is_shown_where_the_value_says_and_missing_figures_are_n_a() -> None:
    bare = version("a", 1, promoted=False, holdout={"auc": None}, importances="junk")
    (metrics,) = model_sections([ModelVersion(bare, T0)], current=1, seen=())
    assert metrics.rows[0][5] == "no" and metrics.rows[0][7:] == ("n/a",) * 7
    assert model_sections([], None, ()) == ()


def test_the_log_keeps_versions_counts_bad_values_by_reason_and_follows_the_newest() -> None:
    log = ModelLog(frozenset({"a", "x"}))
    for v in (1, 2):
        log.add(b"a", version("a", v).to_bytes(), T0 + v)
    log.add(b"a", version("a", 1).to_bytes(), T0 + 3)  # an older version again: not in use
    log.add(b"b", version("b", 1).to_bytes(), T0)
    log.add(b"a", b"\x00garbage", T0)
    log.add(b"a", json.dumps({"format": "other"}).encode(), T0)
    log.add(b"x", version("a", 4).to_bytes(), T0)
    log.add(None, version("a", 5).to_bytes(), T0)
    assert log.read == 8 and log.current == {"a": 2}
    assert [(m.model.version, m.record_time) for m in log.versions["a"]] == [
        (1, T0 + 1), (2, T0 + 2), (1, T0 + 3),
    ]  # fmt: skip
    assert dict(log.undecodable) == {"not_json": 1, "unknown_format": 1, "key_not_account": 1,
                                     "no_key": 1}  # fmt: skip
    assert dict(log.left_out) == {"other_account": 1}
    log.add(b"a", None, T0 + 9)  # a tombstone withdraws the model in use
    assert log.current == {} and log.left_out["tombstone"] == 1
    (metrics,) = log.sections({})["a"]
    assert not any(d["in_use"] for d in metrics.data["versions"])


def test_apply_marks_the_versions_the_responses_named_and_adds_the_counts() -> None:
    log = ModelLog()
    for v in (1, 2, 3):
        log.add(b"a", version("a", v).to_bytes(), T0 + v)
    log.add(b"z", version("z", 1).to_bytes(), T0)
    log.add(b"a", b"{", T0)
    report = log.apply(report_from_records(model_log()))  # model versions 2 and 3 seen
    (account,) = report.accounts
    keys = [s.key for s in account.sections]
    assert keys == ["model", "model_metrics", "model_importances"]
    marked = [(d["version"], d["in_range"]) for d in account.sections[1].data["versions"]]
    assert marked == [(1, False), (2, True), (3, True)]
    (other,) = report.other_accounts  # an account with models and no reported sends
    assert other.account_id == "z" and [s.key for s in other.sections] == [
        "model_metrics",
        "model_importances",
    ]
    assert report.records["model"] == 5 and report.undecodable["model"] == {"not_json": 1}
    assert "model" not in report.unmatched


def test_nothing_read_leaves_the_report_as_it_was() -> None:
    report = report_from_records(model_log())
    assert ModelLog().apply(report) is report
