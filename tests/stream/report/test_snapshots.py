"""Parameter snapshots as the counterfactual target: posteriors from the snapshot and
the catalog, thompson_single_step's probabilities at each snapshot's time."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest

from selector.domain import Account, BetaPrior, Creative, Offer, SelectionSettings
from stream.report.snapshots import posteriors_of, timed_snapshots
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
