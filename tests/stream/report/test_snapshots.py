"""Parameter snapshots as the counterfactual target: posteriors from the snapshot and
the catalog, thompson_single_step's probabilities at each snapshot's time."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest

from selector.domain import Account, BetaPrior, Creative, Offer, SelectionSettings
from stream.handlers.catalog import AccountCatalog
from stream.report.snapshots import (
    account_snapshots,
    posteriors_of,
    timed_in_force,
    timed_snapshots,
)
from stream.wire.messages import CreativeParams, ParamsSnapshot

SETTINGS = SelectionSettings(goal="clicks", learning_threshold=100, learning_pct=20.0)
ACCOUNT = Account(
    "a",
    SETTINGS,
    (Offer("o1", 30.0), Offer("o2", 5.0, "cto")),
    (Creative("x", "o1"), Creative("y", "o2"), Creative("z", "o1", status="paused")),
)


def snapshot(at: float, x: tuple[float, float, int], y: tuple[float, float, int]) -> ParamsSnapshot:
    def params(offer: str, a: float, b: float, sends: int) -> CreativeParams:
        return CreativeParams(offer, sends, 0, 0, 0.0, a, b, 2.0, 3.0)

    creatives = {"x": params("o1", *x), "y": params("o2", *y)}
    return ParamsSnapshot("a", 1, at, BetaPrior(1.0, 1.0), MappingProxyType(creatives), {})


def test_posteriors_take_the_snapshot_the_prior_and_the_catalog() -> None:
    post = posteriors_of(ACCOUNT, [snapshot(10.0, (50.0, 950.0, 1000), (5.0, 20.0, 20))])
    assert post.ctr_alpha.tolist() == [[50.0, 5.0, 1.0]]  # z is not in the snapshot: prior
    assert post.cvr_beta.tolist() == [[3.0, 3.0, 1.0]]
    assert post.value.tolist() == [30.0, 20.0, 30.0]  # the payout floor (20) applies
    assert post.per_click.tolist() == [False, True, False]
    assert post.allowed.tolist() == [[True, True, False]]  # z is paused
    assert post.learning.tolist() == [[False, True, True]]
    assert post.learning_share == pytest.approx(0.2) and post.goal == "clicks"


def test_probabilities_by_time_with_the_learning_share() -> None:
    early = snapshot(10.0, (900.0, 100.0, 1000), (1.0, 1.0, 20))  # y learning
    late = snapshot(99.0, (10.0, 990.0, 1000), (900.0, 100.0, 1000))  # y graded, better
    timed = timed_snapshots(ACCOUNT, [late, early], np.random.default_rng(0), draws=2000)
    assert timed.times == (10.0, 99.0) and timed.creative_ids == ("x", "y", "z")
    assert timed.probabilities[0].tolist() == pytest.approx([0.8, 0.2, 0.0])
    assert timed.probabilities[1].tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_no_snapshot_gives_an_empty_history() -> None:
    timed = timed_snapshots(ACCOUNT, [], np.random.default_rng(0))
    assert timed.times == () and timed.probabilities.shape == (0, 3)


# the catalog of later: y paused, a new creative w of o1
LATER = replace(
    ACCOUNT,
    creatives=(Creative("x", "o1"), Creative("y", "o2", status="paused"), Creative("w", "o1")),
)


def test_each_snapshot_is_read_against_the_catalog_in_force_at_its_time() -> None:
    early = snapshot(10.0, (900.0, 100.0, 1000), (1.0, 1.0, 20))
    late = snapshot(99.0, (10.0, 990.0, 1000), (900.0, 100.0, 1000))
    versions = [(0.0, ACCOUNT), (50.0, LATER)]
    timed = timed_in_force(versions, [late, early], np.random.default_rng(0), draws=2000)
    rng = np.random.default_rng(0)
    first = timed_snapshots(ACCOUNT, [early], rng, draws=2000)
    second = timed_snapshots(LATER, [late], rng, draws=2000)
    assert timed.times == (10.0, 99.0) and timed.creative_ids == ("x", "y", "z", "w")
    assert timed.probabilities[0].tolist() == [*first.probabilities[0].tolist(), 0.0]
    x, y, w = second.probabilities[0].tolist()
    assert timed.probabilities[1].tolist() == [x, y, 0.0, w]
    assert y == 0.0 and w == pytest.approx(0.2)  # y paused by then; w new: the learning share


def test_one_catalog_in_force_gives_the_snapshots_of_that_catalog() -> None:
    snaps = [snapshot(10.0, (900.0, 100.0, 1000), (1.0, 1.0, 20))]
    # before every version held: the oldest one
    got = timed_in_force([(50.0, ACCOUNT), (60.0, LATER)], snaps, np.random.default_rng(3))
    want = timed_snapshots(ACCOUNT, snaps, np.random.default_rng(3))
    assert got.creative_ids == want.creative_ids
    assert got.probabilities.tolist() == want.probabilities.tolist()
    none = timed_in_force([(0.0, ACCOUNT), (5.0, LATER)], [], np.random.default_rng(0))
    assert none.times == () and none.creative_ids == ("x", "y", "w")


def _catalog(account: Account | None) -> AccountCatalog:
    return AccountCatalog("a", 1, frozenset(), None, {}, account, None, None)


def test_account_snapshots_take_the_valid_versions_of_the_history() -> None:
    snaps = {"a": [snapshot(10.0, (900.0, 100.0, 1000), (1.0, 1.0, 20)),
                   snapshot(99.0, (10.0, 990.0, 1000), (900.0, 100.0, 1000))]}  # fmt: skip
    history = {"a": [(0.0, _catalog(None)), (1.0, _catalog(ACCOUNT)), (50.0, _catalog(None)),
                     (60.0, _catalog(LATER))]}  # fmt: skip
    catalogs = {"a": _catalog(LATER), "b": _catalog(None)}
    got = account_snapshots(catalogs, snaps, np.random.default_rng(0), history)
    want = timed_in_force([(1.0, ACCOUNT), (60.0, LATER)], snaps["a"], np.random.default_rng(0))
    assert set(got) == {"a"} and got["a"].creative_ids == want.creative_ids
    assert got["a"].probabilities.tolist() == want.probabilities.tolist()
    now = account_snapshots(catalogs, snaps, np.random.default_rng(0))["a"]
    assert now.creative_ids == ("x", "y", "w")  # without a history: the catalog of now
