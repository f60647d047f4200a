"""PNG plots of one account of the live report, as bytes (for files and the HTML page).

matplotlib's object API (`Figure` on the Agg canvas), as in `stream.demo.plots`: no pyplot
state, no display. Every plot has a name (`PLOTS`); a plot with nothing to show (no
control arm, no off-policy estimates) is left out. An optional section with figures
(`selector.live_sections.Section.intervals`, e.g. the send-time lifts) gets a plot named
by its key (`section_plots`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from selector.live_groups import Group, Rate
from selector.live_report import AccountReport
from selector.live_sections import Section

DPI = 100
SIZE = (9.0, 4.2)
ARM_COLORS = {"automated": "#1f77b4", "control": "#ff7f0e", "manual": "#2ca02c"}


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _errors(rates: Sequence[Rate]) -> np.ndarray:
    """Asymmetric error bars (2, n); zero where an interval is unknown."""
    low = [r.value - r.low if math.isfinite(r.low) else 0.0 for r in rates]
    high = [r.high - r.value if math.isfinite(r.high) else 0.0 for r in rates]
    return np.array([low, high])


def _by_day(ax: Axes, days: np.ndarray) -> None:
    """A tick per day for up to two weeks (matplotlib would tick hours); its own above."""
    if days.size <= 14:
        ax.set_xticks(days, [str(d) for d in days])


def plot_lift(a: AccountReport) -> bytes | None:
    """Automated vs control: click rate, conversions per click and RPS with 95% intervals."""
    arms = [g for g in a.arms if g.name in ("automated", "control")]
    if not arms:
        return None
    fig = Figure(figsize=SIZE)
    metrics = (("click_rate", "click rate"), ("conversion_rate", "conversions per click"),
               ("revenue_per_send", "revenue per send"))  # fmt: skip
    lifts = (a.click_lift, a.conversion_lift, a.rps_lift)
    for i, ((field, label), lift) in enumerate(zip(metrics, lifts, strict=True)):
        ax = fig.add_subplot(1, 3, i + 1)
        rates = [getattr(g, field) for g in arms]
        ax.bar([g.name for g in arms], [r.value for r in rates], yerr=_errors(rates),
               color=[ARM_COLORS[g.name] for g in arms], capsize=6)  # fmt: skip
        title = label if math.isnan(lift.lift) else f"{label}\nlift {lift.lift:+.1%}"
        ax.set_title(title, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{a.account_id}: automated vs control (95% intervals, contacts as clusters)")
    return _png(fig)


def _horizontal(groups: Sequence[Group], title: str, reference: Group | None) -> bytes | None:
    if not groups:
        return None
    fig = Figure(figsize=(SIZE[0], 1.2 + 0.45 * len(groups)))
    ax = fig.add_subplot()
    rates = [g.revenue_per_send for g in groups]
    ax.barh([g.name for g in groups], [r.value for r in rates], xerr=_errors(rates), capsize=5)
    if reference is not None:
        ax.axvline(reference.revenue_per_send.value, color=ARM_COLORS["control"],
                   linestyle="--", label="control")  # fmt: skip
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set(title=title, xlabel="revenue per send (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_methods(a: AccountReport) -> bytes | None:
    return _horizontal(a.methods, f"{a.account_id}: revenue per send by method", a.arm("control"))


def plot_creatives(a: AccountReport) -> bytes | None:
    title = f"{a.account_id}: revenue per send by creative (all arms)"
    return _horizontal(a.creatives, title, None)


def plot_days(a: AccountReport) -> bytes | None:
    """Revenue per send per day and arm, with the interval as a band."""
    if not a.days:
        return None
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    days = np.array([d.day for d in a.days], dtype="datetime64[D]")
    for arm, color in ARM_COLORS.items():
        rates = [next((g.revenue_per_send for g in d.arms if g.name == arm), None) for d in a.days]
        if all(r is None for r in rates):
            continue
        value = [math.nan if r is None else r.value for r in rates]
        low = [math.nan if r is None else r.low for r in rates]
        high = [math.nan if r is None else r.high for r in rates]
        ax.plot(days, value, marker="o", color=color, label=arm)
        ax.fill_between(days, low, high, color=color, alpha=0.15)
    ax.set(title=f"{a.account_id}: revenue per send by day (UTC)", ylabel="revenue per send")
    ax.legend()
    ax.grid(alpha=0.3)
    _by_day(ax, days)
    fig.autofmt_xdate()
    return _png(fig)


def plot_creative_share(a: AccountReport) -> bytes | None:
    """Stacked shares of the automated sends per day."""
    if not a.share_by_day:
        return None
    names = sorted({c for _, shares in a.share_by_day for c in shares})
    days = np.array([d for d, _ in a.share_by_day], dtype="datetime64[D]")
    stack = np.array([[shares.get(c, 0.0) for _, shares in a.share_by_day] for c in names])
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    if len(days) == 1:
        below = np.cumsum(stack[:, 0]) - stack[:, 0]
        for c, (share, base) in enumerate(zip(stack[:, 0], below, strict=True)):
            ax.bar([str(days[0])], [share], bottom=[base], label=names[c])
    else:
        ax.stackplot(days, stack, labels=names, alpha=0.9)
        _by_day(ax, days)
        fig.autofmt_xdate()
    ax.set(title=f"{a.account_id}: creative share of automated sends", ylabel="share", ylim=(0, 1))
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    return _png(fig)


def plot_ope(a: AccountReport) -> bytes | None:
    """Off-policy estimates per target policy and estimator, with bootstrap intervals."""
    rows = [(f"{v.policy} / {name}", e) for v in a.ope for name, e in v.estimates.items()
            if math.isfinite(e.value)]  # fmt: skip
    if not rows:
        return None
    fig = Figure(figsize=(SIZE[0], 1.2 + 0.35 * len(rows)))
    ax = fig.add_subplot()
    rates = [Rate(e.value, e.low, e.high) for _, e in rows]
    ax.errorbar([r.value for r in rates], range(len(rows)), xerr=_errors(rates), fmt="o", capsize=4)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    auto = a.arm("automated")
    if auto is not None and a.ope:
        observed = auto.click_rate if a.ope[0].reward == "clicks" else auto.revenue_per_send
        ax.axvline(observed.value, color=ARM_COLORS["automated"], linestyle="--", label="logged")
        ax.legend(loc="best")
    ax.invert_yaxis()
    ax.set(title=f"{a.account_id}: off-policy value per send (95% bootstrap intervals)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


PLOTS: dict[str, Callable[[AccountReport], bytes | None]] = {
    "lift": plot_lift,
    "methods": plot_methods,
    "days": plot_days,
    "creative_share": plot_creative_share,
    "creatives": plot_creatives,
    "ope": plot_ope,
}


def plot_section(account_id: str, section: Section) -> bytes | None:
    """A section's figures with their 95% intervals (None: no finite figure)."""
    rows = [i for i in section.intervals if math.isfinite(i.value)]
    if not rows:
        return None
    fig = Figure(figsize=(SIZE[0], 1.4 + 0.4 * len(rows)))
    ax = fig.add_subplot()
    rates = [Rate(i.value, i.low, i.high) for i in rows]
    ax.errorbar([r.value for r in rates], range(len(rows)), xerr=_errors(rates), fmt="o", capsize=4)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [i.name.replace("_", " ") for i in rows])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.set(title=f"{account_id}: {section.title.lower()} (95% intervals)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def section_plots(account_id: str, sections: Sequence[Section]) -> dict[str, bytes]:
    """A plot per section with figures, by the section's key."""
    out = {}
    for section in sections:
        png = plot_section(account_id, section)
        if png is not None:
            out[section.key] = png
    return out


def account_plots(a: AccountReport) -> dict[str, bytes]:
    """Every plot of the account that has something to show, by name."""
    out = {}
    for name, plot in PLOTS.items():
        png = plot(a)
        if png is not None:
            out[name] = png
    return out | section_plots(a.account_id, a.sections)
