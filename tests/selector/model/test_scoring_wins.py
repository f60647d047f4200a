"""Win shares: counted from the draws' maxima, they equal argmax's counts exactly, ties,
zeros, ineligible creatives and NaN scores included; the scores are the model's
revenue per send (or logits) under the picked draws, whatever the creatives' order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from selector import account_from_dict
from selector.model import scoring
from selector.model.predict import catalog_for
from selector.model.profile import EMPTY, add_event
from selector.model.record import records_of
from tests.selector.model.conftest import Trained, account_doc


def argmax_shares(scores: Any, eligible: Any) -> Any:
    """The definition: per draw, the first eligible creative with the highest score (an
    ineligible one's score is -inf added, so a NaN stays NaN, which argmax takes)."""
    masked = scores + np.where(eligible, 0.0, -np.inf)[:, :, None]
    n, k, s = scores.shape
    shares = np.zeros((n, k))
    first = np.argmax(masked, axis=1)
    for i in range(n):
        if eligible[i].any():
            shares[i] = np.bincount(first[i], minlength=k) / s
    return shares


@pytest.mark.parametrize("seed", range(5))
def test_counted_wins_equal_argmax_with_ties_and_nan(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    n, k, s = 60, 7, 64
    order = rng.permutation(k)
    scores = rng.integers(0, 4, (n, k, s)).astype(np.float32)  # many ties
    scores[rng.random((n, k, s)) < 0.2] = 0.0
    scores[:20] = rng.standard_normal((20, k, s)).astype(np.float32)  # rows without ties
    scores[3, 2, 5] = np.nan
    scores[7, :, 9] = np.nan
    eligible = rng.random((n, k)) < 0.7
    eligible[:3] = True
    eligible[5] = False
    monkeypatch.setattr(scoring, "_ordered_scores", lambda *a: scores[:, order, :].copy())
    catalog: Any = SimpleNamespace(order=order)
    got = scoring.win_shares(catalog, None, None, eligible, "revenue", s, rng)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, argmax_shares(scores, eligible))
    assert got[[0, 1, 2, 8]].sum(axis=1) == pytest.approx(1.0) and not got[5].any()


def revenue_account() -> Any:
    doc = account_doc()
    doc["offers"].append({"offer_id": "o3", "payout": 3, "payout_type": "cto"})
    doc["creatives"][1:1] = [{"creative_id": "poll", "offer_id": "o3"}]
    doc["creatives"].append({"creative_id": "fresh", "offer_id": "o2"})
    return account_from_dict(doc)


@pytest.mark.parametrize("goal", ["revenue", "clicks"])
def test_scores_are_the_models_under_the_picked_draws(trained: Trained, goal: str) -> None:
    account = revenue_account()
    catalog = catalog_for(account, trained.model)
    assert catalog.per_click.tolist() == [False, True, False, False, False]
    clicked = add_event(add_event(EMPTY, "click", "deal", 10.0, 0), "click", "poll", 20.0, 0)
    profiles = records_of([clicked.with_custom((1.0,)), EMPTY.with_custom((0.0,)), clicked])
    x, pair = catalog.inputs(profiles, np.full(3, 100.0))
    assert pair.any()
    s = 16
    got = scoring.sampled_scores(catalog, x, pair, goal, s, np.random.default_rng(3))
    # the same draws, by hand, in float64, from the catalog's own pools
    rng = np.random.default_rng(3)
    inverse = np.argsort(catalog.order)
    pools = [catalog.click_pool] + ([catalog.conversion_pool] if goal == "revenue" else [])
    logits = []
    for pool in pools:
        at = int(rng.integers(0, scoring.POOL - s + 1))
        m = pool.m[:, :, at : at + s].astype(float)  # P x K' x S, internal order
        b = pool.beta[:, :, at : at + s].astype(float)  # P x Q x S
        kk = m.shape[1]
        ordered_pair = pair[:, catalog.order[:kk], :]
        logits.append(
            np.einsum("np,pks->nks", x, m) + np.einsum("nkq,pqs,np->nks", ordered_pair, b, x)
        )
    if goal == "clicks":
        want = logits[0][:, inverse, :]
    else:
        click = 1 / (1 + np.exp(-logits[0]))
        conv = np.ones_like(click)
        conv[:, : catalog.converting] = 1 / (1 + np.exp(-logits[1]))
        want = (catalog.value[catalog.order][:, None] * click * conv)[:, inverse, :]
    assert got.shape == (3, 5, s)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-5)


def test_win_shares_are_argmax_over_the_sampled_scores(trained: Trained) -> None:
    catalog = catalog_for(revenue_account(), trained.model)
    profiles = records_of([None] * 40)
    x, pair = catalog.inputs(profiles, np.full(40, 100.0))
    eligible = np.random.default_rng(1).random((40, 5)) < 0.6
    got = scoring.win_shares(catalog, x, pair, eligible, "revenue", 64, np.random.default_rng(5))
    scores = scoring.sampled_scores(catalog, x, pair, "revenue", 64, np.random.default_rng(5))
    np.testing.assert_array_equal(got, argmax_shares(scores, eligible))
