"""The training job's report: a table per account in the terminal, the full results as
JSON (every held-out metric, the per-creative Beta baseline, the top-10 feature
importances, the training size), and the run's metrics (`TrainJobMetrics`, no ids)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

from stream.job.train import AccountResult
from stream.job.train_io import TrainRun
from stream.ops.model_metrics import TrainJobMetrics

PUSH_JOB = "creative_selection_train"


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _row(r: AccountResult) -> str:
    c = r.candidate
    version = "-" if r.version is None else f"v{r.version}"
    current = "-" if r.current_version is None else f"v{r.current_version}"
    beta = r.metrics.get("per_creative_beta_log_loss")
    return (
        f"{r.account_id:<20} {r.reason:<18} {version:>5} {current:>5} {r.sends:>9} "
        f"{_num(c.log_loss if c else None):>8} {_num(beta):>8} "
        f"{_num(c.normalized_entropy if c else None):>7} {_num(c.auc if c else None, 3):>6} "
        f"{_num(c.calibration if c else None, 3):>6} {_num(c.revenue_mae if c else None):>8} "
        f"{'yes' if r.published else 'no':>9}"
    )


def text(run: TrainRun) -> str:
    header = (
        f"{'account':<20} {'outcome':<18} {'cand':>5} {'cur':>5} {'sends':>9} "
        f"{'logloss':>8} {'beta_ll':>8} {'NE':>7} {'AUC':>6} {'calib':>6} {'rev_MAE':>8} "
        f"{'published':>9}"
    )
    lines = [header, *(_row(r) for r in run.results)]
    for r in run.results:
        top = r.metrics.get("importances") or []
        if top:
            named = ", ".join(f"{name} {share:.0%}" for name, share in _click(top)[:5])
            lines.append(f"  {r.account_id}: top features {named}")
    lines.append(
        f"{run.events:,} events read in {run.read_seconds:.1f} s, trained in "
        f"{run.train_seconds:.1f} s; {run.published} model(s) published"
    )
    return "\n".join(lines)


def _click(importances: Any) -> list[tuple[str, float]]:
    """The click model's importances (the metrics hold them per model or as one list)."""
    if isinstance(importances, dict):
        importances = importances.get("click", [])
    return [(str(name), float(share)) for name, share in importances]


def _result_dict(r: AccountResult) -> dict[str, Any]:
    return {
        "account_id": r.account_id,
        "outcome": r.reason,
        "promoted": r.promoted,
        "published": r.published,
        "version": r.version,
        "current_version": r.current_version,
        "matured_sends": r.sends,
        "cpu_seconds": round(r.seconds, 3),
        "candidate_holdout": r.candidate.to_dict() if r.candidate else None,
        "current_holdout": r.current.to_dict() if r.current else None,
        "metrics": dict(r.metrics),
    }


def json_bytes(run: TrainRun) -> bytes:
    doc = {
        "events_read": run.events,
        "read": dict(run.outcomes),
        "read_seconds": round(run.read_seconds, 3),
        "train_seconds": round(run.train_seconds, 3),
        "publish_seconds": round(run.publish_seconds, 3),
        "published": run.published,
        "accounts": [_result_dict(r) for r in run.results],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def record(metrics: TrainJobMetrics, run: TrainRun, now: float) -> None:
    for r in run.results:
        metrics.gate.labels(r.reason).inc()
        if r.candidate is not None:
            if math.isfinite(r.candidate.normalized_entropy):
                metrics.normalized_entropy.observe(r.candidate.normalized_entropy)
            if math.isfinite(r.candidate.calibration):
                metrics.calibration.observe(r.candidate.calibration)
    metrics.published.set(run.published)
    metrics.sends.set(sum(r.sends for r in run.results))
    metrics.events.set(run.events)
    metrics.duration.set(run.read_seconds + run.train_seconds + run.publish_seconds)
    metrics.last_success.set(now)


def export(metrics: TrainJobMetrics, path: Path | None, pushgateway_url: str) -> None:
    from prometheus_client import push_to_gateway, write_to_textfile

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), metrics.registry)
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=PUSH_JOB, registry=metrics.registry)
