"""The live report as aligned terminal tables, and the formatting both renderers share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from selector.intervals import Lift
from selector.live_checks import SplitTest
from selector.live_counterfactual import Coverage
from selector.live_groups import Group, Rate
from selector.live_report import AccountReport, LiveReport
from selector.live_sections import Section


def pct(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}%}"


def usd(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"${x:,.{digits}f}"


def signed(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.{digits}%}"


def lift_text(lift: Lift, digits: int = 1) -> str:
    if math.isnan(lift.lift):
        return "n/a"
    return f"{signed(lift.lift, digits)} [{signed(lift.low, digits)}, {signed(lift.high, digits)}]"


def rate_text(rate: Rate, money: bool = False) -> str:
    fmt = usd if money else pct
    if not math.isfinite(rate.low):
        return fmt(rate.value)
    return f"{fmt(rate.value)} [{fmt(rate.low)}, {fmt(rate.high)}]"


def when(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def split_text(test: SplitTest) -> str:
    counts = (
        f"{test.campaign_id}: {test.automated_contacts:,} automated / "
        f"{test.control_contacts:,} control contacts"
    )
    if test.expected_share is None:
        return f"{counts} (observed {pct(test.observed_share)}; split unknown, not tested)"
    verdict = "MISMATCH: the arms are not comparable" if test.mismatch else "ok"
    both = f", {test.contacts_in_both_arms:,} in both arms" if test.contacts_in_both_arms else ""
    return (
        f"{counts}{both}, expected {pct(test.expected_share)}, observed "
        f"{pct(test.observed_share)}, chi2 {test.chi_square:.2f}, p {test.p_value:.3g}: {verdict}"
    )


HEADER = f"{'':26}{'sends':>11}{'contacts':>10}  {'click':<24}{'conv/click':<24}{'RPS':<26}"


def group_row(g: Group, extra: str = "") -> str:
    return (
        f"{g.name[:26]:26}{g.sends:>11,}{g.contacts:>10,}  {rate_text(g.click_rate):<24}"
        f"{rate_text(g.conversion_rate):<24}{rate_text(g.revenue_per_send, True):<26}{extra}"
    )


def _section(title: str, groups: Sequence[Group], lifts: Sequence[Lift] = ()) -> list[str]:
    rows = [f"-- {title}"]
    for i, g in enumerate(groups):
        extra = f"RPS lift {lift_text(lifts[i])}" if i < len(lifts) and g.name != "default" else ""
        rows.append(group_row(g, extra))
    return rows


def account_text(a: AccountReport) -> list[str]:
    lines = [
        f"{a.account_id}: {a.sends:,} sends to {a.contacts:,} contacts, "
        f"{when(a.first_send)} to {when(a.last_send)}",
        a.headline(),
        "",
        HEADER,
        *_section("by arm (95% intervals, contacts as clusters)", a.arms),
        f"Lift, automated over control: click rate {lift_text(a.click_lift)}; "
        f"conversions per click {lift_text(a.conversion_lift)}; RPS {lift_text(a.rps_lift)}",
        *_section("by method", a.methods, a.method_lifts),
        *_section("by creative", a.creatives),
        "-- by day (UTC): RPS lift of automated over control",
        *[
            f"{d.day:26}{sum(g.sends for g in d.arms):>11,}  {lift_text(d.rps_lift)}"
            for d in a.days
        ],
        "-- control split (sample-ratio test on contacts)",
        *[f"  {split_text(s)}" for s in a.split],
        f"-- learning pool: {pct(a.learning_share)} of automated sends",
        *[f"  {p.creative_id}: {p.state}, sends {p.sends_by_pool}" for p in a.pools],
    ]
    d = a.diversity
    if math.isfinite(d.top_share):
        top = max(d.shares, key=lambda c: d.shares[c])
        lines.append(
            f"-- creative share: top {pct(d.top_share)} ({top}), normalized entropy "
            f"{d.normalized_entropy:.2f}, {d.effective_creatives:.1f} effective creatives"
            + (" (dominated)" if d.dominated else "")
        )
    for value in a.ope:
        lines.append(f"-- off-policy: {value.policy} ({value.reward} per send)")
        for name, e in value.estimates.items():
            lines.append(
                f"  {name:8}{e.value:10.4f} [{e.low:.4f}, {e.high:.4f}]  "
                f"effective sample size {e.effective_sample_size:,.0f} of {e.rows:,}"
            )
        if value.coverage is not None:
            lines.append(f"  {coverage_text(value.coverage)}")
    for section in a.sections:
        lines += section_text(section)
    return lines


def section_text(section: Section) -> list[str]:
    """An optional section as an aligned table under its title."""
    table = [section.head, *section.rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(section.head))]
    lines = [f"-- {section.title.lower()}"]
    lines += [
        "  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in table
    ]
    return [*lines, *(f"  {note}" for note in section.notes)]


def coverage_text(c: Coverage) -> str:
    """'rows: 1,000 by snapshot, 20 by logged propensity; left out: no_snapshot 5 (...)'"""
    text = f"rows: {c.by_snapshot:,} by snapshot, {c.by_logged:,} by logged propensity"
    if c.left_out:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(c.left_out.items()))
        text += f"; left out: {reasons} (decided {when(c.first_left_out)} to "
        text += f"{when(c.last_left_out)})"
    return text


def excluded_text(report: LiveReport) -> list[str]:
    lines = ["Records read: " + ", ".join(f"{k} {n:,}" for k, n in report.records.items())]
    for title, table in (("undecodable", report.undecodable), ("left out", report.unmatched)):
        for kind, reasons in table.items():
            listed = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items()))
            lines.append(f"  {title} {kind}: {listed}")
    if report.unknown_records:
        lines.append(f"  unknown records: {report.unknown_records:,}")
    return lines


def format_tables(report: LiveReport) -> str:
    """Every account's tables, then what was read and left out."""
    lines: list[str] = []
    for a in report.accounts:
        lines += [*account_text(a), ""]
    for o in report.other_accounts:
        lines.append(f"{o.account_id}: no reported selection sends")
        lines += [line for s in o.sections for line in section_text(s)] + [""]
    if not report.accounts and not report.other_accounts:
        lines.append("No reported sends.")
    return "\n".join(line.rstrip() for line in [*lines, *excluded_text(report)])
