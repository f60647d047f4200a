"""The live report on hand-built records: joins, exclusions by reason, rates and checks."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy import stats

from selector import live_join
from selector.intervals import ratio_lift
from selector.live_checks import chi_square_p_value, diversity, split_test
from selector.live_join import JoinAccumulator
from selector.live_report import ReportOptions, build_live_report, report_from_records

DAY = 86_400.0
T0 = 1_700_000_000.0


# The shapes of stream.messages, which selector does not import.
@dataclass(frozen=True)
class Response:
    kind: ClassVar[str] = "selection_response"
    request_id: str
    account_id: str
    campaign_id: str
    creative_id: str
    arm: str
    method: str
    pool: str
    reason: str
    propensity: float | None
    params_version: int
    decided_at: float


@dataclass(frozen=True)
class ErrorResponse:
    kind: ClassVar[str] = "selection_response"
    request_id: str | None
    account_id: str | None
    reason: str
    message: str
    decided_at: float


@dataclass(frozen=True)
class Send:
    kind: ClassVar[str] = "send"
    event_id: str
    account_id: str
    campaign_id: str
    contact_id: str
    creative_id: str
    time: float
    request_id: str | None = None


@dataclass(frozen=True)
class Click:
    kind: ClassVar[str] = "click"
    event_id: str
    account_id: str
    contact_id: str
    creative_id: str
    time: float
    send_event_id: str | None = None
    campaign_id: str | None = None


@dataclass(frozen=True)
class Conversion:
    kind: ClassVar[str] = "conversion"
    event_id: str
    account_id: str
    contact_id: str
    creative_id: str
    time: float
    revenue: float
    send_event_id: str | None = None
    campaign_id: str | None = None


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str


ARM_METHOD = {"automated": ("thompson_single_step", "scored"), "control": ("default", "control")}


def decision(
    n: int, contact: str, creative: str, arm: str = "automated", t: float = T0, account: str = "a"
) -> list[Any]:
    """A response and its send, ids derived from n."""
    method, pool = ARM_METHOD[arm]
    p = 1.0 if arm == "control" else 0.5
    return [
        Response(f"r{n}", account, "camp", creative, arm, method, pool, "none", p, n, t),
        Send(f"s{n}", account, "camp", contact, creative, t + 1, f"r{n}"),
    ]


def small_log() -> list[Any]:
    """Automated: c1 gets x twice (one click + $10 conversion), c2 gets y (one click);
    control: c3 and c4 get x, c3 clicks."""
    return [
        *decision(1, "c1", "x"),
        *decision(2, "c1", "x", t=T0 + 10),
        *decision(3, "c2", "y"),
        *decision(4, "c3", "x", "control"),
        *decision(5, "c4", "x", "control"),
        Click("k1", "a", "c1", "x", T0 + 100, "s1"),
        Conversion("v1", "a", "c1", "x", T0 + 200, 10.0, "s1"),
        Click("k2", "a", "c2", "y", T0 + 100, "s3"),
        Click("k3", "a", "c3", "x", T0 + 100, "s4"),
    ]


def test_small_log_rates_equal_the_counts() -> None:
    report = report_from_records(small_log(), ReportOptions(click_payouts={"a": {"y": 4.0}}))
    assert report.unmatched == {} and report.undecodable == {}
    a = report.accounts[0]
    auto, control = a.arm("automated"), a.arm("control")
    assert auto is not None and control is not None
    assert (auto.sends, auto.contacts, auto.clicks, auto.conversions) == (3, 2, 2, 1)
    assert auto.revenue == 14.0  # $10 conversion + one click on y at $4
    assert auto.click_rate.value == pytest.approx(2 / 3)
    assert auto.conversion_rate.value == pytest.approx(1 / 2)
    assert auto.revenue_per_send.value == pytest.approx(14 / 3)
    assert (control.sends, control.clicks, control.revenue) == (2, 1, 0.0)
    assert a.click_lift.lift == pytest.approx((2 / 3) / (1 / 2) - 1)
    assert math.isnan(a.rps_lift.lift)  # control revenue is zero
    assert [g.name for g in a.creatives] == ["x", "y"]
    assert [(g.name, g.sends) for g in a.methods] == [("thompson_single_step", 3), ("default", 2)]


def test_intervals_equal_ratio_lift_on_per_send_arrays() -> None:
    rng = np.random.default_rng(0)
    records: list[Any] = []
    clicks = {"automated": [], "control": []}
    contacts = {"automated": [], "control": []}
    for n in range(600):
        arm = "automated" if n % 5 else "control"
        contact = f"c{rng.integers(0, 150)}-{arm}"
        records += decision(n, contact, "x", arm, T0 + n)
        clicked = rng.random() < (0.3 if arm == "automated" else 0.2)
        if clicked:
            records.append(Click(f"k{n}", "a", contact, "x", T0 + n + 5, f"s{n}"))
        clicks[arm].append(float(clicked))
        contacts[arm].append(contact)
    report = report_from_records(records).accounts[0]
    expected = ratio_lift(
        "click_rate",
        np.array(clicks["automated"]),
        np.array(clicks["control"]),
        np.array(contacts["automated"]),
        np.array(contacts["control"]),
    )
    got = report.click_lift
    assert (got.lift, got.low, got.high) == pytest.approx(
        (expected.lift, expected.low, expected.high), rel=1e-12
    )


def test_the_report_does_not_depend_on_record_order() -> None:
    records = small_log()
    first = report_from_records(records).to_dict()
    for seed in range(3):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert report_from_records(shuffled).to_dict() == first


def test_chunks_flush_without_changing_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    records = small_log()
    whole = report_from_records(records).to_dict()
    monkeypatch.setattr(live_join, "CHUNK", 2)
    assert report_from_records(records).to_dict() == whole


def reasons_of(records: list[Any], **options: Any) -> dict[str, dict[str, int]]:
    return report_from_records(records, ReportOptions(**options)).unmatched


@pytest.mark.parametrize(
    ("extra", "kind", "reason"),
    [
        (
            [ErrorResponse("r9", "a", "unknown_campaign", "no such campaign", T0)],
            "selection_response",
            "error_response",
        ),
        (
            [
                Response(
                    "r1", "a", "camp", "x", "automated", "random", "uniform", "none", 0.5, 1, T0
                )
            ],
            "selection_response",
            "duplicate",
        ),
        ([Send("s1", "a", "camp", "c1", "x", T0, "r1")], "send", "duplicate"),
        ([Send("s9", "a", "camp", "c1", "x", T0)], "send", "no_request_id"),
        ([Send("s9", "a", "camp", "c1", "x", T0, "r-none")], "send", "no_response"),
        (
            [
                Response(
                    "r9", "a", "camp", "x", "automated", "random", "uniform", "none", 0.5, 1, T0
                )
            ],
            "selection_response",
            "no_send",
        ),
        ([Send("s9", "b", "camp", "c1", "x", T0, "r1")], "send", "account_mismatch"),
        ([Send("s9", "a", "camp", "c1", "y", T0, "r1")], "send", "creative_mismatch"),
        ([Send("s9", "a", "camp", "c1", "x", T0 + 50, "r1")], "send", "repeated_send"),
        ([Click("k9", "a", "c1", "x", T0, "s-none")], "click", "no_send"),
        ([Click("k9", "a", "c2", "x", T0 + 100, "s1")], "click", "contact_mismatch"),
        ([Click("k9", "a", "c1", "y", T0 + 100, "s1")], "click", "creative_mismatch"),
        ([Click("k9", "b", "c1", "x", T0 + 100, "s1")], "click", "account_mismatch"),
        ([Click("k1", "a", "c1", "x", T0 + 100, "s1")], "click", "duplicate"),
        ([Conversion("v9", "a", "c7", "x", T0, 5.0)], "conversion", "no_send"),
        ([Click("k9", "a", "c1", "x", T0 + 100, None)], "click", "send_not_reported"),
    ],
)
def test_each_left_out_record_is_counted_by_reason(
    extra: list[Any], kind: str, reason: str
) -> None:
    records = small_log() + extra
    options: dict[str, Any] = {}
    if reason == "send_not_reported":  # its send (s2, the latest of c1's x) is out of range
        options["until"] = T0 + 5
    counted = reasons_of(records, **options)
    assert counted[kind][reason] == 1, counted


def test_range_and_account_filters_are_counted() -> None:
    records = [*small_log(), *decision(7, "c9", "x", account="other")]
    report = report_from_records(records, ReportOptions(until=T0 + 5, accounts=frozenset({"a"})))
    assert report.unmatched["send"] == {"outside_range": 1, "other_account": 1}
    assert report.unmatched["selection_response"] == {"other_account": 1}
    # the second send of c1 (s2, at T0 + 11) is out of range; no click named it
    assert report.accounts[0].sends == 4


def test_unknown_objects_and_broken_records_are_counted_not_raised() -> None:
    class Broken:
        kind = "send"

    report = report_from_records([*small_log(), object(), Broken(), None])
    assert report.unknown_records == 2
    assert report.unmatched == {"send": {"unknown_record": 1}}
    assert report.accounts[0].sends == 5


def test_rejections_count_by_kind_and_reason_when_kinds_are_separate() -> None:
    records = small_log()
    by_kind: dict[str, list[Any]] = {
        "selection_response": [],
        "send": [],
        "click": [],
        "conversion": [],
    }
    for r in records:
        by_kind[r.kind].append(r)
    by_kind["click"].append(Rejected("malformed_json", "bad"))
    by_kind["send"] += [Rejected("missing_field", "x"), Rejected("missing_field", "y")]
    by_kind["dead_letter"] = [object(), object()]
    report = report_from_records(by_kind)
    assert report.undecodable == {"click": {"malformed_json": 1}, "send": {"missing_field": 2}}
    assert report.unknown_records == 2
    assert report.records["send"] == len([r for r in records if r.kind == "send"]) + 2


def test_an_outcome_without_send_id_finds_the_latest_send_in_the_window() -> None:
    records = [
        *decision(1, "c1", "x"),
        *decision(2, "c1", "x", t=T0 + 3 * DAY),
        *decision(3, "c1", "y", t=T0 + 4 * DAY),
        Click("k1", "a", "c1", "x", T0 + 3.5 * DAY),  # -> s2, not s1 and not y's s3
        Click("k2", "a", "c1", "x", T0 + 0.5 * DAY),  # -> s1
        Click("k3", "a", "c1", "x", T0 + 20 * DAY),  # beyond the 7-day window
        Click("k4", "a", "c1", "x", T0 - DAY),  # before any send
    ]
    report = report_from_records(records)
    assert report.unmatched == {"click": {"no_send": 2}}
    creatives = {g.name: g for g in report.accounts[0].creatives}
    assert creatives["x"].clicks == 2 and creatives["y"].clicks == 0
    days = report.accounts[0].days
    assert [d.day for d in days] == ["2023-11-14", "2023-11-17", "2023-11-18"]
    assert [d.arms[0].clicks for d in days] == [1, 1, 0]


def test_split_test_matches_scipy_and_flags_a_mismatch() -> None:
    test = split_test("camp", 900, 100, 0, 0.8)
    assert test.chi_square == pytest.approx(100**2 / 800 + 100**2 / 200)
    assert test.p_value == pytest.approx(stats.chi2.sf(test.chi_square, 1), rel=1e-9)
    assert test.mismatch
    fine = split_test("camp", 805, 195, 0, 0.8)
    assert fine.p_value == pytest.approx(stats.chi2.sf(fine.chi_square, 1)) and not fine.mismatch
    for chi in (0.0, 0.5, 3.84, 10.0, 40.0):
        assert chi_square_p_value(chi) == pytest.approx(stats.chi2.sf(chi, 1), rel=1e-9)
    assert split_test("camp", 10, 1, 0, 1.0).chi_square == math.inf
    unknown = split_test("camp", 10, 2, 0, None)
    assert math.isnan(unknown.p_value) and not unknown.mismatch


def test_split_counts_contacts_not_sends_and_sees_contacts_in_both_arms() -> None:
    records = small_log() + decision(8, "c3", "x")  # c3 was control; now automated too
    options = ReportOptions(automated_percent={"a": {"camp": 60.0}})
    (split,) = report_from_records(records, options).accounts[0].split
    assert (split.automated_contacts, split.control_contacts, split.contacts_in_both_arms) == (
        3,
        2,
        1,
    )
    assert split.expected_share == 0.6 and split.observed_share == pytest.approx(0.6)


def test_diversity_measures() -> None:
    even = diversity(["a", "b", "c", "d"], np.array([5.0, 5, 5, 5]))
    assert even.normalized_entropy == pytest.approx(
        1.0
    ) and even.effective_creatives == pytest.approx(4)
    assert even.top_share == 0.25 and not even.dominated
    one = diversity(["a", "b"], np.array([96.0, 4.0]))
    assert one.dominated and one.top_share == 0.96


def test_pool_status_and_learning_share() -> None:
    records = [
        Response(
            "r1",
            "a",
            "camp",
            "x",
            "automated",
            "thompson_single_step",
            "learning",
            "none",
            0.05,
            1,
            T0,
        ),
        Send("s1", "a", "camp", "c1", "x", T0, "r1"),
        Response(
            "r2",
            "a",
            "camp",
            "x",
            "automated",
            "thompson_single_step",
            "scored",
            "none",
            0.9,
            2,
            T0 + 9,
        ),
        Send("s2", "a", "camp", "c2", "x", T0 + 9, "r2"),
        Response(
            "r3",
            "a",
            "camp",
            "y",
            "automated",
            "thompson_single_step",
            "learning",
            "none",
            0.05,
            3,
            T0 + 9,
        ),
        Send("s3", "a", "camp", "c3", "y", T0 + 9, "r3"),
        *decision(4, "c4", "z", "control"),
    ]
    a = report_from_records(records).accounts[0]
    pools = {p.creative_id: p for p in a.pools}
    assert set(pools) == {"x", "y"}
    assert pools["x"].state == "scored" and pools["x"].first_scored == T0 + 9
    assert pools["x"].sends_by_pool == {"learning": 1, "scored": 1}
    assert pools["y"].state == "learning" and pools["y"].first_scored is None
    assert a.learning_share == pytest.approx(2 / 3)
    assert a.diversity.shares == pytest.approx({"x": 2 / 3, "y": 1 / 3})
    assert a.share_by_day == (("2023-11-14", pytest.approx({"x": 2 / 3, "y": 1 / 3})),)


def test_to_dict_is_strict_json() -> None:
    report = report_from_records(small_log(), ReportOptions(automated_percent={"a": {"camp": 80}}))
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert "moments" not in text
    assert data["accounts"][0]["click_lift"]["excludes_zero"] in (True, False)
    assert data["accounts"][0]["rps_lift"]["lift"] is None


def test_an_empty_input_gives_an_empty_report() -> None:
    report = report_from_records([])
    assert report.accounts == () and report.records == dict.fromkeys(report.records, 0)


def test_sends_without_any_response_are_counted_not_raised() -> None:
    sends = [Send("s1", "a", "camp", "c1", "x", T0, "r1"), Send("s2", "a", "camp", "c2", "x", T0)]
    report = report_from_records(sends)
    assert report.accounts == ()
    assert report.unmatched == {"send": {"no_response": 1, "no_request_id": 1}}


def test_finish_can_be_called_twice_and_leaves_the_accumulator_usable() -> None:
    acc = JoinAccumulator()
    acc.add_many(small_log())
    first = build_live_report(acc.finish()).to_dict()
    assert build_live_report(acc.finish()).to_dict() == first
    acc.add_many(decision(9, "c9", "y"))
    assert build_live_report(acc.finish()).accounts[0].sends == 6


def test_off_policy_estimates_appear_when_a_generator_is_given() -> None:
    rng = np.random.default_rng(5)
    records: list[Any] = []
    means = {"x": 0.1, "y": 0.3}
    for n in range(2000):
        creative = "x" if rng.random() < 0.5 else "y"
        records += [
            Response(
                f"r{n}",
                "a",
                "camp",
                creative,
                "automated",
                "random",
                "uniform",
                "none",
                0.5,
                n,
                T0 + n,
            ),
            Send(f"s{n}", "a", "camp", f"c{n}", creative, T0 + n, f"r{n}"),
        ]
        if rng.random() < means[creative]:
            records.append(Click(f"k{n}", "a", f"c{n}", creative, T0 + n + 1, f"s{n}"))
    from selector.live_ope import OpeOptions, PolicySnapshots

    ope = OpeOptions(
        resamples=200,
        goals={"a": "clicks"},
        thompson={"a": PolicySnapshots((0,), ("y", "x"), np.array([[1.0, 0.0]]))},
    )
    report = report_from_records(records, rng=np.random.default_rng(1), ope=ope)
    account = report.accounts[0]
    values = {v.policy: v for v in account.ope}
    assert set(values) == {"uniform", "thompson_single_step"}
    # uniform logging at 0.5 over two creatives: IPS of the uniform policy is the mean
    uniform = values["uniform"].estimates
    assert uniform["ips"].value == pytest.approx(account.arms[0].click_rate.value)
    assert uniform["ips"].effective_sample_size == pytest.approx(2000)
    # all traffic to y: SNIPS and replay are y's click rate, IPS weighs it by 2 x its share
    best = values["thompson_single_step"]
    assert best.unsupported_mass == 0.0
    y = next(g for g in account.creatives if g.name == "y")
    assert best.estimates["snips"].value == pytest.approx(y.click_rate.value)
    assert best.estimates["replay"].value == pytest.approx(y.click_rate.value)
    assert best.estimates["ips"].value == pytest.approx(2 * y.clicks / 2000)
    assert best.estimates["ips"].effective_sample_size == pytest.approx(y.sends)
    for estimate in [*uniform.values(), *best.estimates.values()]:
        assert estimate.low < estimate.value < estimate.high
        assert estimate.high - estimate.low < 0.1


def test_thompson_snapshots_come_from_posteriors_by_version() -> None:
    from selector.live_ope import thompson_snapshots
    from selector.ope_targets import ThompsonPosteriors

    post = ThompsonPosteriors.of(
        ctr_alpha=[[1.0, 1.0], [900.0, 10.0]], ctr_beta=[[1.0, 1.0], [100.0, 990.0]], goal="clicks"
    )
    snap = thompson_snapshots((5, 9), ("y", "x"), post, np.random.default_rng(0), draws=4000)
    assert snap.versions == (5, 9) and snap.creative_ids == ("y", "x")
    assert snap.probabilities[0] == pytest.approx([0.5, 0.5], abs=0.03)
    assert snap.probabilities[1].tolist() == [1.0, 0.0]


def test_of_two_records_with_one_id_the_first_to_arrive_counts() -> None:
    later = Response("r1", "a", "camp", "x", "automated", "random", "uniform", "none", 0.5, 1, T0)
    first_methods = {g.name for g in report_from_records([*small_log(), later]).accounts[0].methods}
    assert "random" not in first_methods
    swapped = report_from_records([later, *small_log()]).accounts[0].methods
    assert {g.name: g.sends for g in swapped}["random"] == 1
    many = [*small_log(), *[later] * 5]
    assert report_from_records(many).unmatched["selection_response"]["duplicate"] == 5


def test_rows_without_a_usable_propensity_stay_out_of_the_off_policy_log() -> None:
    records: list[Any] = []
    for n, p in enumerate([0.5, 0.5, None, 0.0, 0.5]):
        records += [
            Response(
                f"r{n}",
                "a",
                "camp",
                "xy"[n % 2],
                "automated",
                "random",
                "uniform",
                "none",
                p,
                n,
                T0,
            ),
            Send(f"s{n}", "a", "camp", f"c{n}", "xy"[n % 2], T0, f"r{n}"),
        ]
    report = report_from_records(records, rng=np.random.default_rng(0))
    (uniform,) = report.accounts[0].ope
    assert uniform.estimates["ips"].rows == 3
    assert report.accounts[0].sends == 5
