"""`python -m stream.sendtime.simulate SCENARIO`: simulate send-time optimization and
measure it, printing the report, optionally writing JSON and plots.

The file is checked against `schemas/sendtime_scenario.v1.schema.json` first (every
error, each naming its field), then parsed by `selector.sendtime.scenario`, which adds
the checks a schema cannot express. Two experiments are run from the same seed: the
standard one and the launch-alignment one.
"""

from __future__ import annotations

import os

# The prior's EM uses matrix products; BLAS threads would only spin next to the
# single-threaded decisions. Must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import yaml

from selector.domain import ConfigError
from selector.sendtime.report import SendTimeReport, build_report
from selector.sendtime.scenario import SendTimeScenario, sendtime_scenario_from_dict
from selector.sendtime.simulate import simulate

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "sendtime_scenario.v1.schema.json"
MAX_ERRORS = 10
EXAMPLES = """\
examples:
  python -m stream.sendtime.simulate scenarios/sendtime_pitfall.yaml
  python -m stream.sendtime.simulate scenarios/sendtime_pitfall.yaml --seed 3 \\
      --json out/sendtime.json --plots out/sendtime

The scenario format is documented field by field in
schemas/sendtime_scenario.v1.schema.json; scenarios/sendtime_pitfall.yaml is a worked
example. Exit status: 0 on success, 2 for a bad scenario file."""


class ScenarioFileError(Exception):
    """A scenario file that cannot be read, parsed or validated; the message says why."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stream.sendtime.simulate",
        description=(
            "Simulate daily campaigns whose optimized group is sent at each contact's best\n"
            "local-time slot (Thompson sampling over slot posteriors) and whose control group\n"
            "is sent at launch. Report the true uplift, the naive comparison by campaign day\n"
            "(fooled by weekday effects), and the same-weekday, weekly and launch-alignment\n"
            "estimates with 95% intervals."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", metavar="SCENARIO", type=Path, help="YAML or JSON scenario file")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's, else 0)")
    p.add_argument("--json", metavar="OUT", type=Path, help="also write the report as JSON")
    p.add_argument("--plots", metavar="DIR", type=Path, help="also write PNG plots into DIR")
    return p


def load_scenario(path: Path) -> SendTimeScenario:
    """Read, schema-check and parse a scenario file; raises `ScenarioFileError`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioFileError(f"{path}: not valid JSON or YAML: {exc}") from None
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [
            f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in errors[:MAX_ERRORS]
        ]
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise ScenarioFileError(
            f"{path}: does not match {SCHEMA.name}:\n" + "\n".join(lines) + more
        )
    try:
        return sendtime_scenario_from_dict(doc, name=path.stem)
    except ConfigError as exc:
        raise ScenarioFileError(f"{path}: {exc}") from None


def run(scenario: SendTimeScenario, seed: int | None) -> SendTimeReport:
    standard = simulate(scenario, seed)
    aligned = simulate(scenario, seed, aligned=True)
    return build_report(standard, aligned, scenario.min_week_days)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = run(scenario, args.seed)
    print(report.format_table())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plots:
        from stream.sendtime.plots import write_plots

        for path in write_plots(report, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
