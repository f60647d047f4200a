"""Optional report sections: the model method's, when its decisions are there; send-time
results from estimates; added per account."""

from __future__ import annotations

import doctest
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

from selector import live_sections
from selector.live_report import report_from_records, with_sections
from selector.live_sections import sendtime_section
from tests.selector.test_live_report import T0, Click, Response, Send


@dataclass(frozen=True)
class ModelResponse(Response):
    model_version: int | None = None


def model_log() -> list[Any]:
    """Four model decisions at params versions 7, 7, 9, 12 (model versions 2, 2, 3 and
    none); two control sends; clicks on two model sends and one control send."""
    out: list[Any] = []
    for n, (arm, method, version) in enumerate(
        [("automated", "model", 7), ("automated", "model", 7), ("automated", "model", 9),
         ("automated", "model", 12), ("control", "default", 3), ("control", "default", 3)]
    ):  # fmt: skip
        pool = "scored" if arm == "automated" else "control"
        out += [
            ModelResponse(
                f"r{n}",
                "a",
                "camp",
                "x",
                arm,
                method,
                pool,
                "none",
                0.5,
                version,
                T0 + n,
                (2, 2, 3, None, None, None)[n],
            ),
            Send(f"s{n}", "a", "camp", f"c{n}", "x", T0 + n + 1, f"r{n}"),
        ]
    out += [Click(f"k{n}", "a", f"c{n}", "x", T0 + 99, f"s{n}") for n in (0, 2, 4)]
    return out


def test_the_module_example_runs() -> None:
    assert doctest.testmod(live_sections).failed == 0


def test_a_model_section_appears_with_model_decisions_and_their_versions() -> None:
    (section,) = report_from_records(model_log()).accounts[0].sections
    assert section.key == "model" and section.head[0] == "sends"
    (row,) = section.rows
    assert row[:2] == ("4", "50.0%")
    assert section.notes == (
        "model versions seen: 2, 3 (2 distinct)",
        "params versions seen: 7, 9, 12 (3 distinct)",
    )


def test_responses_without_model_versions_say_so() -> None:
    plain = [r if not isinstance(r, ModelResponse) else Response(*vars_of(r)) for r in model_log()]
    (section,) = report_from_records(plain).accounts[0].sections
    assert section.notes[0] == "model versions seen: none in the responses"


def vars_of(r: ModelResponse) -> list[Any]:
    return [getattr(r, f.name) for f in fields(Response)]


def test_no_model_decisions_no_section() -> None:
    records = [r for r in model_log() if getattr(r, "method", "") != "model"]
    assert report_from_records(records).accounts[0].sections == ()


def test_send_time_results_are_added_per_account() -> None:
    estimate = SimpleNamespace(
        method="weekly", strata=14, lift=-0.031, low=-0.09, high=0.02,
        optimized_rate=0.0512, control_rate=0.0528,
    )  # fmt: skip
    section = sendtime_section([estimate], sends=12_000, aligned=300)
    assert section is not None
    assert section.rows == (("weekly", "14", "-3.1%", "[-9.0%, +2.0%]", "5.12%", "5.28%"),)
    assert section.notes == ("12,000 sends in standard launches, 300 in aligned ones",)
    assert sendtime_section([], sends=0) is None
    report = with_sections(report_from_records(model_log()), {"a": [section], "b": [section]})
    assert [s.key for s in report.accounts[0].sections] == ["model", "sendtime"]
