"""PNG plots of a send-time report: the naive campaign-day comparison (the weekday
pattern), the estimates with their intervals against the truth, and slot shares.

matplotlib's object API (`Figure` on the Agg canvas), as in `stream.plots`: no pyplot
state, no display.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from selector.sendtime.report import WEEKDAYS, SendTimeReport

DPI = 110
SIZE = (9.0, 4.8)
WEEKEND = "#d9822b"
WEEKDAY = "#2b6cb0"


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def plot_naive_by_day(report: SendTimeReport, path: Path) -> Path:
    """Lift of the optimized group per campaign day with 95% intervals, coloured by the
    launch weekday (Friday to Sunday launches are delivered into the weekend), against
    the true uplift: the pattern the seed's chart showed."""
    days = report.per_launch
    x = np.arange(len(days))
    lift = np.array([d.lift for d in days])
    err = np.array([[d.lift - d.low for d in days], [d.high - d.lift for d in days]])
    colours = [WEEKEND if d.weekday >= 4 else WEEKDAY for d in days]
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    ax.bar(x, lift, color=colours, alpha=0.8)
    ax.errorbar(x, lift, yerr=err, fmt="none", ecolor="black", capsize=3, linewidth=1)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if not math.isnan(report.true_uplift):
        ax.axhline(report.true_uplift, color="green", linestyle="--", label="true uplift")
        ax.legend(loc="upper left")
    ax.set_xticks(x, [f"{i + 1}\n{WEEKDAYS[d.weekday]}" for i, d in enumerate(days)])
    ax.set(
        title=f"{report.scenario}: optimized vs control by campaign day (naive)",
        xlabel="campaign day (launch weekday)",
        ylabel="lift of the optimized group",
    )
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_estimates(report: SendTimeReport, path: Path) -> Path:
    """Each method's lift with its 95% interval, and the truth over the same sends."""
    estimates = report.estimates
    y = np.arange(len(estimates))[::-1]
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    for row, e in zip(y, estimates, strict=True):
        ok = e.truth is not None and e.contains(e.truth)
        colour = "green" if ok else "red"
        ax.errorbar(
            e.lift, row, xerr=[[e.lift - e.low], [e.high - e.lift]], fmt="o", color=colour,
            capsize=4,
        )  # fmt: skip
        if e.truth is not None:
            ax.plot(e.truth, row, marker="|", color="black", markersize=18)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(y, [e.method.replace("_", " ") for e in estimates])
    ax.set(
        title=f"{report.scenario}: lift estimates (95% CI); | marks the true uplift",
        xlabel="lift of the optimized group over the control",
    )
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_slot_share(report: SendTimeReport, path: Path) -> Path:
    """Share of each group's sends per local slot."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    groups = list(report.slot_share)
    slots = len(next(iter(report.slot_share.values()), ()))
    width = 0.8 / max(len(groups), 1)
    hours = 24 / max(slots, 1)
    x = np.arange(slots)
    for i, group in enumerate(groups):
        ax.bar(
            x + (i - (len(groups) - 1) / 2) * width, report.slot_share[group], width, label=group
        )
    ax.set_xticks(x, [f"{int(s * hours):02d}" for s in range(slots)])
    ax.set(
        title=f"{report.scenario}: sends by local slot",
        xlabel="slot start (local hour)",
        ylabel="share of the group's sends",
    )
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def write_plots(report: SendTimeReport, directory: Path) -> list[Path]:
    """The three plots into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        plot_naive_by_day(report, directory / "naive_by_day.png"),
        plot_estimates(report, directory / "estimates.png"),
        plot_slot_share(report, directory / "slot_share.png"),
    ]
