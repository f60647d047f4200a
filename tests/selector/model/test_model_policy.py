"""The `model` method: contextual Thompson sampling with a model, the account's Thompson
method without one, the same cooldown / learning pool / control rules as the others."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector import AccountStats, Request, RequestBatch, Selector, account_from_dict
from selector.batch import POOLS, REASONS
from selector.model.profile import EMPTY
from selector.model.record import records_of
from selector.policies.model import ModelPolicy
from tests.conftest import stats_from
from tests.selector.model.conftest import Trained, account_doc

GRADUATED = stats_from({c: (5000, 500, 50, 1000.0) for c in ("deal", "premium", "basic")})


def selector(samples: int = 64, **settings: Any) -> Selector:
    doc = account_doc(methods={"model": 100}, **settings)
    return Selector(account_from_dict(doc), model_samples=samples)


def batch(plans: list[int | None], last_sent: list[dict[str, float]] | None = None) -> RequestBatch:
    profiles = [EMPTY.with_custom((float(p),)) if p is not None else EMPTY for p in plans]
    n = len(plans)
    return RequestBatch.from_columns(
        ["camp"] * n, [f"c{i}" for i in range(n)], np.full(n, 2e6), last_sent, records_of(profiles)
    )


def test_each_plan_mostly_gets_its_own_favourite(trained: Trained) -> None:
    d = selector().decide_batch(GRADUATED, batch([0] * 500 + [1] * 500), np.random.default_rng(1),
                                model=trained.model)  # fmt: skip
    free, pro = d.creative[:500], d.creative[500:]
    assert np.mean(free == 0) > 0.9 and np.mean(pro == 1) > 0.9
    assert {REASONS[r] for r in d.reason} == {"none"} and {POOLS[p] for p in d.pool} == {"scored"}
    assert d[0].model_version == trained.model.version == 3 and d.modelled().all()


def test_same_seed_same_decisions(trained: Trained) -> None:
    sel, b = selector(), batch([0, 1, None] * 100)
    first = sel.decide_batch(GRADUATED, b, np.random.default_rng(5), model=trained.model)
    second = sel.decide_batch(GRADUATED, b, np.random.default_rng(5), model=trained.model)
    assert np.array_equal(first.creative, second.creative)
    assert np.array_equal(first.propensity, second.propensity)


def test_choices_follow_the_logged_propensities(trained: Trained) -> None:
    # identical contacts share the batch's draws, so their choice frequencies must match
    # the (identical) propensities logged for each creative
    d = selector().decide_batch(GRADUATED, batch([None] * 20_000), np.random.default_rng(2),
                                model=trained.model)  # fmt: skip
    for k in range(3):
        chosen = d.creative == k
        if chosen.any():
            logged = d.propensity[chosen]
            assert np.ptp(logged) < 1e-12
            assert abs(chosen.mean() - logged[0]) < 0.015
    assert np.all((d.propensity > 0) & (d.propensity <= 1))


def test_the_distribution_sums_to_one_and_matches_the_choices(trained: Trained) -> None:
    # the batch's 1,024 draws and the distribution's own each err by < 0.5 / sqrt(1024)
    sel = selector(samples=1024)
    rng = np.random.default_rng(4)
    request = Request("camp", "c0", 2e6)
    dist = sel.distribution(GRADUATED, request, rng, model=trained.model)
    assert abs(sum(dist.values()) - 1.0) < 1e-9
    d = sel.decide_batch(GRADUATED, batch([None] * 5000), rng, model=trained.model)
    for i, cid in enumerate(sel.view.creative_ids):
        assert abs(np.mean(d.creative == i) - dist.get(cid, 0.0)) < 0.05


def test_cooldowns_are_respected(trained: Trained) -> None:
    cooling = [{"deal": 2e6 - 10.0}] * 300
    d = selector().decide_batch(GRADUATED, batch([0] * 300, cooling), np.random.default_rng(3),
                                model=trained.model)  # fmt: skip
    assert not (d.creative == 0).any()
    everything = [{"deal": 2e6, "premium": 2e6, "basic": 2e6}] * 5
    d = selector().decide_batch(GRADUATED, batch([0] * 5, everything), np.random.default_rng(3),
                                model=trained.model)  # fmt: skip
    assert {REASONS[r] for r in d.reason} == {"all_in_cooldown"}


@pytest.mark.parametrize("mode", ["pool", "floor", "compete"])
def test_the_learning_mode_applies(trained: Trained, mode: str) -> None:
    # "basic" is learning (no sends); plan=pro contacts prefer "premium" by far
    stats = stats_from({"deal": (5000, 500, 50, 1000.0), "premium": (5000, 400, 40, 800.0)})
    sel = selector(learning_mode=mode)
    d = sel.decide_batch(stats, batch([1] * 10_000), np.random.default_rng(6), model=trained.model)
    learning = d.pool == POOLS.index("learning")
    assert set(d.creative[learning]) <= {2}
    if mode == "pool":  # exactly learning_pct (10%), uniform among learning creatives
        assert 0.09 < learning.mean() < 0.11
        np.testing.assert_allclose(d.propensity[learning], 0.1)
    elif mode == "floor":  # at least learning_pct
        assert learning.mean() > 0.09
    else:  # it competes on its own (shared) prediction, which loses for these contacts
        assert learning.mean() < 0.09


def test_without_profiles_contacts_are_scored_as_new(trained: Trained) -> None:
    n = 200
    plain = RequestBatch.from_columns(["camp"] * n, [f"c{i}" for i in range(n)], np.full(n, 2e6))
    sel = selector()
    d = sel.decide_batch(GRADUATED, plain, np.random.default_rng(7), model=trained.model)
    empty = batch([None] * n)
    e = sel.decide_batch(GRADUATED, empty, np.random.default_rng(7), model=trained.model)
    assert np.array_equal(d.creative, e.creative)


def test_a_creative_added_after_training_is_scored(trained: Trained) -> None:
    doc = account_doc(methods={"model": 100})
    doc["creatives"].append({"creative_id": "fresh", "offer_id": "o2"})
    sel = Selector(account_from_dict(doc))
    stats = stats_from({c: (5000, 500, 50, 1000.0) for c in ("deal", "premium", "basic", "fresh")})
    d = sel.decide_batch(stats, batch([1] * 2000), np.random.default_rng(8), model=trained.model)
    assert 0 < np.mean(d.creative == 3) < 0.9


@pytest.mark.parametrize(
    ("methods", "fallback"),
    [({"model": 50, "thompson_two_step": 50}, "thompson_two_step"),
     ({"model": 50, "thompson_single_step": 50}, "thompson_single_step"),
     ({"model": 100}, "thompson_single_step")],
)  # fmt: skip
def test_without_a_model_the_accounts_thompson_method_answers(
    methods: dict[str, float], fallback: str
) -> None:
    sel = Selector(account_from_dict(account_doc(methods=methods)))
    ctx = sel.context(AccountStats(), batch([0]))
    policy = ModelPolicy()
    assert policy.fallback(ctx).name == fallback
    d = selector().decide_batch(GRADUATED, batch([0] * 50), np.random.default_rng(9))
    assert {REASONS[r] for r in d.reason} == {"model_unavailable"}
    assert d[0].model_version is None and not d.modelled().any()


def test_the_fallback_decides_exactly_as_thompson_single_step() -> None:
    b = batch([0] * 300)
    model = selector().decide_batch(GRADUATED, b, np.random.default_rng(10))
    doc = account_doc(methods={"thompson_single_step": 100})
    plain = Selector(account_from_dict(doc))
    thompson = plain.decide_batch(GRADUATED, b, np.random.default_rng(10))
    assert np.array_equal(model.creative, thompson.creative)
    assert np.array_equal(model.propensity, thompson.propensity)
