"""Stats: exact additive counts, order-independent forgetting, merge and difference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector import AccountStats, Counts, Event, account_from_dict, fold
from selector.view import compile_account, posterior
from tests.conftest import make_account_dict

DAY = 86_400.0

events_strategy = st.lists(
    st.builds(
        Event,
        kind=st.sampled_from(["send", "click", "conversion"]),
        creative_id=st.sampled_from(["a", "b", "c"]),
        time=st.floats(0, 30 * DAY),
        revenue_micros=st.integers(0, 50_000_000),
    ),
    max_size=60,
)


def test_apply_counts_each_kind_into_its_own_field() -> None:
    s = fold(
        [
            Event("send", "a", 1.0),
            Event("send", "a", 2.0),
            Event("click", "a", 3.0),
            Event("conversion", "a", 4.0, 12_500_000),
        ]
    )
    assert s.creative("a") == Counts(sends=2, clicks=1, conversions=1, revenue_micros=12_500_000)
    assert s.creative("a").revenue == 12.5
    assert s.creative("missing") == Counts()
    assert s.version == 4


def test_apply_returns_a_new_value_and_leaves_the_old_one_alone() -> None:
    before = AccountStats()
    after = before.apply("send", "a", 1.0)
    assert before.creative("a").sends == 0 and after.creative("a").sends == 1
    with pytest.raises(TypeError):
        after.counts["a"] = Counts()  # type: ignore[index]


@settings(max_examples=60, deadline=None)
@given(events=events_strategy, data=st.data())
def test_counts_do_not_depend_on_arrival_order(events: list[Event], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    assert fold(events).same_counts(fold(shuffled))


@settings(max_examples=60, deadline=None)
@given(events=events_strategy, data=st.data())
def test_forgetting_does_not_depend_on_arrival_order(
    events: list[Event], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    start = AccountStats(half_life_seconds=7 * DAY)
    a, b = fold(events, start), fold(shuffled, start)
    for cid in set(a.decayed) | set(b.decayed):
        da, db = a.decayed[cid], b.decayed[cid]
        assert da.ref_time == db.ref_time
        for f in ("sends", "clicks", "conversions", "revenue"):
            assert getattr(da, f) == pytest.approx(getattr(db, f), rel=1e-9, abs=1e-9)


def test_forgetting_halves_weight_per_half_life() -> None:
    s = fold(
        [Event("send", "a", 0.0), Event("send", "a", 7 * DAY)],
        AccountStats(half_life_seconds=7 * DAY),
    )
    d = s.decayed["a"]
    assert d.ref_time == 7 * DAY
    assert d.sends == pytest.approx(1.5)  # 1 (now) + 0.5 (one half-life ago)
    assert s.creative("a").sends == 2  # raw counts stay exact for the learning threshold


def test_posterior_decays_to_decision_time() -> None:
    doc = make_account_dict(
        creatives=1, settings={"half_life_seconds": DAY, "prior": {"alpha": 1, "beta": 1}}
    )
    view = compile_account(account_from_dict(doc))
    s = fold(
        [Event("send", "cr0", 0.0)] * 4 + [Event("click", "cr0", 0.0)] * 2,
        AccountStats(half_life_seconds=DAY),
    )
    now = posterior(view, s, 0.0)
    later = posterior(view, s, DAY)
    assert now.ctr_alpha[0] == pytest.approx(3.0) and now.ctr_beta[0] == pytest.approx(3.0)
    assert later.ctr_alpha[0] == pytest.approx(2.0) and later.ctr_beta[0] == pytest.approx(2.0)
    assert later.raw_sends[0] == 4


@settings(max_examples=40, deadline=None)
@given(first=events_strategy, second=events_strategy)
def test_merge_adds_and_difference_undoes_it(first: list[Event], second: list[Event]) -> None:
    a, b = fold(first), fold(second)
    assert a.merge(b).same_counts(fold(first + second))
    assert a.merge(b).difference(b).same_counts(a)


def test_difference_is_the_correction_that_reconciles() -> None:
    truth = fold([Event("send", "a", 1.0)] * 5 + [Event("click", "a", 2.0)] * 2)
    streamed = fold([Event("send", "a", 1.0)] * 4 + [Event("click", "a", 2.0)] * 3)
    correction = truth.difference(streamed)
    assert correction.creative("a") == Counts(sends=1, clicks=-1)
    assert streamed.merge(correction).same_counts(truth)


def test_decayed_merge_with_forgetting_matches_a_single_fold() -> None:
    h = 3 * DAY
    e1 = [Event("send", "a", t * DAY) for t in range(5)]
    e2 = [Event("send", "a", t * DAY + 0.5) for t in range(3)]
    start = AccountStats(half_life_seconds=h)
    merged = fold(e1, start).merge(fold(e2, start)).decayed["a"]
    single = fold(e1 + e2, start).decayed["a"]
    assert merged.sends == pytest.approx(single.sends)
    assert merged.ref_time == single.ref_time
    assert np.isfinite(merged.sends)
