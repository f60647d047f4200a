"""The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by
scripts/setup) loads the page from a file, runs its script, and dumps the DOM; the lift
table, the per-method table and every plot must be there, each plot decoded by the
browser. A screenshot of the page is written next to it."""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from selector.live_report import LiveReport, ReportOptions, report_from_records, with_sections
from selector.live_sections import sendtime_section
from stream.report import write_html
from stream.report.plots import account_plots
from tests.stream.report.demo_topics import click_payouts, product_run, simulated_topics

pytestmark = pytest.mark.browser
FLAGS = (
    "--headless",
    "--no-sandbox",  # the test may run as root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
)
WINDOW = (1280, 3000)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install -y chromium (scripts/setup does)"
    return found


def run_chromium(profile: Path, *args: str) -> str:
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return done.stdout


class Elements(HTMLParser):
    """Every element's tag and attributes, and the rows of each table body by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, int] = {}
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id")
        elif tag == "tr" and self._table is not None:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1

    def find(self, tag: str, css: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and css in (a.get("class") or "").split()]


def rendered_dom(page: Path, profile: Path) -> Elements:
    dom = run_chromium(profile, "--virtual-time-budget=15000", "--dump-dom", page.as_uri())
    parsed = Elements()
    parsed.feed(dom)
    return parsed


@pytest.fixture(scope="module")
def report() -> LiveReport:
    scenario, result = product_run(sends=6000, seed=2)
    topics = simulated_topics(scenario, result)
    return report_from_records(topics, ReportOptions(click_payouts=click_payouts(scenario)))


def test_lift_table_method_table_and_every_plot_load_in_chromium(
    report: LiveReport, tmp_path: Path
) -> None:
    page = write_html(report, tmp_path / "report.html")
    dom = rendered_dom(page, tmp_path / "profile")
    expected = list(account_plots(report.accounts[0]))
    assert len(expected) >= 5
    (body,) = [a for t, a in dom.elements if t == "body"]
    assert body.get("data-plots-loaded") == str(len(expected))
    plots = dom.find("img", "plot")
    assert [p["data-plot"] for p in plots] == expected
    assert all(p.get("data-loaded") == "true" for p in plots)
    assert [t["id"] for t in dom.find("table", "lift-table")] == ["lift-table-0"]
    assert [t["id"] for t in dom.find("table", "method-table")] == ["method-table-0"]
    # header + click rate, conversions per click, RPS and sends; header + one row per method
    assert dom.rows["lift-table-0"] == 5
    assert dom.rows["method-table-0"] == 1 + len(report.accounts[0].methods)


def test_a_screenshot_of_the_page_is_written(report: LiveReport, tmp_path: Path) -> None:
    page = write_html(report, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    width, height = WINDOW
    run_chromium(tmp_path / "profile", f"--window-size={width},{height}",
                 f"--screenshot={shot}", page.as_uri())  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, height)
    assert len(data) > 50_000  # tables and plots, not a blank page


def test_a_plot_the_browser_cannot_decode_is_flagged(report: LiveReport, tmp_path: Path) -> None:
    page = write_html(report, tmp_path / "report.html")
    text = page.read_text()
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    page.write_text(text[:start] + "bm90IGEgcG5n" + text[text.index('"', start) :])
    dom = rendered_dom(page, tmp_path / "profile")
    loaded = [p.get("data-loaded") for p in dom.find("img", "plot")]
    assert loaded[0] == "false" and set(loaded[1:]) == {"true"}
    (warning,) = [a for t, a in dom.elements if a.get("id") == "plot-warning"]
    assert "display: block" in (warning.get("style") or "")


def test_the_optional_sections_and_the_coverage_note_load_in_chromium(tmp_path: Path) -> None:
    from tests.stream.report.test_sections import ESTIMATE, sectioned

    only = sendtime_section([ESTIMATE], sends=10, counts={"answers": 10})
    assert only is not None  # an account with send-time results and no selection sends
    page = write_html(with_sections(sectioned(), {"st": [only]}), tmp_path / "sections.html")
    dom = rendered_dom(page, tmp_path / "profile")
    assert [t["id"] for t in dom.find("table", "model-table")] == ["model-table-0"]
    tables = ["sendtime-table-0", "sendtime-table-1"]
    assert [t["id"] for t in dom.find("table", "sendtime-table")] == tables
    assert dom.rows["model-table-0"] == 2 and dom.rows["sendtime-table-0"] == 2  # header + 1
    assert dom.find("p", "model-note") and dom.find("p", "sendtime-note")
    assert dom.find("p", "ope-coverage")
    (other,) = dom.find("section", "other-account")
    assert other["data-account"] == "st"
    loaded = {p["id"]: p.get("data-loaded") for p in dom.find("img", "plot")}
    assert loaded["plot-0-sendtime"] == loaded["plot-1-sendtime"] == "true"


def test_the_model_tables_load_in_chromium(tmp_path: Path) -> None:
    from tests.stream.report.test_sections import with_models

    page = write_html(with_models(), tmp_path / "models.html")
    dom = rendered_dom(page, tmp_path / "profile")
    assert [t["id"] for t in dom.find("table", "model_metrics-table")] == ["model_metrics-table-0"]
    assert dom.rows["model_metrics-table-0"] == 4  # header + versions 1, 2 and 3
    assert dom.rows["model_importances-table-0"] == 4  # header + the top three
    assert dom.find("p", "model_metrics-note") and dom.find("p", "model_importances-note")
