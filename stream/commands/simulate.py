"""`creative-select simulate`: run a scenario, print the report, write JSON and plots.

The file is checked against `schemas/scenario.v1.schema.json` first (every error, each
naming its field), then parsed by `selector.scenario`, which adds the checks a schema
cannot express. The core stays free of tqdm: the progress bar is a callback passed in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from tqdm import tqdm

from selector.domain import DAY_SECONDS, ConfigError
from selector.report import Report, build_report
from selector.scenario import Scenario, scenario_from_dict
from selector.simulate import SimulationResult, simulate

SCHEMA = resources.files("stream.schemas") / "scenario.v1.schema.json"
MAX_ERRORS = 10
EXAMPLE = """\
examples:
  creative-select simulate scenarios/product.yaml
  creative-select simulate scenarios/product.yaml --seed 7 --json out/product.json \\
      --plots out/product
  creative-select simulate scenarios/drift.yaml --compare-forgetting --plots out/drift
  creative-select simulate scenarios/sendtime_pitfall.yaml --plots out/sendtime

(or `python -m stream.cli simulate ...`). The scenario format is documented field by
field in schemas/scenario.v1.schema.json; scenarios/ holds worked examples."""


class ScenarioFileError(Exception):
    """A scenario file that cannot be read, parsed or validated; the message says why."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a scenario and report automated vs control lift and regret",
        description=(
            "Simulate sends against a scenario's true click and conversion rates, deciding "
            "with the real selector, and report per arm, method and creative: click rate, "
            "revenue per send, the lift of automated over control with 95% intervals, and "
            "regret against an oracle that knows the true rates."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", metavar="SCENARIO", type=Path, help="YAML or JSON file")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write the report as JSON")
    parser.add_argument("--plots", metavar="DIR", type=Path, help="write PNG plots into DIR")
    parser.add_argument(
        "--compare-forgetting",
        action="store_true",
        help="also run without the account's half_life_seconds and compare the regrets",
    )
    parser.set_defaults(func=run)


def load_scenario(path: Path) -> Scenario:
    """Read, schema-check and parse a scenario file; raises `ScenarioFileError`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioFileError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_field(e.absolute_path)}: {e.message}" for e in errors[:MAX_ERRORS]]
        more = len(errors) - MAX_ERRORS
        lines += [f"  ... and {more} more"] if more > 0 else []
        raise ScenarioFileError("\n".join([f"{path}: invalid scenario:", *lines]))
    try:
        return scenario_from_dict(doc, name=path.stem)
    except ConfigError as exc:
        raise ScenarioFileError(f"{path}: invalid scenario: {exc}") from None


def _field(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(document)"


def _run_once(scenario: Scenario, seed: int, label: str) -> tuple[SimulationResult, float]:
    with tqdm(
        total=scenario.sends, desc=label, unit="send", unit_scale=True, file=sys.stderr
    ) as bar:

        def advance(done: int, total: int) -> None:
            bar.update(done - bar.n)

        started = time.perf_counter()
        result = simulate(scenario, seed, progress=advance)
    return result, time.perf_counter() - started


def _is_send_time(path: Path) -> bool:
    """A send-time scenario (`kind: sendtime`, schemas/sendtime_scenario.v1.schema.json)."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return False  # load_scenario says what is wrong
    return isinstance(doc, dict) and doc.get("kind") == "sendtime"


def run(args: argparse.Namespace) -> int:
    if _is_send_time(args.scenario):
        from stream.sendtime.simulate import main as simulate_send_times

        argv = [str(args.scenario)] + (["--seed", str(args.seed)] if args.seed is not None else [])
        argv += ["--json", str(args.json)] if args.json else []
        return simulate_send_times(argv + (["--plots", str(args.plots)] if args.plots else []))
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    half_life = scenario.account.settings.half_life_seconds
    if args.compare_forgetting and half_life is None:
        print(
            f"error: {args.scenario}: --compare-forgetting needs settings.half_life_seconds "
            "in the scenario (the run with forgetting)",
            file=sys.stderr,
        )
        return 2
    result, seconds = _run_once(scenario, args.seed, scenario.name)
    report = build_report(result)
    print(report.format_table())
    print(f"simulated {len(result):,} sends in {seconds:.1f} s")
    output: dict[str, Any] = {**report.to_dict(), "wall_seconds": seconds}
    runs: list[tuple[str, Report]] = []
    if args.compare_forgetting and half_life is not None:
        runs = _compare_forgetting(scenario, args.seed, report, half_life)
        output["without_forgetting"] = runs[1][1].to_dict()
    _write_outputs(args, output, report, runs)
    return 0


def _compare_forgetting(
    scenario: Scenario, seed: int, report: Report, half_life: float
) -> list[tuple[str, Report]]:
    """Run again without the half-life (same seed) and print both regrets."""
    plain, _ = _run_once(scenario.without_forgetting(), seed, "no forgetting")
    baseline = build_report(plain)
    print(_comparison_text(report, baseline, half_life))
    return [(f"half-life {_duration(half_life)}", report), ("no forgetting", baseline)]


def _write_outputs(
    args: argparse.Namespace,
    output: dict[str, Any],
    report: Report,
    runs: list[tuple[str, Report]],
) -> None:
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(output, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plots is not None:
        for png in _write_plots(report, args.plots, runs):
            print(f"wrote {png}")


def _comparison_text(forgetting: Report, plain: Report, half_life: float) -> str:
    change = forgetting.regret / plain.regret - 1.0 if plain.regret > 0 else float("nan")
    return (
        f"Regret with forgetting (half-life {_duration(half_life)}): {forgetting.regret:,.2f}; "
        f"without: {plain.regret:,.2f} ({change:+.1%} with forgetting)"
    )


def _write_plots(report: Report, directory: Path, runs: list[tuple[str, Report]]) -> list[Path]:
    """Import matplotlib only when plots are asked for: it is slow to import."""
    from stream.demo.plots import write_plots

    return write_plots(report, directory, runs)


def _duration(seconds: float) -> str:
    if seconds >= DAY_SECONDS:
        return f"{seconds / DAY_SECONDS:g} d"
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
