"""`bench selector`: the report's shape and arithmetic, and the peers' posteriors.

No timing thresholds: speed is measured by running the benchmark, not by tests.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import cli as bench_command
from bench import peers, selector_bench
from selector import Selector
from stream.cli import main as cli_main


def _parse(argv: list[str]) -> argparse.Namespace:
    assert argv[0] == "bench"
    return bench_command.build_parser().parse_args(argv[1:])


TINY = ["--repeats", "2", "--min-seconds", "0", "--no-progress"]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("bench") / "selector.json"
    args = _parse(["bench", "selector", "--quick", "--json", str(path), *TINY])
    affinity = os.sched_getaffinity(0)
    assert args.func(args) == 0
    assert os.sched_getaffinity(0) == affinity  # pinning is undone
    return dict(json.loads(path.read_text()))


def test_bench_is_a_cli_command() -> None:
    from stream.cli import COMMANDS

    assert "bench" in COMMANDS


def test_report_has_every_row(quick_report: dict[str, Any]) -> None:
    keys = [(r["creatives"], r["goal"], r["mode"]) for r in quick_report["rows"]]
    expected = itertools.product((5, 10, 50), selector_bench.GOALS, selector_bench.MODES)
    assert keys == list(expected)
    assert quick_report["settings"]["repeats"] == 2
    assert quick_report["machine"]["tune_allocator"] in ("on", "unavailable (not glibc)")
    assert quick_report["machine"]["pinned_to_cpu"] == 0


def test_rates_are_positive(quick_report: dict[str, Any]) -> None:
    for row in quick_report["rows"]:
        for name in ("ours", *selector_bench.PEERS):
            rate = row[name]
            assert len(rate["samples"]) == 2
            assert 0 < rate["min"] <= rate["median"] <= rate["max"]
        assert row["numpy_floor"]["decisions_per_second"] > 0


def test_ratios_come_from_the_reported_rates(quick_report: dict[str, Any]) -> None:
    for row in quick_report["rows"]:
        ours = row["ours"]["median"]
        for peer in selector_bench.PEERS:
            assert row[f"ours_per_{peer}"] == pytest.approx(ours / row[peer]["median"])
        floor = row["numpy_floor"]
        implied = floor["draws_per_second"]["median"] / floor["draws_per_decision"]
        assert floor["decisions_per_second"] == pytest.approx(implied)
        assert row["ours_per_numpy_floor"] == pytest.approx(ours / implied)


def test_targets_name_the_ten_creative_revenue_batches(quick_report: dict[str, Any]) -> None:
    names = [t["name"] for t in quick_report["targets"]]
    assert len(names) == 6
    assert all(n.startswith("10 creatives, revenue, batch") for n in names)
    for t in quick_report["targets"]:
        assert t["met"] == (t["value"] >= t["target"])


def test_table_shows_every_row(quick_report: dict[str, Any]) -> None:
    table = selector_bench.format_table(quick_report)
    assert "pinned to CPU 0" in table
    assert sum(line.lstrip().startswith(("5 ", "10 ", "50 ")) for line in table.splitlines()) == 18


def test_untuned_run_happens_in_a_fresh_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "untuned.json"
    argv = ["bench", "selector", "--no-tune-allocator", "--creatives", "5", "--json", str(path)]
    # creative-select bench starts `python -m bench` in a fresh interpreter, which never
    # tuned the allocator (this one did when the CLI started)
    assert cli_main([*argv, *TINY]) == 0
    report = json.loads(path.read_text())
    assert report["machine"]["tune_allocator"] == "off"
    assert len(report["rows"]) == 6


@pytest.mark.parametrize("goal", ["clicks", "revenue"])
def test_peers_hold_our_posteriors(goal: str) -> None:
    selector = Selector(selector_bench.benchmark_account(10, goal))
    stats = selector_bench.benchmark_stats(selector.account, seed=1)
    post = peers.Posteriors.of(selector, stats)
    assert (post.sends >= selector_bench.THRESHOLD).all()
    assert ((post.clicks / post.sends >= 0.079) & (post.clicks / post.sends <= 0.151)).all()
    assert post.per_click.any() and not post.per_click.all()

    river = peers.river_policy(post, seed=1)
    ctr, cvr = peers.mabwiser_models(post, seed=1)
    for j, arm in enumerate(post.ids):
        reward = river._rewards[arm]
        beta = reward if goal == "clicks" else reward.ctr
        assert (beta.alpha, beta.beta) == (post.ctr_alpha[j], post.ctr_beta[j])
        assert ctr._imp.arm_to_success_count[arm] == post.ctr_alpha[j]
        assert ctr._imp.arm_to_fail_count[arm] == post.ctr_beta[j]
        if goal == "revenue" and not post.per_click[j]:
            assert (reward.cvr.alpha, reward.cvr.beta) == (post.cvr_alpha[j], post.cvr_beta[j])
            assert cvr._imp.arm_to_success_count[arm] == post.cvr_alpha[j]
            assert cvr._imp.arm_to_fail_count[arm] == post.cvr_beta[j]


def test_river_state_equals_feeding_it_the_outcomes() -> None:
    from river import bandit, proba

    selector = Selector(selector_bench.benchmark_account(5, "clicks"))
    stats = selector_bench.benchmark_stats(selector.account, seed=1)
    post = peers.Posteriors.of(selector, stats)
    set_directly = peers.river_policy(post, seed=3)
    fed = bandit.ThompsonSampling(reward_obj=proba.Beta(1, 1), seed=3)
    for j, arm in enumerate(post.ids):
        for clicked in np.arange(post.sends[j]) < post.clicks[j]:
            fed.update(arm, bool(clicked))
    for arm in post.ids:
        a, b = set_directly._rewards[arm], fed._rewards[arm]
        assert (a.alpha, a.beta, a.seed) == (b.alpha, b.beta, b.seed)
    assert set_directly._counts == fed._counts and set_directly._n == fed._n
    arms = list(post.ids)
    assert [set_directly.pull(arms) for _ in range(20)] == [fed.pull(arms) for _ in range(20)]


# --- bench stream: the arithmetic, without Kafka (tests/integration/test_bench_stream.py
# runs it end to end) ---------------------------------------------------------------------


def test_stream_quick_flags_become_the_config() -> None:
    from bench.stream_bench import QUICK

    args = _parse(["bench", "stream", "--quick", "--rate", "500", "--no-pin", "--no-progress"])
    config = bench_command.stream_config_from_args(args)
    assert config.requests == QUICK["requests"] and config.rate == 500.0
    assert not config.pin and not config.progress
    assert bench_command.stream_config_from_args(_parse(["bench", "stream"])).pin


def test_steady_rate_leaves_out_warm_up_and_tail() -> None:
    from bench.stream_measure import steady_rate

    # slow start (10 units in 10 s), then 100 units/s, then a slow tail
    samples = [(0.0, 0.0), (10.0, 10.0), (19.0, 910.0), (29.0, 1000.0)]
    assert steady_rate(samples, 1000) == pytest.approx(100.0)
    assert np.isnan(steady_rate(samples[:2], 1000))  # never reached 90%


def test_latency_summary_skips_the_warm_up_and_the_unanswered() -> None:
    from bench.stream_measure import latency_summary

    latency = np.array([9.0, 9.0, 0.001, 0.002, np.nan, 0.003])
    summary = latency_summary(latency, warmup=2)
    assert summary["measured"] == 3
    assert summary["p50_ms"] == pytest.approx(2.0) and summary["max_ms"] == pytest.approx(3.0)


def test_events_hold_the_stated_share_of_copies() -> None:
    from bench import stream_load

    load = stream_load.Load(env={}, accounts=2, events=3000, duplicate_pct=5.0)
    events = stream_load.event_messages(load, at=1.7e9)
    unique = {value for _, _, value in events}
    assert len(events) - len(unique) == stream_load.duplicate_count(len(unique), load) > 0
    assert stream_load.unique_count(len(events), load) == len(unique)
    assert {topic for topic, _, _ in events} == {"sends", "clicks", "conversions"}
    # every creative gets enough sends to leave the learning pool
    assert load.learning_threshold < load.sends_per_creative


def test_bench_outside_a_checkout_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli_main(["bench", "selector", "--quick"]) == 2
    assert "source checkout" in capsys.readouterr().err


def test_the_model_benchmark_is_delegated(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_command.DELEGATED["model"] == "bench.model_bench"
    with pytest.raises(SystemExit) as done:
        bench_command.main(["model", "--help"])
    assert done.value.code == 0
    assert "python -m bench.model_bench" in capsys.readouterr().out
