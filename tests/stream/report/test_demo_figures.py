"""On the demo's topics, the live report gives the demo's own lift figures.

The topics are written from a simulation of scenarios/product.yaml exactly as the demo's
sender writes them (`demo_topics`), so `stream.demo.build_result` + `build_report` (the
demo's figures) and `report_from_records` (the live report) read the same messages.
"""

from __future__ import annotations

import pytest

from selector.live_report import ReportOptions, report_from_records
from selector.report import build_report
from stream.demo.result import build_result
from tests.stream.report.demo_topics import (
    START,
    click_payouts,
    product_run,
    segment_of,
    simulated_topics,
)


@pytest.fixture(scope="module")
def both() -> tuple:
    scenario, result = product_run(sends=20_000, seed=3)
    topics = simulated_topics(scenario, result)
    account_id = scenario.account.account_id
    demo_result, _ = build_result(
        scenario, topics, segment_of(scenario, result), START, 3, account_id
    )
    options = ReportOptions(click_payouts=click_payouts(scenario))
    live = report_from_records(topics, options)
    plain = report_from_records(topics)  # without the per-click payouts
    return build_report(demo_result), live.account(account_id), live, plain


def test_lifts_and_headline_are_the_demos(both: tuple) -> None:
    demo, live, _, _ = both
    for mine, theirs in ((live.click_lift, demo.click_lift), (live.rps_lift, demo.rps_lift)):
        assert mine.treatment == theirs.treatment and mine.control == theirs.control
        assert mine.lift == theirs.lift
        assert (mine.low, mine.high) == pytest.approx((theirs.low, theirs.high), rel=1e-12)
    assert live.headline() == demo.headline()


def test_arms_methods_and_creatives_count_the_same(both: tuple) -> None:
    demo, live, _, _ = both
    for mine, theirs in ((live.arms, demo.arms), (live.methods, demo.methods)):
        assert [(g.name, g.sends, g.clicks, g.conversions, g.revenue) for g in mine] == [
            (s.name, s.sends, s.clicks, s.conversions, s.revenue) for s in theirs
        ]
    by_name = {s.name: s for s in demo.creatives}
    for g in live.creatives:
        s = by_name[g.name]
        assert (g.sends, g.clicks, g.conversions, g.revenue) == (
            s.sends,
            s.clicks,
            s.conversions,
            s.revenue,
        )


def test_nothing_is_left_out_of_the_demo_topics(both: tuple) -> None:
    _, live, report, _ = both
    assert report.unmatched == {} and report.undecodable == {}
    assert live.sends == report.records["send"] == report.records["selection_response"]


def test_without_the_per_click_payouts_revenue_misses_the_survey_clicks(both: tuple) -> None:
    demo, _, _, plain = both
    survey = [g for g in plain.accounts[0].creatives if g.name.startswith("survey")]
    assert all(
        g.revenue < next(s for s in demo.creatives if s.name == g.name).revenue for g in survey
    )
