"""Reports on live data: what the selection responses and the outcome events say, per account.

Per account: automated vs control click rate, conversion rate (per click) and revenue per
send with 95% intervals and lifts, contacts as clusters (`selector.intervals`); the same
per method, per creative and per day; the sample-ratio-mismatch test of each campaign's
control split; the learning pool; creative shares and diversity; optionally off-policy
estimates (`selector.live_ope`). And what was left out: undecodable records by the
decoder's reason, unmatched ones by `selector.live_match.Unmatched`.

Revenue of a send is its conversions' revenue plus, for creatives of per-click (`cto`)
offers, its clicks times the payout per click (`ReportOptions.click_payouts`), as the
simulator and the demo count it.

Entry points: `report_from_records` (decoded records, any order) and `report_from_raw`
(kind and bytes, with the decoder); both stream through `JoinAccumulator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from selector.domain import DAY_SECONDS
from selector.intervals import Lift
from selector.live_checks import SRM_ALPHA, Diversity, PoolStatus, SplitTest, split_test
from selector.live_groups import METRICS, Group, lift
from selector.live_join import ATTRIBUTION_WINDOW, JoinAccumulator, Joined, Kind
from selector.live_ope import OpeOptions, PolicyValue, account_ope
from selector.live_sections import AccountSections, Section, model_section
from selector.live_tables import Tables, build_tables, creative_diversity, learning_share
from selector.report import json_safe

_EMPTY: Mapping[str, Mapping[str, float]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """`since`/`until`: the sends reported, by send time (epoch seconds, until exclusive);
    `accounts`: only these; `click_payouts`: per account, creative -> revenue per click
    (per-click offers); `automated_percent`: per account, campaign -> its split, for the
    sample-ratio test; `attribution_window`: how far back an outcome without a
    `send_event_id` looks for its send."""

    since: float | None = None
    until: float | None = None
    accounts: frozenset[str] | None = None
    click_payouts: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _EMPTY)
    automated_percent: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _EMPTY)
    attribution_window: float = ATTRIBUTION_WINDOW
    srm_alpha: float = SRM_ALPHA


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day: the arms and the automated-over-control lifts."""

    day: str
    arms: tuple[Group, ...]
    click_lift: Lift
    rps_lift: Lift


