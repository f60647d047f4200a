"""The scalar single-request path agrees with the batch path."""

from __future__ import annotations

import numpy as np
import pytest

from selector import Request, RequestBatch, Selector, account_from_dict
from selector.hashing import pair_keys, route_units, split_units
from selector.single import _ROUTE, _SPLIT, _unit
from tests.conftest import make_account_dict, stats_from

GRADUATED = {f"cr{i}": (5000, 400 + 60 * i, 40 + 5 * i, (40 + 5 * i) * 30.0) for i in range(4)}


def test_the_scalar_hash_is_the_vectorised_one_bit_for_bit() -> None:
    contacts = [f"contact-{i}" for i in range(500)]
    keys = pair_keys(["camp-1"] * 500, contacts)
    split = [_unit(int(k), _SPLIT) for k in keys]
    route = [_unit(int(k), _ROUTE) for k in keys]
    assert split == split_units(keys).tolist()
    assert route == route_units(keys).tolist()


@pytest.mark.parametrize("goal", ["clicks", "revenue"])
def test_single_decisions_match_the_batch_arm_method_and_exact_propensity(goal: str) -> None:
    doc = make_account_dict(
        settings={"goal": goal, "methods": {"thompson_single_step": 70, "random": 30}}
    )
    selector = Selector(account_from_dict(doc))
    stats = stats_from(GRADUATED)
    rng = np.random.default_rng(3)
    cooling = [{}, {"cr1": 990.0}, {"cr0": 990.0, "cr3": 995.0}]
    requests = [Request("camp-1", f"c{i}", 1000.0, cooling[i % 3]) for i in range(300)]
    batch = selector.decide_batch(stats, RequestBatch.from_requests(requests), rng)
    for request, expected in zip(requests, batch.decisions(), strict=True):
        single = selector.decide(stats, request, rng)
        assert (single.arm, single.method) == (expected.arm, expected.method)
        if single.arm == "control":  # the control ignores cooldowns, as in the batch path
            assert (single.creative_id, single.propensity) == ("cr0", 1.0)
            continue
        dist = selector.distribution(stats, request, rng)
        assert single.propensity == pytest.approx(dist[single.creative_id], rel=1e-12)
        assert single.creative_id not in request.last_sent


def test_nothing_eligible_falls_back_with_the_reason() -> None:
    selector = Selector(account_from_dict(make_account_dict(automated_percent=100)))
    everything = {f"cr{i}": 999.0 for i in range(4)}
    d = selector.decide(stats_from(GRADUATED), Request("camp-1", "c", 1000.0, everything),
                        np.random.default_rng(0))  # fmt: skip
    assert (d.pool, d.reason, d.creative_id, d.propensity) == (
        "fallback", "all_in_cooldown", "cr0", 1.0,
    )  # fmt: skip


def test_decide_each_is_single_decisions_or_none_for_the_batch_path() -> None:
    doc = make_account_dict(settings={"methods": {"thompson_single_step": 70, "random": 30}})
    selector = Selector(account_from_dict(doc))
    stats = stats_from(GRADUATED)
    requests = [
        Request("camp-1", f"c{i}", 1000.0, {"cr1": 990.0} if i % 2 else {}) for i in range(40)
    ]
    each = selector.decide_each(stats, requests, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    assert each is not None
    assert each == [selector.decide(stats, r, rng) for r in requests]
    # nothing eligible for one of them: the batch path decides them all (it names the reason)
    everything = {f"cr{i}": 999.0 for i in range(4)}
    blocked = [*requests[:3], Request("camp-1", "c-x", 1000.0, everything)]
    assert selector.decide_each(stats, blocked[:3], np.random.default_rng(0)) is not None
    assert selector.decide_each(stats, blocked, np.random.default_rng(0)) is None
