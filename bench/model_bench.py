"""The contextual `model` method: CPU per decision, training time, and held-out log loss
beside LightGBM's and the per-creative Beta rate's, in one run (DESIGN.md section 6).

A synthetic account (10 creatives over 3 offers, two custom fields) and its history: each
contact has a segment that shifts its click rate per creative, an engagement hour, and
the repeat-click habit, so the features carry signal. From that history:

- decisions: `Selector.decide_batch` on batches of 100 and 1,000 requests of contacts
  with real profiles, revenue goal, every creative past the learning threshold, so every
  decision is a model decision, propensity included (`decide`); the same with the
  profiles' stored bytes decoded inside the timed call (`decode+decide`); and Thompson
  single-step on the same batches (`thompson`). CPU microseconds per decision
  (`time.process_time`), median over repetitions run round-robin across the workloads,
  on one pinned core, one BLAS thread.
- training: the point-in-time replay of the events (`examples_from_events`) and the fit
  of both models (`train`), in CPU seconds per million events.
- quality: held-out (the most recent 20% of sends) click log loss and AUC of our click
  model, of LightGBM on the same features (contact features, creative and offer as
  categorical features, the two contact-creative features; one thread), and of each
  creative's Beta(1, 1) posterior mean click rate.

Run it as `python -m bench.model_bench [--quick] [--json PATH]`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: before numpy loads BLAS

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine_info, pinned
from bench.model_world import World, build_world
from selector import RequestBatch, Selector
from selector.model.metrics import auc, log_loss
from selector.model.record import records
from selector.model.train import TrainingConfig, train

DEFAULT_JSON = Path(__file__).parent / "results" / "model.json"
TARGET_US, TARGET_TRAIN_S = 10.0, 60.0


@dataclass(frozen=True, slots=True)
class ModelBenchConfig:
    events: int = 1_000_000
    batch_sizes: tuple[int, ...] = (100, 1000)
    repeats: int = 7
    min_seconds: float = 0.3
    pin_cpu: int | None = 0
    seed: int = 20240611


QUICK = {"events": 150_000, "repeats": 3, "min_seconds": 0.05}


@dataclass(slots=True)
class Timed:
    """A call timed in CPU (`time.process_time`) and wall time per unit."""

    name: tuple[str, int, str]
    call: Callable[[], object]
    units: int
    calls: int = 1
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def calibrate(self, min_seconds: float) -> None:
        for _ in range(3):
            self.call()
        while True:
            start = time.perf_counter()
            for _ in range(self.calls):
                self.call()
            if time.perf_counter() - start >= min_seconds:
                return
            self.calls *= 2

    def repeat(self) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(self.calls):
            self.call()
        self.cpu.append((time.process_time() - c0) / (self.calls * self.units) * 1e6)
        self.wall.append((time.perf_counter() - w0) / (self.calls * self.units) * 1e6)


def measure(timed: list[Timed], repeats: int, min_seconds: float) -> None:
    """Calibrate each, then run the repetitions round-robin across all of them, so a
    change in machine load during the run affects every workload alike."""
    for t in timed:
        t.calibrate(min_seconds)
    for _ in range(repeats):
        for t in timed:
            t.repeat()


def workloads(
    world: World, selector: Selector, plain: Selector, model: Any, n: int, seed: int
) -> list[tuple[str, Callable[[], object]]]:
    """The timed calls for one posterior kind and batch size."""
    rng = np.random.default_rng(seed)
    blobs = world.blobs[:n]
    ids, times, campaigns = world.contact_ids[:n], np.full(n, world.now), [world.campaign] * n
    batch = RequestBatch.from_columns(campaigns, ids, times, None, records(blobs)[0])

    def decide() -> object:
        return selector.decide_batch(world.stats, batch, rng, model=model)

    def decode_and_decide() -> object:
        fresh = RequestBatch.from_columns(campaigns, ids, times, None, records(blobs)[0])
        return selector.decide_batch(world.stats, fresh, rng, model=model)

    def thompson() -> object:
        return plain.decide_batch(world.stats, batch, rng)

    return [("decide", decide), ("decode+decide", decode_and_decide), ("thompson", thompson)]


def decision_rows(world: World, config: ModelBenchConfig) -> list[dict[str, Any]]:
    timed: list[Timed] = []
    for kind, model in (("diagonal", world.model_diagonal), ("full", world.model_full)):
        selector, plain = Selector(world.account), Selector(world.thompson_account)
        for n in config.batch_sizes:
            for mode, call in workloads(world, selector, plain, model, n, config.seed):
                if mode == "thompson" and kind == "full":
                    continue  # the same Thompson workload as for the diagonal model
                timed.append(Timed((kind, n, mode), call, n))
    measure(timed, config.repeats, config.min_seconds)
    return [
        {
            "posterior": t.name[0],
            "batch": t.name[1],
            "mode": t.name[2],
            "cpu_us": statistics.median(t.cpu),
            "wall_us": statistics.median(t.wall),
            "cpu_samples": t.cpu,
        }
        for t in timed
    ]


def training_row(world: World) -> dict[str, Any]:
    c0 = time.process_time()
    examples = world.replay()
    replay_s = time.process_time() - c0
    c1 = time.process_time()
    train(world.account, examples, world.fields, world.retention, 1, world.now,
          TrainingConfig(posterior="full"))  # fmt: skip
    fit_s = time.process_time() - c1
    per_million = 1e6 / world.event_count
    return {
        "events": world.event_count,
        "sends": len(examples),
        "replay_cpu_seconds": replay_s,
        "fit_cpu_seconds": fit_s,
        "replay_seconds_per_million_events": replay_s * per_million,
        "fit_seconds_per_million_events": fit_s * per_million,
        "total_seconds_per_million_events": (replay_s + fit_s) * per_million,
    }


def quality_rows(world: World) -> list[dict[str, Any]]:
    """Held-out click log loss and AUC: ours, LightGBM on the same features, Beta rates."""
    ex = world.examples
    fit_rows, held = ex.split(0.2)
    c0 = time.process_time()
    config = TrainingConfig(posterior="full", holdout="recent", holdout_fraction=0.2)
    model, _ = train(world.account, ex, world.fields, world.retention, 1, world.now, config)
    ours_s = time.process_time() - c0
    from selector.model.train import predicted

    p_ours, _ = predicted(model, world.account, held)
    lgb_p, lgb_s = _lightgbm(world, fit_rows, held)
    k = len(ex.creative_ids)
    sends = np.bincount(fit_rows.creative, minlength=k)
    clicks = np.bincount(fit_rows.creative, weights=fit_rows.clicked, minlength=k)
    p_beta = ((1.0 + clicks) / (2.0 + sends))[held.creative]
    y = held.clicked
    rate = float(y.mean())
    return [
        {"model": "ours (Bayesian logistic, Laplace)", "train_cpu_seconds": ours_s,
         "log_loss": log_loss(y, p_ours), "auc": auc(y, p_ours)},
        {"model": "LightGBM", "train_cpu_seconds": lgb_s,
         "log_loss": log_loss(y, lgb_p), "auc": auc(y, lgb_p)},
        {"model": "per-creative Beta rate", "train_cpu_seconds": 0.0,
         "log_loss": log_loss(y, p_beta), "auc": auc(y, p_beta)},
        {"model": "constant (base rate)", "train_cpu_seconds": 0.0,
         "log_loss": log_loss(y, np.full(y.size, rate)), "auc": 0.5},
    ]  # fmt: skip


def _lightgbm(world: World, fit_rows: Any, held: Any) -> tuple[Any, float]:
    import lightgbm as lgb

    def matrix(ex: Any) -> Any:
        offer = world.offer_code[np.asarray(ex.creative)]
        return np.column_stack([ex.raw, ex.creative, offer, ex.pair])

    width = fit_rows.raw.shape[1]
    params = {
        "objective": "binary", "learning_rate": 0.05, "num_leaves": 31,
        "min_data_in_leaf": 200, "num_threads": 1, "verbose": -1, "seed": 1,
    }  # fmt: skip
    data = lgb.Dataset(matrix(fit_rows), fit_rows.clicked, categorical_feature=[width, width + 1])
    c0 = time.process_time()
    booster = lgb.train(params, data, num_boost_round=300)
    seconds = time.process_time() - c0
    return booster.predict(matrix(held)), seconds


def run(config: ModelBenchConfig) -> dict[str, Any]:
    started = time.perf_counter()
    with pinned(config.pin_cpu):
        info = machine_info(("numpy", "lightgbm"))
        print(f"building a history of {config.events:,} events ...", file=sys.stderr)
        world = build_world(config.events, config.seed)
        print("decisions ...", file=sys.stderr)
        decisions = decision_rows(world, config)
        print("training ...", file=sys.stderr)
        training = training_row(world)
        print("quality ...", file=sys.stderr)
        quality = quality_rows(world)
    return {
        "benchmark": "model",
        "machine": info | {"pinned_to_cpu": config.pin_cpu,
                           "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")},
        "settings": asdict(config) | {"batch_sizes": list(config.batch_sizes)},
        "world": world.describe(),
        "seconds": time.perf_counter() - started,
        "decisions": decisions,
        "training": training,
        "quality": quality,
        "targets": targets(decisions, training),
    }  # fmt: skip


def targets(decisions: list[dict[str, Any]], training: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        {"name": f"{r['posterior']} posterior, batch {r['batch']}, {r['mode']}: CPU us/decision",
         "value": r["cpu_us"], "target": TARGET_US, "met": r["cpu_us"] <= TARGET_US}
        for r in decisions if r["mode"] != "thompson"
    ]  # fmt: skip
    value = training["total_seconds_per_million_events"]
    out.append({"name": "training CPU s per million events (replay + fit)", "value": value,
                "target": TARGET_TRAIN_S, "met": value <= TARGET_TRAIN_S})  # fmt: skip
    return out


def format_table(result: dict[str, Any]) -> str:
    m, w = result["machine"], result["world"]
    lines = [
        f"Model benchmark: {w['creatives']} creatives, {w['offers']} offers, {w['weights']} "
        f"weights per model (JSON {w['model_bytes']['diagonal']:,} bytes diagonal, "
        f"{w['model_bytes']['full']:,} full); stored profiles {w['profile_bytes']['mean']:.0f} "
        f"bytes on average; {m['cpu_model']}, pinned to CPU {m['pinned_to_cpu']}, "
        f"OPENBLAS_NUM_THREADS={m['openblas_threads']}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in m['load_average'])}",
        "",
        f"{'posterior':10}{'batch':>7}  {'mode':15}{'CPU us/decision':>17}{'wall us':>10}",
    ]
    for r in result["decisions"]:
        lines.append(f"{r['posterior']:10}{r['batch']:>7}  {r['mode']:15}"
                     f"{r['cpu_us']:>17.2f}{r['wall_us']:>10.2f}")  # fmt: skip
    t = result["training"]
    lines += [
        "",
        f"Training on {t['events']:,} events ({t['sends']:,} sends), CPU seconds per million "
        f"events: replay {t['replay_seconds_per_million_events']:.1f} + fit "
        f"{t['fit_seconds_per_million_events']:.1f} = {t['total_seconds_per_million_events']:.1f}",
        "",
        f"Held-out click model (most recent 20% of sends) {'':12}{'log loss':>10}{'AUC':>8}"
        f"{'train CPU s':>13}",
    ]
    for q in result["quality"]:
        lines.append(f"  {q['model']:58}{q['log_loss']:>10.5f}{q['auc']:>8.4f}"
                     f"{q['train_cpu_seconds']:>13.2f}")  # fmt: skip
    lines.append("")
    lines += [
        f"target {x['name']}: {x['value']:.2f} (<= {x['target']:g}) "
        f"{'met' if x['met'] else 'MISSED'}"
        for x in result["targets"]
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (smaller history)")
    parser.add_argument("--json", type=Path, default=None, help=f"default {DEFAULT_JSON}")
    parser.add_argument("--events", type=int, default=None, help="history size in events")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions")
    parser.add_argument("--min-seconds", type=float, default=None, help="per repetition")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU 0")
    args = parser.parse_args(argv)
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("events", "repeats", "min_seconds"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.no_pin:
        values["pin_cpu"] = None
    result = run(ModelBenchConfig(**values))
    print(format_table(result))
    path = args.json or DEFAULT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