@dataclass(frozen=True, slots=True)
class AccountReport:
    account_id: str
    sends: int
    contacts: int
    first_send: float
    last_send: float
    arms: tuple[Group, ...]
    click_lift: Lift
    conversion_lift: Lift
    rps_lift: Lift
    methods: tuple[Group, ...]
    method_lifts: tuple[Lift, ...]  # each method's RPS over control, as `methods`
    creatives: tuple[Group, ...]
    days: tuple[Day, ...]
    split: tuple[SplitTest, ...]
    pools: tuple[PoolStatus, ...]
    learning_share: float  # of automated sends, from the learning pool
    diversity: Diversity
    share_by_day: tuple[tuple[str, dict[str, float]], ...]  # automated sends, per day
    ope: tuple[PolicyValue, ...] = ()
    sections: tuple[Section, ...] = ()  # optional ones, where their data is

    def arm(self, name: str) -> Group | None:
        return next((g for g in self.arms if g.name == name), None)

    def headline(self) -> str:
        """'Automated 14.0% click, $0.520/send; Control 11.0%, $0.410; RPS lift +27% [...]'"""
        c, r = self.click_lift, self.rps_lift

        def pct(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{x:.1%}"

        def usd(x: float) -> str:
            return "n/a" if math.isnan(x) else f"${x:,.3f}"

        lifted = "n/a" if math.isnan(r.lift) else f"{r.lift:+.0%} [{r.low:+.0%}, {r.high:+.0%}]"
        return (
            f"Automated {pct(c.treatment)} click, {usd(r.treatment)}/send; "
            f"Control {pct(c.control)}, {usd(r.control)}; RPS lift {lifted}"
        )


@dataclass(frozen=True, slots=True)
class LiveReport:
    since: float | None
    until: float | None
    accounts: tuple[AccountReport, ...]
    records: dict[str, int]
    undecodable: dict[str, dict[str, int]]
    unmatched: dict[str, dict[str, int]]
    unknown_records: int
    other_accounts: tuple[AccountSections, ...] = ()  # sections only: no reported sends

    def account(self, account_id: str) -> AccountReport | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN (an empty group, one contact) becomes null."""
        data = asdict(self)
        for account, report in zip(data["accounts"], self.accounts, strict=True):
            for key in ("click_lift", "conversion_lift", "rps_lift"):
                account[key]["excludes_zero"] = getattr(report, key).excludes_zero
        result = json_safe(_without_moments(data))
        assert isinstance(result, dict)
        return result


def _without_moments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_moments(v) for k, v in value.items() if k != "moments"}
    if isinstance(value, list | tuple):
        return [_without_moments(v) for v in value]
    return value


def _day_label(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_SECONDS, tz=UTC).date().isoformat()


def _days(t: Tables, a: int) -> tuple[Day, ...]:
    out = []
    for day, arms in t.day_groups(a):
        named = {g.name: g for g in arms}
        auto, control = named.get("automated"), named.get("control")
        out.append(
            Day(_day_label(day), arms, lift("click_rate", auto, control),
                lift("revenue_per_send", auto, control))
        )  # fmt: skip
    return tuple(out)


def _split(t: Tables, a: int, joined: Joined, options: ReportOptions) -> tuple[SplitTest, ...]:
    percent = options.automated_percent.get(joined.accounts[a], {})
    tests = []
    for code, (auto, control, both) in t.split_counts(a):
        name = joined.campaigns[code]
        pct = percent.get(name)
        share = None if pct is None else pct / 100.0
        tests.append(split_test(name, auto, control, both, share, options.srm_alpha))
    return tuple(tests)


def _account(
    t: Tables, a: int, joined: Joined, options: ReportOptions, ope: tuple[PolicyValue, ...]
) -> AccountReport:
    arms = t.arm_groups(a)
    named = {g.name: g for g in arms}
    auto, control = named.get("automated"), named.get("control")
    methods = t.method_groups(a)
    method_lifts = tuple(lift(METRICS[2], g, control) for g in methods)
    first, last, contacts = t.span(a)
    pools = t.pools(a)
    model = model_section(methods, method_lifts, t.account_rows(a))
    return AccountReport(
        account_id=joined.accounts[a],
        sends=sum(g.sends for g in arms),
        contacts=contacts,
        first_send=first,
        last_send=last,
        arms=arms,
        click_lift=lift(METRICS[0], auto, control),
        conversion_lift=lift(METRICS[1], auto, control),
        rps_lift=lift(METRICS[2], auto, control),
        methods=methods,
        method_lifts=method_lifts,
        creatives=t.creative_groups(a),
        days=_days(t, a),
        split=_split(t, a, joined, options),
        pools=pools,
        learning_share=learning_share(pools),
        diversity=creative_diversity(pools),
        share_by_day=tuple((_day_label(d), s) for d, s in t.share_by_day(a)),
        ope=ope,
        sections=() if model is None else (model,),
    )


def with_sections(report: LiveReport, sections: Mapping[str, Sequence[Section]]) -> LiveReport:
    """`report` with more sections per account id (e.g. send-time results); those of an
    account without reported sends go to `other_accounts`, in account order."""
    accounts = tuple(
        replace(a, sections=(*a.sections, *sections.get(a.account_id, ()))) for a in report.accounts
    )
    named = {a.account_id for a in report.accounts}
    others = {o.account_id: o.sections for o in report.other_accounts}
    for account_id, more in sections.items():
        if account_id not in named and more:
            others[account_id] = (*others.get(account_id, ()), *more)
    other = tuple(AccountSections(k, v) for k, v in sorted(others.items()))
    return replace(report, accounts=accounts, other_accounts=other)


def with_topic_counts(
    report: LiveReport,
    kind: str,
    read: int,
    undecodable: Mapping[str, int],
    left_out: Mapping[str, int],
) -> LiveReport:
    """`report` with one more topic's records read, undecodable and left out (by
    reason) in its tables; nothing added for a topic with nothing read."""
    if not read:
        return report
    return replace(
        report,
        records={**report.records, kind: read},
        undecodable={**report.undecodable, **({kind: dict(undecodable)} if undecodable else {})},
        unmatched={**report.unmatched, **({kind: dict(left_out)} if left_out else {})},
    )


def build_live_report(
    joined: Joined,
    options: ReportOptions | None = None,
    *,
    rng: np.random.Generator | None = None,
    ope: OpeOptions | None = None,
) -> LiveReport:
    """The report of a join. Off-policy estimates are made when `rng` is given (their
    bootstrap draws from it), with `ope` saying which targets and rewards."""
    options = options or ReportOptions()
    t = build_tables(joined, options.click_payouts)
    accounts = []
    for a in t.present_accounts():
        values: tuple[PolicyValue, ...] = ()
        if rng is not None:
            rows = t.account_rows(a)
            values = account_ope(
                joined.accounts[a], rows, joined.creatives, ope or OpeOptions(), rng
            )
        accounts.append(_account(t, a, joined, options, values))
    return LiveReport(
        since=options.since,
        until=options.until,
        accounts=tuple(sorted(accounts, key=lambda r: r.account_id)),
        records={str(k): v for k, v in joined.records.items()},
        undecodable={k: dict(v) for k, v in joined.undecodable.items()},
        unmatched={k: {str(r): n for r, n in v.items()} for k, v in joined.unmatched.items()},
        unknown_records=joined.unknown_records,
    )


Records = Iterable[Any] | Mapping[Kind, Iterable[Any]]


def accumulate(records: Records, options: ReportOptions | None = None) -> Joined:
    """Join decoded records: one iterable of `stream.wire.messages` values (topics chained or
    interleaved), or one iterable per kind, in which the decoder's rejections (objects
    with a `reason` and no `kind`) are counted by kind and reason. In a single iterable a
    rejection has no kind and counts as an unknown record."""
    options = options or ReportOptions()
    acc = JoinAccumulator(options.accounts)
    if isinstance(records, Mapping):
        for kind, stream in records.items():
            acc.add_kind(kind, stream)
    else:
        acc.add_many(records)
    return acc.finish(options.since, options.until, options.attribution_window)


def report_from_records(
    records: Records,
    options: ReportOptions | None = None,
    *,
    rng: np.random.Generator | None = None,
    ope: OpeOptions | None = None,
) -> LiveReport:
    """The report of decoded records (see `accumulate`)."""
    return build_live_report(accumulate(records, options), options, rng=rng, ope=ope)


def report_from_raw(
    items: Iterable[tuple[Kind, bytes | None]],
    decode: Callable[[Kind, bytes | None], Any],
    options: ReportOptions | None = None,
    *,
    rng: np.random.Generator | None = None,
    ope: OpeOptions | None = None,
) -> LiveReport:
    """The report of raw messages: (kind, value bytes) pairs and the decoder
    (`stream.wire.codec.decode`), whose rejections (objects with a `reason` and no `kind`)
    are counted by kind and reason."""
    options = options or ReportOptions()
    acc = JoinAccumulator(options.accounts)
    acc.add_raw(items, decode)
    joined = acc.finish(options.since, options.until, options.attribution_window)
    return build_live_report(joined, options, rng=rng, ope=ope)


__all__ = [
    "AccountReport",
    "Day",
    "LiveReport",
    "ReportOptions",
    "accumulate",
    "build_live_report",
    "report_from_raw",
    "report_from_records",
    "with_sections",
]
