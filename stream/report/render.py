"""The live report for people: terminal tables, JSON, PNG plots, one HTML page.

`format_tables` and `to_json` return text; `write_plots` writes each account's PNGs into
a directory; `render_html` returns the self-contained page (plots embedded) and
`write_html` writes it. A report on many accounts renders each in turn.

Examples
--------
>>> from selector.live_report import report_from_records
>>> report = report_from_records([])
>>> print(format_tables(report))
No reported sends.
Records read: selection_response 0, send 0, click 0, conversion 0
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from selector.live_report import LiveReport
from stream.report.html import render_page
from stream.report.plots import account_plots, section_plots
from stream.report.text import format_tables

__all__ = ["format_tables", "render_html", "to_json", "write_html", "write_plots"]
TITLE = "Creative selection: live report"


def to_json(report: LiveReport) -> str:
    """Strict JSON (NaN as null), indented."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def _file_part(account_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", account_id)[:80] or "account"


def write_plots(report: LiveReport, directory: Path) -> list[Path]:
    """Each account's plots as `<account>_<plot>.png` in `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    plots = [(a.account_id, account_plots(a)) for a in report.accounts]
    for o in report.other_accounts:
        plots.append((o.account_id, section_plots(o.account_id, o.sections)))
    for account_id, pngs in plots:
        for name, png in pngs.items():
            path = directory / f"{_file_part(account_id)}_{name}.png"
            path.write_bytes(png)
            paths.append(path)
    return paths


def render_html(report: LiveReport, title: str = TITLE) -> str:
    """One self-contained HTML page (see `stream.report.html`)."""
    plots = [account_plots(a) for a in report.accounts]
    plots += [section_plots(o.account_id, o.sections) for o in report.other_accounts]
    return render_page(report, plots, title)


def write_html(report: LiveReport, path: Path, title: str = TITLE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, title), encoding="utf-8")
    return path
