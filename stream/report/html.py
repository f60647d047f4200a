"""The live report as one self-contained HTML page: inline CSS, plots as base64 PNG data
URIs, no external resource of any kind.

Stable hooks for people and tests: each account is a `section.account` (`data-account`
holds its id); in it `table.lift-table`, `table.method-table`, `table.creative-table`,
`table.day-table`, `table.split-table`, `table.pool-table`, and one `img.plot` per plot
(`data-plot` names it). Ids are those classes followed by the account's position
(`lift-table-0`, `plot-0-lift`). An optional section is a `table.<key>-table`
(`sendtime-table`, `model-table`) with its notes and, where it has figures, a plot
named by its key. An account with sections only (no reported selection sends) is a
`section.other-account`, numbered after the accounts. A small inline script marks each plot
`data-loaded="true"` once the browser has decoded it, and shows a warning if one failed.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape

from selector.live_groups import Group
from selector.live_report import AccountReport, LiveReport
from selector.live_sections import AccountSections, Section
from stream.report.text import coverage_text, lift_text, pct, rate_text, split_text, when

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:0.5em 0 1em}
th,td{padding:0.25em 0.7em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}
.headline{font-size:1.15em;font-weight:600}.bad{color:#b00020;font-weight:600}
.ok{color:#1b7f3b}img.plot{display:block;max-width:100%;margin:1em 0}
#plot-warning{display:none;color:#b00020}
"""
SCRIPT = """
window.addEventListener('load', function () {
  var plots = document.querySelectorAll('img.plot'), failed = 0;
  plots.forEach(function (img) {
    var ok = img.complete && img.naturalWidth > 0;
    img.dataset.loaded = ok ? 'true' : 'false';
    if (!ok) { failed += 1; }
  });
  document.body.dataset.plotsLoaded = String(plots.length - failed);
  if (failed) {
    var w = document.getElementById('plot-warning');
    w.textContent = failed + ' plot(s) could not be shown.';
    w.style.display = 'block';
  }
});
"""
GROUP_HEAD = ("", "sends", "contacts", "click rate", "conversions per click", "revenue per send")


