"""Decision metrics per batch and the exposure gauges: counts equal a per-decision tally,
and the share, diversity and learning measures are what their definitions say."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import pytest

from selector import AccountStats, RequestBatch, Selector, account_from_dict
from selector.stats import Counts
from selector.view import AccountView, compile_account
from stream.handlers.catalog import Catalogs
from stream.handlers.selection import SelectionService
from stream.handlers.stores import MemoryCooldowns
from stream.ops.exposure import DecisionMetrics, Exposure, learning_creatives
from stream.ops.metrics import Metrics
from tests.stream.handlers.service_fixtures import ACCOUNT, catalog_table, record, request

TWO_CAMPAIGNS: dict[str, Any] = {
    **ACCOUNT,
    "account_id": "acme",
    "settings": {**ACCOUNT["settings"], "cooldown_seconds": 0},
    "campaigns": [
        *ACCOUNT["campaigns"],
        {"campaign_id": "q", "default_creative_id": "c1", "automated_percent": 30},
    ],
}


def view(creatives: int = 3, threshold: int = 100) -> AccountView:
    doc = {
        **ACCOUNT,
        "account_id": "a",
        "settings": {**ACCOUNT["settings"], "learning_threshold": threshold},
        "creatives": [{"creative_id": f"c{i}", "offer_id": "o1"} for i in range(creatives)],
    }
    return compile_account(account_from_dict(doc))


def value(counter: Any, *labels: str) -> float:
    return float((counter.labels(*labels) if labels else counter)._value.get())


def no_stats(account_id: str) -> AccountStats | None:
    return None


def test_decision_counts_equal_a_tally_of_every_decision() -> None:
    selector = Selector(account_from_dict(TWO_CAMPAIGNS))
    contacts = [f"u{i}" for i in range(3000)]
    campaigns = ["k" if i % 2 else "q" for i in range(3000)]
    batch = RequestBatch.from_columns(campaigns, contacts, np.full(3000, 5.0))
    decision = selector.decide_batch(AccountStats(), batch, np.random.default_rng(1))
    metrics = Metrics()
    DecisionMetrics(metrics).observe("acme", selector.view, batch, decision)

    tally = Counter((d.method, d.arm, d.pool) for d in decision.decisions())
    assert len(tally) >= 2
    for (method, arm, pool), n in tally.items():
        assert value(metrics.decisions, method, arm, pool) == n
    expected = 1500 * (1 - 0.8) + 1500 * (1 - 0.3)
    assert value(metrics.decisions_expected_control) == pytest.approx(expected)


def test_fallbacks_are_counted_by_reason() -> None:
    contacts = [f"u{i}" for i in range(400)]
    # every creative sent a moment ago: all in cooldown for a 1-hour cooldown
    doc = {**TWO_CAMPAIGNS, "settings": {**TWO_CAMPAIGNS["settings"], "cooldown_seconds": 3600}}
    selector = Selector(account_from_dict(doc))
    recent = [{"c0": 4.0, "c1": 4.0, "c2": 4.0}] * 400
    batch = RequestBatch.from_columns(["k"] * 400, contacts, np.full(400, 5.0), recent)
    decision = selector.decide_batch(AccountStats(), batch, np.random.default_rng(1))
    metrics = Metrics()
    DecisionMetrics(metrics).observe("acme", selector.view, batch, decision)
    fallbacks = sum(1 for d in decision.decisions() if d.pool == "fallback")
    assert fallbacks > 250
    assert value(metrics.fallbacks, "all_in_cooldown") == fallbacks


def summary_of(*accounts: tuple[AccountView, list[int]], **kwargs: Any) -> Any:
    exposure = Exposure(**kwargs)
    for i, (v, picks) in enumerate(accounts):
        exposure.record(f"a{i}", v, np.repeat(np.arange(len(picks)), picks))
    return exposure.summary(no_stats)


def test_top_share_is_the_max_and_entropy_the_weighted_mean() -> None:
    s = summary_of((view(), [90, 5, 5]), (view(), [100, 100, 100]), min_decisions=100)
    assert s.top_share == pytest.approx(0.9)
    p = np.array([0.9, 0.05, 0.05])
    skewed = -(p * np.log(p)).sum() / math.log(3)
    assert s.entropy_ratio == pytest.approx((100 * skewed + 300 * 1.0) / 400)
    assert (s.dominated, s.diverse) == (0, 2)


def test_small_accounts_and_accounts_without_a_choice_are_left_out() -> None:
    s = summary_of((view(), [99, 0, 0]), (view(creatives=1), [500]), min_decisions=100)
    assert math.isnan(s.top_share) and math.isnan(s.entropy_ratio)
    assert (s.dominated, s.diverse) == (0, 0)
    s = summary_of((view(), [96, 2, 2]), min_decisions=100)
    assert (s.dominated, s.diverse) == (1, 0)


def test_the_window_slides_by_halves_and_forgets_idle_accounts() -> None:
    exposure = Exposure(window_seconds=100, min_decisions=10)
    v = view()
    exposure.record("a", v, np.array([0] * 10))
    exposure.rotate(0.0)
    exposure.rotate(50.0)  # the first half ends: counts move to "previous"
    exposure.record("a", v, np.array([1] * 10))
    assert exposure.summary(no_stats).top_share == 0.5
    exposure.rotate(100.0)  # the first half leaves the window
    assert exposure.summary(no_stats).top_share == 1.0
    exposure.rotate(150.0)
    exposure.rotate(200.0)
    assert math.isnan(exposure.summary(no_stats).top_share)
    assert exposure.summary(no_stats).learning == 0  # forgotten


def test_a_changed_catalog_restarts_the_account() -> None:
    exposure = Exposure(min_decisions=1)
    exposure.record("a", view(3), np.array([0, 0, 0]))
    exposure.record("a", view(4), np.array([3]))
    assert exposure.summary(no_stats).top_share == 1.0


def test_learning_creatives_are_candidates_below_the_threshold() -> None:
    v = view(creatives=4, threshold=100)
    counts = {"c0": Counts(sends=100), "c1": Counts(sends=99), "c3": Counts(sends=500)}
    stats = AccountStats(MappingProxyType(counts))
    assert learning_creatives(v, stats) == 2  # c1 (99) and c2 (none)
    assert learning_creatives(v, None) == 4


def test_refresh_sets_every_gauge() -> None:
    metrics = Metrics()
    observer = DecisionMetrics(metrics, Exposure(min_decisions=1))
    observer.exposure.record("a", view(), np.array([0, 0, 1, 2]))
    stats: Callable[[str], AccountStats | None] = no_stats
    observer.refresh(0.0, stats)
    assert value(metrics.top_creative_share) == 0.5
    assert 0 < value(metrics.exposure_entropy_ratio) < 1
    assert value(metrics.exposure_accounts, "diverse") == 1
    assert value(metrics.exposure_accounts, "dominated") == 0
    assert value(metrics.learning_pool_size) == 3


async def test_the_selection_service_counts_each_decision_once() -> None:
    metrics = Metrics()
    service = SelectionService(
        catalog=Catalogs(catalog_table().get).get,
        stats={}.get,
        cooldowns=MemoryCooldowns(),
        metrics=metrics,
        responses_topic="selection-responses",
        dead_letters_topic="dead-letters",
        seed=3,
        clock=lambda: 1000.0,
    )
    batch = [record(request(i), "selection-requests", i) for i in range(500)]
    answers = [orjson.loads(o.value) for o in await service.answer(batch)]
    tally = Counter((a["method"], a["arm"], a["pool"]) for a in answers)
    assert sum(tally.values()) == 500
    for (method, arm, pool), n in tally.items():
        assert value(metrics.decisions, method, arm, pool) == n
    (family,) = [f for f in metrics.registry.collect() if f.name.endswith("decisions")]
    assert sum(s.value for s in family.samples if s.name.endswith("_total")) == 500


@pytest.mark.parametrize("cooldown", [0, 3600])
def test_decisions_counted_one_by_one_count_as_the_batch_does(cooldown: int) -> None:
    """`observe_each` on a batch's decisions gives `observe`'s counters and exposure."""
    doc = {**TWO_CAMPAIGNS, "settings": {**TWO_CAMPAIGNS["settings"], "cooldown_seconds": cooldown}}
    selector = Selector(account_from_dict(doc))
    campaigns = ["k", "q"] * 300
    recent = [{"c0": 4.0, "c1": 4.0, "c2": 4.0} if i % 5 == 0 else {} for i in range(600)]
    batch = RequestBatch.from_columns(
        campaigns, [f"u{i}" for i in range(600)], np.full(600, 5.0), recent
    )
    decision = selector.decide_batch(AccountStats(), batch, np.random.default_rng(1))
    together, each = Metrics(), Metrics()
    by_batch, one_by_one = DecisionMetrics(together), DecisionMetrics(each)
    by_batch.observe("acme", selector.view, batch, decision)
    one_by_one.observe_each("acme", selector.view, campaigns, decision.decisions())

    def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in (metrics.decisions, metrics.fallbacks, metrics.decisions_expected_control):
            for metric in family.collect():
                for s in metric.samples:
                    if not s.name.endswith("_created"):
                        out[s.name, tuple(sorted(s.labels.items()))] = round(s.value, 9)
        return out

    assert samples(each) == samples(together)
    assert len(samples(together)) >= 3
    counts = {a: e.current.tolist() for a, e in one_by_one.exposure._accounts.items()}
    assert counts == {a: e.current.tolist() for a, e in by_batch.exposure._accounts.items()}
    assert sum(counts["acme"]) == sum(d.arm == "automated" for d in decision.decisions()) > 0
