"""The daily job's pieces that need no Kafka: correction messages, the parameter snapshot,
the scope, the comparison, the report and its metrics, the command line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import MappingProxyType

import jsonschema
import pytest
from prometheus_client import generate_latest

from selector.domain import BetaPrior
from selector.ingest import Ledger
from selector.reconcile import Tally, correction, creative_drift, summarize
from selector.stats import AccountStats, Counts, Event, fold
from stream.cli import build_parser
from stream.handlers.catalog import AccountCatalog, build_catalog
from stream.job import report as stats_report
from stream.job.readers import Folded
from stream.job.run import Outcome, compare, scope_of
from stream.job.snapshot import build
from stream.ops.metrics import StatsJobMetrics
from stream.wire import codec
from stream.wire.corrections import to_delta, to_message
from stream.wire.messages import encode
from tests.stream.handlers.service_fixtures import ACCOUNT

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def schema(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads((SCHEMAS / f"{kind}.v1.schema.json").read_text())
    )


def test_a_correction_survives_the_wire_with_its_decayed_difference() -> None:
    streamed = fold([Event("send", "a", 10.0)], AccountStats(half_life_seconds=60.0))
    recomputed = fold(
        [Event("send", "a", 10.0), Event("click", "a", 70.0), Event("conversion", "b", 5.0, 7)],
        AccountStats(half_life_seconds=60.0),
    )
    delta = correction(streamed, recomputed)
    assert delta is not None
    raw = encode(to_message("acme", delta, "run-9", 1_767_000_000.0))
    schema("stats_correction").validate(json.loads(raw))
    message = codec.decode("stats_correction", raw, key=b"acme")
    assert not isinstance(message, codec.Rejected)
    back = to_delta(message, 60.0)
    assert dict(back.counts) == dict(delta.counts)
    assert dict(back.decayed) == dict(delta.decayed)
    fixed = streamed.merge(back)
    assert fixed.same_counts(recomputed)


def test_a_decayed_difference_without_a_reference_time_is_sent_as_null() -> None:
    delta = AccountStats(MappingProxyType({"a": Counts(sends=1)}), 60.0, MappingProxyType({}))
    message = to_message("acme", delta, "r", 0.0)
    assert message.creatives["a"].decayed is None
    assert json.loads(encode(message))["creatives"]["a"]["decayed"] is None


def raw_catalog() -> dict[str, object]:
    return {
        "version": 4,
        **{k: ACCOUNT[k] for k in ("settings", "offers", "creatives", "campaigns")},
    }


def catalog(account_id: str = "acme", value: dict[str, object] | None = None) -> AccountCatalog:
    return build_catalog(account_id, value or raw_catalog())


def test_snapshots_validate_against_the_schema_and_carry_the_streamed_counts() -> None:
    stats = fold([Event("send", "c1", 1.0)] * 20 + [Event("click", "c1", 2.0)] * 3)
    snapshots = build(
        {"acme": Ledger(stats)}, {"acme": catalog(), "new": catalog("new")}, 1_767_000_000.0
    )
    assert sorted(snapshots.messages) == ["acme", "new"] and snapshots.invalid_catalogs == 0
    doc = json.loads(snapshots.messages["acme"])
    schema("params_snapshot").validate(doc)
    assert not isinstance(
        codec.decode("params_snapshot", snapshots.messages["acme"]), codec.Rejected
    )
    assert doc["version"] == stats.version
    c1 = doc["creatives"]["c1"]
    assert (c1["sends"], c1["clicks"], c1["ctr_alpha"], c1["ctr_beta"]) == (20, 3, 4, 18)
    assert doc["offers"]["o1"]["sends"] == 20
    assert json.loads(snapshots.messages["new"])["creatives"]["c2"]["sends"] == 0


def test_an_account_whose_catalog_cannot_build_is_left_out_of_the_snapshot() -> None:
    broken = {**raw_catalog(), "campaigns": [{"campaign_id": "k", "default_creative_id": "nope"}]}
    snapshots = build({}, {"acme": catalog("acme", broken)}, 0.0)
    assert snapshots.messages == {} and snapshots.invalid_catalogs == 1


def test_the_scope_leaves_out_stats_without_a_catalog_and_compare_corrects_the_rest() -> None:
    streamed = fold([Event("send", "c1", 1.0), Event("send", "c1", 2.0)])
    cut = {
        "acme": Ledger(streamed, MappingProxyType({"sends:0": 9})),
        "orphan": Ledger(streamed, MappingProxyType({"sends:1": 3})),
    }
    scope, skipped = scope_of(cut, {"acme": catalog()})
    assert skipped == 1 and list(scope.cut) == ["acme"]
    assert scope.cut["acme"] == {"sends:0": 9} and "c2" in scope.creatives["acme"]
    tally = Tally()
    for _ in range(3):
        tally.add("send", "c1", 1.0)
    drifts, deltas = compare(cut, Folded({"acme": tally}, Counter()), {"acme": catalog()}, scope)
    assert [d.delta for d in drifts["acme"]] == [Counts(sends=1)]
    assert deltas["acme"].counts["c1"] == Counts(sends=1)
    empty, none = compare({"acme": Ledger()}, Folded({}, Counter()), {"acme": catalog()}, scope)
    assert empty == {} and none == {}


def outcome() -> Outcome:
    found = creative_drift(
        fold([Event("send", "c1", 1.0)]), fold([Event("click", "c1", 1.0)]), BetaPrior()
    )
    return Outcome(
        "run-1",
        summarize(3, [found]),
        {"acme": found},
        Counter({("send", "counted"): 10, ("click", "duplicate"): 2}),
        1,
        0,
        3,
        0.5,
        2.0,
    )


def test_the_report_and_its_metrics_name_no_account_or_creative_in_labels(tmp_path: Path) -> None:
    result = outcome()
    text = stats_report.text(result)
    assert "acme" in text and "1 creative(s) in 1 account(s)" in text
    doc = json.loads(stats_report.json_bytes(result))
    assert doc["drift_events"] == {"send": 1, "click": 1, "conversion": 0}
    assert doc["drifts"][0]["delta"]["sends"] == -1
    metrics = StatsJobMetrics()
    stats_report.record(metrics, result, 1_767_000_000.0)
    path = tmp_path / "job.prom"
    stats_report.export(metrics, path, "")
    scrape = path.read_text()
    assert scrape == generate_latest(metrics.registry).decode()
    assert 'creative_selection_reconciliation_drift_events{kind="send"} 1.0' in scrape
    assert "creative_selection_reconciliation_last_success_timestamp_seconds 1.767e+09" in scrape
    assert (
        'creative_selection_reconciliation_records{kind="click",outcome="duplicate"} 2.0' in scrape
    )
    assert "acme" not in scrape and "c1" not in scrape


def test_the_command_has_examples_and_exclusive_modes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["stats-job", "--help"])
    assert "creative-select stats-job --report-only" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["stats-job", "--report-only", "--snapshot-only"])
    args = parser.parse_args(["stats-job", "--report-only", "--processes", "3"])
    assert args.report_only and args.processes == 3 and not args.snapshot_only
