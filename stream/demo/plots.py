"""PNG plots of simulation reports, for where a person would rather look than read.

Uses matplotlib's object API (`Figure`, rendered by the Agg canvas) rather than pyplot,
so no global figure state and no display are involved: safe in tests, CI and servers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from selector.domain import DAY_SECONDS
from selector.report import Report

DPI = 110
SIZE = (9.0, 4.8)


def _bucket_days(report: Report) -> tuple[np.ndarray, np.ndarray]:
    """Bucket start and end times in days."""
    starts = np.asarray(report.timeline.starts) / DAY_SECONDS
    width = float(starts[1] - starts[0]) if starts.size > 1 else 1.0
    return starts, starts + width


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def plot_creative_share(report: Report, path: Path) -> Path:
    """Stacked area: each creative's share of the automated arm's sends over time."""
    starts, ends = _bucket_days(report)
    share = np.nan_to_num(np.asarray(report.timeline.creative_share, dtype=float)).T
    # repeat the last bucket at its end so the final step is drawn full width
    edges, share = np.append(starts, ends[-1]), np.column_stack([share, share[:, -1]])
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    ax.stackplot(edges, share, labels=report.creative_ids, step="post", alpha=0.9)
    ax.set(
        title=f"{report.scenario}: creative share of automated sends",
        xlabel="simulated time (days)",
        ylabel="share of sends",
        ylim=(0, 1),
        xlim=(edges[0], edges[-1]),
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    return _save(fig, path)


def plot_regret(runs: Sequence[tuple[str, Report]], path: Path) -> Path:
    """Cumulative regret of the automated arm, one line per run (e.g. forgetting on/off)."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    for label, report in runs:
        _, ends = _bucket_days(report)
        ax.plot(ends, report.timeline.cumulative_regret, label=f"{label} ({report.regret:,.0f})")
    unit = "clicks" if runs and runs[0][1].goal == "clicks" else "revenue"
    name = runs[0][1].scenario if runs else ""
    ax.set(
        title=f"{name}: cumulative regret against the oracle",
        xlabel="simulated time (days)",
        ylabel=f"expected {unit} lost",
    )
    ax.legend(title="run (total regret)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_rps_by_arm(report: Report, path: Path) -> Path:
    """Revenue per send per arm over time, with the oracle's average as a reference."""
    starts, ends = _bucket_days(report)
    middle = (starts + ends) / 2
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    for arm, rps in report.timeline.rps_by_arm.items():
        values = [math.nan if v is None else v for v in rps]
        ax.plot(middle, values, marker=".", label=arm)
    if report.goal == "revenue":
        ax.axhline(report.oracle_value, color="grey", linestyle="--", label="oracle (average)")
    ax.set(
        title=f"{report.scenario}: revenue per send by arm",
        xlabel="simulated time (days)",
        ylabel="revenue per send",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def write_plots(
    report: Report, directory: Path, compare: Sequence[tuple[str, Report]] = ()
) -> list[Path]:
    """All three plots into `directory`; `compare` overlays other runs on the regret plot."""
    directory.mkdir(parents=True, exist_ok=True)
    runs = list(compare) or [("this run", report)]
    return [
        plot_creative_share(report, directory / "creative_share.png"),
        plot_regret(runs, directory / "regret.png"),
        plot_rps_by_arm(report, directory / "rps_by_arm.png"),
    ]
