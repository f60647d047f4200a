"""The daily job's arithmetic: the tally is the fold, the diff names what differs, and the
correction turns the streamed value into the recomputed one."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selector.domain import BetaPrior
from selector.ingest import Ledger, apply_correction
from selector.reconcile import Tally, beta_means, correction, creative_drift, summarize
from selector.stats import AccountStats, Counts, Decayed, Event, fold
from selector.timing import Timing

HALF_LIFE = 3600.0
EVENTS = st.lists(
    st.builds(
        Event,
        st.sampled_from(["send", "click", "conversion"]),
        st.sampled_from(["a", "b", "c"]),
        st.floats(0, 1e6, allow_nan=False),
        st.integers(0, 10**9),
        st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    ),
    max_size=60,
)


def tally_of(events: list[Event], half_life: float | None) -> AccountStats:
    tally = Tally(half_life)
    for e in events:
        micros = e.revenue_micros if e.kind == "conversion" else 0
        tally.add(e.kind, e.creative_id, e.time, micros, e.origin_time)
    return tally.stats()


def fold_of(events: list[Event], half_life: float | None) -> AccountStats:
    clean = [
        e if e.kind == "conversion" else Event(e.kind, e.creative_id, e.time, 0, e.origin_time)
        for e in events
    ]
    return fold(clean, AccountStats(half_life_seconds=half_life))


@settings(max_examples=150, deadline=None)
@given(events=EVENTS)
def test_the_tally_is_the_fold_bit_for_bit_in_the_same_order(events: list[Event]) -> None:
    for half_life in (None, HALF_LIFE):
        tallied, folded = tally_of(events, half_life), fold_of(events, half_life)
        assert dict(tallied.counts) == dict(folded.counts)
        assert dict(tallied.decayed) == dict(folded.decayed)


def test_absorbing_a_tally_of_other_events_gives_the_tally_of_all() -> None:
    rng = random.Random(4)
    events = [
        Event(rng.choice(["send", "click", "conversion"]), rng.choice("ab"), rng.uniform(0, 9e4), 7)
        for _ in range(300)
    ]
    whole = tally_of(events, HALF_LIFE)
    left, right = Tally(HALF_LIFE), Tally(HALF_LIFE)
    for i, e in enumerate(events):
        micros = 7 if e.kind == "conversion" else 0
        (left if i % 2 else right).add(e.kind, e.creative_id, e.time, micros)
    left.absorb(right)
    joined = left.stats()
    assert dict(joined.counts) == dict(whole.counts)
    for cid, d in whole.decayed.items():
        assert joined.decayed[cid].ref_time == d.ref_time
        assert joined.decayed[cid].sends == pytest.approx(d.sends, rel=1e-12)
        assert joined.decayed[cid].revenue == pytest.approx(d.revenue, rel=1e-12)


def test_beta_means_use_the_prior_and_clamp_like_the_posterior() -> None:
    prior = BetaPrior(1.0, 2.0)
    assert beta_means(Counts(10, 3, 1), prior) == (4 / 13, 2 / 6)
    # more clicks than sends (a click overtook its send): beta clamps at the prior
    assert beta_means(Counts(1, 3, 0), prior) == (4 / 6, 1 / 6)


def test_drift_lists_only_creatives_whose_counts_differ_with_both_means() -> None:
    streamed = fold([Event("send", "a", 1.0), Event("send", "b", 2.0), Event("click", "b", 3.0)])
    recomputed = fold(
        [
            Event("send", "a", 1.0),
            Event("send", "b", 2.0),
            Event("send", "b", 2.5),
            Event("click", "b", 3.0),
            Event("conversion", "c", 4.0, 2_500_000),
        ]
    )
    found = creative_drift(streamed, recomputed, BetaPrior())
    assert [d.creative_id for d in found] == ["b", "c"]
    b, c = found
    assert b.delta == Counts(sends=1)
    assert b.ctr_mean == (2 / 3, 2 / 4)
    assert c.streamed == Counts() and c.delta == Counts(conversions=1, revenue_micros=2_500_000)
    assert creative_drift(recomputed, recomputed, BetaPrior()) == ()


@settings(max_examples=100, deadline=None)
@given(streamed_events=EVENTS, true_events=EVENTS)
def test_the_correction_merged_into_the_streamed_value_gives_the_recomputed_counts(
    streamed_events: list[Event], true_events: list[Event]
) -> None:
    for half_life in (None, HALF_LIFE):
        streamed = fold_of(streamed_events, half_life)
        recomputed = fold_of(true_events, half_life)
        delta = correction(streamed, recomputed)
        if streamed.same_counts(recomputed):
            assert delta is None
            continue
        assert delta is not None
        fixed = streamed.merge(delta)
        assert fixed.same_counts(recomputed)
        assert correction(fixed, recomputed) is None
        # the timing's difference rides along: delays observed exactly, and the recent
        # buckets too, pruned to the later of the two latest event times
        assert fixed.timing.click_delays == recomputed.timing.click_delays
        assert fixed.timing.conversion_delays == recomputed.timing.conversion_delays
        assert fixed.timing == recomputed.timing.merge(Timing(streamed.timing.latest))
        for cid in delta.decayed:  # the same quantity, expressed at the later reference
            got = fixed.decayed[cid]
            want = recomputed.decayed.get(cid, Decayed()).rebased(got.ref_time, HALF_LIFE)
            before = streamed.decayed.get(cid, Decayed())
            for name in ("sends", "clicks", "conversions", "revenue"):
                # float error of the subtraction is relative to what was subtracted
                scale = 1.0 + abs(getattr(before, name)) + abs(getattr(want, name))
                assert getattr(got, name) == pytest.approx(getattr(want, name), abs=1e-12 * scale)


def test_a_correction_is_applied_once_per_offset() -> None:
    delta = AccountStats().apply("send", "a", 1.0)
    once, outcome = apply_correction(Ledger(), delta, "stats-corrections", 2, 5)
    assert outcome == "applied" and once.stats.creative("a") == Counts(sends=1)
    assert once.applied_offset("stats-corrections", 2) == 5
    again, outcome = apply_correction(once, delta, "stats-corrections", 2, 5)
    assert outcome == "replayed" and again is once
    later, outcome = apply_correction(once, delta, "stats-corrections", 2, 6)
    assert outcome == "applied" and later.stats.creative("a") == Counts(sends=2)


def test_the_summary_adds_absolute_differences_per_kind() -> None:
    streamed = fold([Event("send", "a", 1.0), Event("send", "a", 2.0), Event("click", "b", 1.0)])
    recomputed = fold([Event("send", "a", 1.0), Event("conversion", "b", 1.0, 3_000_000)])
    found = creative_drift(streamed, recomputed, BetaPrior())
    summary = summarize(2, [found, ()])
    assert summary.accounts == 2 and summary.drifting_accounts == 1
    assert summary.drifting_creatives == 2
    assert dict(summary.events) == {"send": 1, "click": 1, "conversion": 1}
    assert summary.revenue_micros == 3_000_000
    assert summary.max_ctr_mean_shift == pytest.approx(abs(1 / 3 - 2 / 4))
    assert not summary.clean and summarize(1, [()]).clean
