"""One contract, every policy: found by introspection, checked the same way.

Each policy is exercised through `Selector` with 100% of an automated campaign routed to
it, so the checks cover the public path users call.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

import selector.policies as policies_pkg
from selector import AccountStats, Request, RequestBatch, Selector, account_from_dict
from selector.batch import POOLS, REASONS
from selector.policies import POLICIES, Policy
from tests.conftest import make_account_dict, stats_from


def discovered_policies() -> set[type[Policy]]:
    found: set[type[Policy]] = set()
    for info in pkgutil.iter_modules(policies_pkg.__path__):
        module = importlib.import_module(f"selector.policies.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Policy) and not inspect.isabstract(obj):
                found.add(obj)
    return found


def test_every_policy_is_registered_under_its_name() -> None:
    found = discovered_policies()
    assert found == set(POLICIES.values())
    assert all(POLICIES[cls.name] is cls for cls in found)


NAMES = sorted(POLICIES)
GRADUATED = {f"cr{i}": (5000, 400 + 60 * i, 40 + 5 * i, (40 + 5 * i) * 30.0) for i in range(4)}


def selector_for(name: str, **settings: Any) -> Selector:
    doc = make_account_dict(
        creatives=4,
        settings={"methods": {name: 100}, **settings},
        automated_percent=100,
    )
    return Selector(account_from_dict(doc), propensity_samples=4000)


def batch(n: int, last_sent: list[dict[str, float]] | None = None) -> RequestBatch:
    return RequestBatch.from_columns(
        ["camp-1"] * n, [f"contact-{i}" for i in range(n)], np.full(n, 1_000.0), last_sent
    )


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_decisions(name: str) -> None:
    sel, stats, b = selector_for(name), stats_from(GRADUATED), batch(300)
    first = sel.decide_batch(stats, b, np.random.default_rng(11))
    second = sel.decide_batch(stats, b, np.random.default_rng(11))
    assert np.array_equal(first.creative, second.creative)
    assert np.array_equal(first.propensity, second.propensity)
    assert all(first.method == first.method[0])


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_mutated(name: str) -> None:
    sel, stats = selector_for(name), stats_from(GRADUATED)
    b = batch(50, [{"cr1": 990.0}] * 50)
    before = (
        dict(stats.counts),
        stats.version,
        b.keys.copy(),
        b.times.copy(),
        dict(b.last_sent[0]),
    )  # type: ignore[index]
    rotation = MappingProxyType({"camp-1": 1})
    sel.decide_batch(stats, b, np.random.default_rng(1), rotation)
    after = (dict(stats.counts), stats.version, b.keys, b.times, dict(b.last_sent[0]))  # type: ignore[index]
    assert before[0] == after[0] and before[1] == after[1] and before[4] == after[4]
    assert np.array_equal(before[2], after[2]) and np.array_equal(before[3], after[3])
    assert rotation == {"camp-1": 1}
    assert not sel.view.candidate.flags.writeable


@pytest.mark.parametrize("name", NAMES)
def test_zero_eligible_answers_the_default_creative_and_says_why(name: str) -> None:
    sel, stats = selector_for(name), stats_from(GRADUATED)
    everything = {f"cr{i}": 999.0 for i in range(4)}
    result = sel.decide_batch(stats, batch(20, [everything] * 20), np.random.default_rng(2))
    assert set(result.creative) == {0}
    assert {POOLS[p] for p in result.pool} == {"fallback"}
    assert {REASONS[r] for r in result.reason} == {"all_in_cooldown"}
    assert np.all(result.propensity == 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_no_candidates_at_all_is_a_named_fallback(name: str) -> None:
    doc = make_account_dict(creatives=2, settings={"methods": {name: 100}}, automated_percent=100)
    for creative in doc["creatives"]:
        creative["status"] = "paused"
    sel = Selector(account_from_dict(doc))
    result = sel.decide_batch(AccountStats(), batch(5), np.random.default_rng(3))
    assert {REASONS[r] for r in result.reason} == {"no_candidates"}
    assert {POOLS[p] for p in result.pool} == {"fallback"}


@pytest.mark.parametrize("name", NAMES)
def test_one_eligible_creative_is_chosen_with_propensity_one(name: str) -> None:
    sel, stats = selector_for(name), stats_from(GRADUATED)
    others = {"cr0": 999.0, "cr1": 999.0, "cr3": 999.0}
    result = sel.decide_batch(stats, batch(40, [others] * 40), np.random.default_rng(4))
    assert set(result.creative) == {2}
    assert np.allclose(result.propensity, 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_ties_are_broken_evenly(name: str) -> None:
    same = {f"cr{i}": (5000, 500, 50, 1500.0) for i in range(4)}
    sel = selector_for(name)
    # only creatives 0 and 2 (same offer, identical posteriors) are eligible
    cooling = [{"cr1": 999.0, "cr3": 999.0}] * 4000
    result = sel.decide_batch(stats_from(same), batch(4000, cooling), np.random.default_rng(5))
    share = np.mean(result.creative == 0)
    if name == "manual" and sel.view.round_robin[0]:
        pytest.fail("contract campaign must rotate randomly")
    assert 0.45 < share < 0.55
    assert set(result.creative) == {0, 2}


@pytest.mark.parametrize("name", NAMES)
def test_propensities_are_probabilities_that_sum_to_one(name: str) -> None:
    sel, stats = selector_for(name), stats_from(GRADUATED)
    rng = np.random.default_rng(6)
    dist = sel.distribution(stats, Request("camp-1", "contact-1", 1_000.0), rng)
    assert abs(sum(dist.values()) - 1.0) < 1e-9
    assert all(0.0 < p <= 1.0 for p in dist.values())
    result = sel.decide_batch(stats, batch(500), rng)
    assert np.all((result.propensity > 0) & (result.propensity <= 1))
    for i in range(0, 500, 50):
        d = result[i]
        assert abs(dist.get(d.creative_id, 0.0) - d.propensity) < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_choices_follow_the_reported_distribution(name: str) -> None:
    sel, stats = selector_for(name), stats_from(GRADUATED)
    rng = np.random.default_rng(7)
    dist = sel.distribution(stats, Request("camp-1", "contact-1", 1_000.0), rng)
    result = sel.decide_batch(stats, batch(20_000), rng)
    observed = np.bincount(result.creative, minlength=4) / 20_000
    for i, cid in enumerate(sel.view.creative_ids):
        assert abs(observed[i] - dist.get(cid, 0.0)) < 0.02
