"""The model counterfactual on a synthetic log whose target is known exactly: a model
under which "deal" wins (nearly) every posterior draw for a contact without history (each
send here is its contact's first), so the target's value is deal's click rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector import Account
from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.live_match import REPORTED
from selector.live_model_ope import ModelEvidence, model_rows, sampled, send_profiles
from selector.live_ope import OpeOptions, account_ope
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent
from selector.model.predict import predictions
from selector.model.record import records
from tests.stream.model_fixtures import model_account, trained_model

World = tuple[Account, ContextualModel, np.ndarray[Any, Any], list[OutcomeEvent]]
CREATIVES = ("deal", "premium", "basic")
RATES = (0.25, 0.04, 0.10)
N = 3000


@pytest.fixture(scope="module")
def world() -> World:
    account = model_account("acct-m")
    model = trained_model(account)
    rng = np.random.default_rng(11)
    sends = np.zeros(N, dtype=REPORTED)
    events = []
    for i in range(N):
        contact, k, t = f"c{i}", int(rng.integers(3)), 1000.0 + 30.0 * i
        clicked = rng.random() < RATES[k]
        events.append(OutcomeEvent("send", f"s{i}", contact, CREATIVES[k], t))
        if clicked:
            events.append(OutcomeEvent("click", f"k{i}", contact, CREATIVES[k], t + 5, 0, f"s{i}"))
        sends[i] = (0, 0, k, hash(contact), t, ARMS.index("automated"),
                    DECIDED_BY.index("random"), POOLS.index("uniform"), 1 / 3, 1, int(clicked),
                    0, 0.0, t - 1.0, -1)  # fmt: skip
    return account, model, sends, events


def test_deal_wins_every_draw_by_an_independent_prediction(world: World) -> None:
    account, model, _, _ = world
    rows = predictions(account, model, records([None])[0], np.array([0.0]),
                       np.random.default_rng(0))[0]  # fmt: skip
    by = {p.creative_id: p for p in rows}
    assert by["deal"].revenue_low > max(by["premium"].revenue_high, by["basic"].revenue_high)


def test_ips_and_snips_cover_the_exact_value(world: World) -> None:
    account, model, sends, events = world
    evidence = ModelEvidence(account, ((0.0, model),), events)
    options = OpeOptions(goals={"acct-m": "clicks"}, models={"acct-m": evidence}, resamples=400)
    values = account_ope("acct-m", sends, CREATIVES, options, np.random.default_rng(5))
    value = next(v for v in values if v.policy == "model (versions)")
    assert value.coverage is not None and value.coverage.by_snapshot == N
    assert value.coverage.left_out == {} and value.unsupported_mass == 0.0
    for name in ("ips", "snips", "dr"):
        e = value.estimates[name]
        assert e.low <= RATES[0] <= e.high, (name, e)
        assert e.high - e.low < 0.1
    # the uniform policy's value is the mean rate, well below deal's
    uniform = next(v for v in values if v.policy == "uniform").estimates["snips"]
    assert uniform.high < RATES[0]


def test_target_rows_are_the_model_win_shares(world: World) -> None:
    account, model, sends, events = world
    rows = model_rows(
        ModelEvidence(account, ((0.0, model),), events), CREATIVES,
        action=sends["creative"].astype(np.intp), contact=sends["contact"], sent=sends["time"],
        decided=sends["decided"], rng=np.random.default_rng(1),
    )  # fmt: skip
    assert rows.target.shape == (N, 3)
    assert rows.target[:, 0].mean() > 0.99 and rows.target[:, 0].min() > 0.9
    assert np.allclose(rows.target.sum(axis=1), 1.0)


def test_rows_without_a_model_or_a_profile_are_left_out_by_reason(world: World) -> None:
    account, model, sends, events = world
    later = float(sends["decided"][1000])  # version recorded after the first 1000 decisions
    missing = {"s1500", "s1501"}
    kept_events = [e for e in events if e.event_id not in missing]
    rows = model_rows(
        ModelEvidence(account, ((later, model),), kept_events), CREATIVES,
        action=sends["creative"].astype(np.intp), contact=sends["contact"], sent=sends["time"],
        decided=sends["decided"], rng=np.random.default_rng(1),
    )  # fmt: skip
    assert rows.coverage.left_out == {"no_model": 1000, "no_profile": 2}
    assert rows.coverage.by_snapshot == N - 1002 == int(rows.kept.sum())
    assert rows.coverage.first_left_out == sends["decided"][0]
    assert rows.coverage.last_left_out == sends["decided"][1501]


def test_a_capped_log_is_a_uniform_sample_and_says_so(world: World) -> None:
    account, model, sends, events = world
    rows = model_rows(
        ModelEvidence(account, ((0.0, model),), events, cap=500), CREATIVES,
        action=sends["creative"].astype(np.intp), contact=sends["contact"], sent=sends["time"],
        decided=sends["decided"], rng=np.random.default_rng(1),
    )  # fmt: skip
    assert rows.coverage.by_snapshot == 500 and rows.coverage.sampled_from == N
    picks = sampled(N, 500, np.random.default_rng(2))
    assert picks.sum() == 500 and picks[: N // 2].sum() == pytest.approx(250, abs=60)


def test_a_profile_holds_only_the_events_before_its_send() -> None:
    events = [
        OutcomeEvent("send", "s1", "u", "deal", 10.0),
        OutcomeEvent("click", "k1", "u", "deal", 12.0, 0, "s1"),
        OutcomeEvent("send", "s2", "u", "deal", 20.0),
        OutcomeEvent("send", "s2", "u", "deal", 20.0),  # a duplicate counts once
        OutcomeEvent("send", "s3", "u", "basic", 30.0),
    ]
    wanted = {(hash("u"), "deal", 10.0), (hash("u"), "deal", 20.0), (hash("u"), "basic", 30.0)}
    found = send_profiles(events, wanted, 1e9)
    recs, _ = records([found[k] for k in sorted(wanted, key=lambda k: k[2])])
    assert recs["n_recent"].tolist() == [0, 2, 3]