def _table(css: str, n: int, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    head_row = f"<thead><tr>{th}</tr></thead>"
    return f'<table id="{css}-{n}" class="{css}">{head_row}<tbody>{body}</tbody></table>'


def _group_cells(g: Group) -> list[str]:
    return [
        escape(g.name), f"{g.sends:,}", f"{g.contacts:,}", escape(rate_text(g.click_rate)),
        escape(rate_text(g.conversion_rate)), escape(rate_text(g.revenue_per_send, True)),
    ]  # fmt: skip


def _lift_table(a: AccountReport, n: int) -> str:
    auto, control = a.arm("automated"), a.arm("control")
    rows = []
    for label, lift, money in (("click rate", a.click_lift, False),
                               ("conversions per click", a.conversion_lift, False),
                               ("revenue per send", a.rps_lift, True)):  # fmt: skip
        fmt = (lambda x: f"${x:,.3f}" if math.isfinite(x) else "n/a") if money else pct
        css = "ok" if lift.excludes_zero and lift.low > 0 else "bad" if lift.excludes_zero else ""
        rows.append([label, fmt(lift.treatment), fmt(lift.control),
                     f'<span class="{css}">{escape(lift_text(lift))}</span>'])  # fmt: skip
    sends = [f"{g.sends:,}" if g else "0" for g in (auto, control)]
    rows.append(["sends", *sends, ""])
    return _table("lift-table", n, ("", "automated", "control", "lift [95% CI]"), rows)


def _method_table(a: AccountReport, n: int) -> str:
    rows = [
        [*_group_cells(g), "" if g.name == "default" else escape(lift_text(lift))]
        for g, lift in zip(a.methods, a.method_lifts, strict=True)
    ]
    return _table("method-table", n, (*GROUP_HEAD, "RPS lift over control"), rows)


def _pool_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{pool} {n:,}" for pool, n in counts.items())


def _other_tables(a: AccountReport, n: int) -> list[str]:
    creatives = _table("creative-table", n, GROUP_HEAD, [_group_cells(g) for g in a.creatives])
    day_rows = [
        [d.day, f"{sum(g.sends for g in d.arms):,}", escape(lift_text(d.click_lift)),
         escape(lift_text(d.rps_lift))]
        for d in a.days
    ]  # fmt: skip
    days = _table("day-table", n, ("day (UTC)", "sends", "click lift", "RPS lift"), day_rows)
    split_rows = [[escape(s.campaign_id), f'<span class="{"bad" if s.mismatch else ""}">'
                   f"{escape(split_text(s))}</span>"] for s in a.split]  # fmt: skip
    split = _table("split-table", n, ("campaign", "sample-ratio test"), split_rows)
    pool_rows = [
        [escape(p.creative_id), p.state, escape(_pool_counts(p.sends_by_pool)),
         "" if p.first_scored is None else when(p.first_scored)]
        for p in a.pools
    ]  # fmt: skip
    pools = _table(
        "pool-table", n, ("creative", "state", "automated sends", "first scored"), pool_rows
    )
    return [
        "<h3>By creative</h3>", creatives, "<h3>By day</h3>", days,
        "<h3>Control split</h3>", split,
        f"<h3>Learning pool ({pct(a.learning_share)} of automated sends)</h3>", pools,
        *_ope_table(a, n), *_sections(a, n),
    ]  # fmt: skip


def _ope_table(a: AccountReport, n: int) -> list[str]:
    if not a.ope:
        return []
    rows = [
        [escape(v.policy), name, f"{e.value:.4f}", f"[{e.low:.4f}, {e.high:.4f}]",
         f"{e.effective_sample_size:,.0f} of {e.rows:,}"]
        for v in a.ope for name, e in v.estimates.items()
    ]  # fmt: skip
    head = ("target policy", "estimator", f"{a.ope[0].reward} per send", "95% bootstrap",
            "effective sample size")  # fmt: skip
    notes = [
        f'<p class="ope-coverage">{escape(v.policy)}: {escape(coverage_text(v.coverage))}</p>'
        for v in a.ope
        if v.coverage is not None
    ]
    return ["<h3>Off-policy estimates</h3>", _table("ope-table", n, head, rows), *notes]


def _sections(a: AccountReport | AccountSections, n: int) -> list[str]:
    """The optional sections (model, send-time), each a table with its notes."""
    return _section_tables(a.sections, n)


def _section_tables(sections: Sequence[Section], n: int) -> list[str]:
    out: list[str] = []
    for s in sections:
        rows = [[escape(c) for c in row] for row in s.rows]
        out += [f"<h3>{escape(s.title)}</h3>", _table(f"{s.key}-table", n, s.head, rows)]
        out += [f'<p class="{s.key}-note">{escape(note)}</p>' for note in s.notes]
    return out


def _plots(plots: Mapping[str, bytes], n: int) -> list[str]:
    return [
        f'<img id="plot-{n}-{name}" class="plot" data-plot="{name}" alt="{name} plot" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for name, png in plots.items()
    ]


def _section(a: AccountReport, n: int, plots: Mapping[str, bytes]) -> str:
    parts = [
        f'<section class="account" id="account-{n}" data-account="{escape(a.account_id)}">',
        f"<h2>{escape(a.account_id)}</h2>",
        f"<p>{a.sends:,} sends to {a.contacts:,} contacts, {when(a.first_send)} to "
        f"{when(a.last_send)}</p>",
        f'<p class="headline">{escape(a.headline())}</p>',
        "<h3>Automated vs control</h3>", _lift_table(a, n),
        _table("arm-table", n, GROUP_HEAD, [_group_cells(g) for g in a.arms]),
        "<h3>By method</h3>", _method_table(a, n), *_other_tables(a, n),
        "<h3>Plots</h3>", *_plots(plots, n), "</section>",
    ]  # fmt: skip
    return "\n".join(parts)


def _other(o: AccountSections, n: int, plots: Mapping[str, bytes]) -> str:
    parts = [
        f'<section class="other-account" id="account-{n}" data-account="{escape(o.account_id)}">',
        f"<h2>{escape(o.account_id)}</h2>", "<p>No reported selection sends.</p>",
        *_sections(o, n), *_plots(plots, n), "</section>",
    ]  # fmt: skip
    return "\n".join(parts)


def _excluded(report: LiveReport) -> str:
    rows = [[k, f"{n:,}"] for k, n in report.records.items()]
    for title, table in (("undecodable", report.undecodable), ("left out", report.unmatched)):
        rows += [
            [f"{title}: {k} / {r}", f"{n:,}"] for k, rs in table.items() for r, n in rs.items()
        ]
    if report.unknown_records:
        rows.append(["unknown records", f"{report.unknown_records:,}"])
    return _table("records-table", 0, ("records", "count"), rows)


def render_page(report: LiveReport, plots: Sequence[Mapping[str, bytes]], title: str) -> str:
    """The page; `plots[i]` holds account i's PNGs by name (the accounts, then the
    other accounts)."""
    named = len(report.accounts)
    mine = zip(report.accounts, plots[:named], strict=True)
    sections = [_section(a, i, p) for i, (a, p) in enumerate(mine)]
    others = zip(report.other_accounts, plots[named:], strict=True)
    sections += [_other(o, named + i, p) for i, (o, p) in enumerate(others)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>", '<p id="plot-warning"></p>',
        *(sections or ["<p>No reported sends.</p>"]),
        "<h2>Records read and left out</h2>", _excluded(report),
        f"<script>{SCRIPT}</script>", "</body></html>",
    ])  # fmt: skip
