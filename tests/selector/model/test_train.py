"""Examples from events (point in time, attribution) and what training learns."""

from __future__ import annotations

import numpy as np

from selector import account_from_dict
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.features import BASE_FEATURES
from selector.model.metrics import gate
from selector.model.scoring import Catalog
from selector.model.train import evaluate_model, predicted, train
from tests.selector.model.conftest import CREATIVES, FIELDS, RATES, Trained, account_doc

ACCOUNT = account_from_dict(account_doc())
CLICKS = BASE_FEATURES.index("log_clicks")


def examples(events: list[OutcomeEvent], cutoff: float = 1e9, window: float = 3600.0):  # type: ignore[no-untyped-def]
    return examples_from_events(ACCOUNT, events, (), 1e9, window, cutoff)


def test_a_send_sees_only_the_clicks_before_it() -> None:
    ex = examples([
        OutcomeEvent("send", "s1", "u", "deal", 0.0),
        OutcomeEvent("click", "k1", "u", "deal", 50.0, 0, "s1"),
        OutcomeEvent("send", "s2", "u", "deal", 50.0),  # the click's own second: not before
        OutcomeEvent("send", "s3", "u", "basic", 100.0),
    ])  # fmt: skip
    np.testing.assert_allclose(ex.raw[:, CLICKS], np.log1p([0, 0, 1]))
    assert ex.clicked.tolist() == [1, 0, 0]
    assert ex.pair.tolist() == [[0, 0], [0, 0], [0, 1]]  # basic shares deal's offer


def test_attribution_by_send_id_then_by_latest_send_within_the_window() -> None:
    ex = examples([
        OutcomeEvent("send", "s1", "u", "deal", 0.0),
        OutcomeEvent("send", "s2", "u", "deal", 10.0),
        OutcomeEvent("click", "k1", "u", "deal", 20.0, 0, "s1"),       # named: s1
        OutcomeEvent("click", "k2", "u", "deal", 30.0),                 # latest: s2
        OutcomeEvent("conversion", "v1", "u", "deal", 40.0, 5_000_000),  # latest: s2
        OutcomeEvent("conversion", "v1", "u", "deal", 41.0, 5_000_000),  # duplicate id
        OutcomeEvent("send", "s3", "u", "premium", 50.0),
        OutcomeEvent("click", "k3", "u", "premium", 50.0 + 7200.0),      # outside the window
    ])  # fmt: skip
    assert ex.clicked.tolist() == [1, 1, 0]
    assert ex.converted.tolist() == [0, 1, 0]
    assert ex.revenue.tolist() == [0, 5.0, 0]


def test_only_matured_sends_are_examples() -> None:
    events = [OutcomeEvent("send", f"s{i}", "u", "deal", 1000.0 * i) for i in range(10)]
    assert len(examples(events, cutoff=9000.0, window=3600.0)) == 6  # sends at 0-5000 s


def test_training_learns_which_plan_prefers_which_creative(trained: Trained) -> None:
    m, account, ex = trained.model, trained.account, trained.holdout
    p_click, _ = predicted(m, account, ex)
    pro = ex.raw[:, -1] > 0.5
    for plan, rates in (("free", RATES["free"]), ("pro", RATES["pro"])):
        rows = pro if plan == "pro" else ~pro
        codes = [ex.creative_ids.index(c) for c in CREATIVES]
        mean = [p_click[rows & (ex.creative == k)].mean() for k in codes]
        np.testing.assert_allclose(mean, rates, atol=0.02)  # ~2,000 sends per cell
    held = m.metrics["holdout"]
    assert held["normalized_entropy"] < 0.97 and 0.9 < held["calibration"] < 1.1
    assert held["log_loss"] < m.metrics["per_creative_beta_log_loss"]
    top3 = [name for name, _ in m.metrics["importances"][:3]]
    assert {"plan=free", "plan=pro"} <= set(top3)  # history features carry the plan too
    assert len(m.metrics["importances"]) == 10
    assert m.metrics["training_sends"] + len(trained.holdout) == len(trained.examples)
    assert evaluate_model(m, account, trained.holdout).to_dict().items() <= held.items()
    assert (held["by"], held["fraction"]) == ("contacts", 0.1)


def test_a_new_creative_starts_from_its_offers_prediction(trained: Trained) -> None:
    m = trained.model
    ids = ("deal", "premium", "basic", "newcomer")
    catalog = Catalog.of(m, ids, ("o1", "o2", "o1", "o1"), np.full(4, 20.0), np.zeros(4, bool), 1.0)
    free = trained.holdout.raw[trained.holdout.raw[:, -1] < 0.5][:500]
    x = m.spec.standardize(free)
    p = 1 / (1 + np.exp(-catalog.mean_logits(m.click, x, np.zeros((x.shape[0], 4, 2)))))
    rate = p.mean(axis=0)
    low, high = sorted(rate[[0, 2]])  # o1's known creatives: deal 0.20, basic 0.10
    assert low - 0.02 < rate[3] < high + 0.02


def test_a_better_candidate_passes_the_gate_and_a_worse_one_does_not(trained: Trained) -> None:
    account, ex = trained.account, trained.examples
    small, _ = train(account, ex.take(np.arange(600)), FIELDS, 1e9, 4, 0.0)
    current = evaluate_model(small, account, trained.holdout)
    candidate = evaluate_model(trained.model, account, trained.holdout)
    assert gate(candidate, current).reason == "better"
    assert not gate(current, candidate).promote


def test_the_contact_holdout_keeps_every_send_of_a_fixed_share_of_contacts(
    trained: Trained,
) -> None:
    fit_rows, held = trained.examples.split_contacts(0.1)
    assert not set(fit_rows.contact.tolist()) & set(held.contact.tolist())
    share = len(set(held.contact.tolist())) / len(set(trained.examples.contact.tolist()))
    assert 0.07 < share < 0.13  # 4,000 contacts
    again, _ = trained.examples.split_contacts(0.1)
    assert np.array_equal(again.contact, fit_rows.contact)
