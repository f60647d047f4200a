"""What a run of the daily job found, for people (text, JSON) and for Prometheus
(`StatsJobMetrics`, written to a textfile or pushed to a Pushgateway: a CronJob's pod is
gone before any scrape). Account and creative ids appear in the report, never in labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from selector.reconcile import CreativeDrift
from selector.stats import Counts
from stream.job.run import Outcome
from stream.job.sendtime_recount import SlotReconciliation
from stream.ops.metrics import StatsJobMetrics

PUSH_JOB = "creative-selection-stats-job"


def _counts(c: Counts) -> dict[str, int]:
    return {
        "sends": c.sends,
        "clicks": c.clicks,
        "conversions": c.conversions,
        "revenue_micros": c.revenue_micros,
    }


def _drift(account: str, d: CreativeDrift) -> dict[str, Any]:
    return {
        "account_id": account,
        "creative_id": d.creative_id,
        "streamed": _counts(d.streamed),
        "recomputed": _counts(d.recomputed),
        "delta": _counts(d.delta),
        "ctr_mean": {"streamed": d.ctr_mean[0], "recomputed": d.ctr_mean[1]},
        "cvr_mean": {"streamed": d.cvr_mean[0], "recomputed": d.cvr_mean[1]},
    }


def to_dict(outcome: Outcome) -> dict[str, Any]:
    s = outcome.summary
    return {
        "run_id": outcome.run_id,
        "accounts": s.accounts,
        "skipped_accounts": outcome.skipped_accounts,
        "drifting_accounts": s.drifting_accounts,
        "drifting_creatives": s.drifting_creatives,
        "drift_events": dict(s.events),
        "drift_revenue_micros": s.revenue_micros,
        "max_ctr_mean_shift": s.max_ctr_mean_shift,
        "max_cvr_mean_shift": s.max_cvr_mean_shift,
        "records": {f"{k}:{o}": n for (k, o), n in sorted(outcome.records.items())},
        "records_read": outcome.records_read,
        "read_seconds": outcome.read_seconds,
        "corrections": outcome.corrections,
        "snapshots": outcome.snapshots,
        "seconds": outcome.seconds,
        "drifts": [_drift(a, d) for a, found in sorted(outcome.drifts.items()) for d in found],
        "send_times": _send_times(outcome.send_times),
        "send_time_priors": outcome.priors,
    }


def _send_times(found: SlotReconciliation | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "contacts": found.contacts,
        "moving": found.moving,
        "missing": found.missing,
        "drifting": len(found.drifts),
        "corrected": found.corrected,
        "drift_events": found.events,
        "records": {f"{k}:{o}": n for (k, o), n in sorted(found.records.items())},
        "drifts": [
            {
                "account_id": d.account_id,
                "contact_id": d.contact_id,
                "delta": {"sends": d.sends, "responses": d.responses},
                "corrected": d.corrected,
            }
            for d in found.drifts
        ],
    }


def json_bytes(outcome: Outcome) -> bytes:
    return orjson.dumps(to_dict(outcome), option=orjson.OPT_INDENT_2)


def text(outcome: Outcome, top: int = 20) -> str:
    s = outcome.summary
    rate = outcome.records_read / outcome.read_seconds if outcome.read_seconds else 0.0
    lines = [
        f"run {outcome.run_id}: {s.accounts} account(s) compared"
        + (
            f", {outcome.skipped_accounts} without a catalog skipped"
            if outcome.skipped_accounts
            else ""
        ),
        f"read {outcome.records_read:,} records in {outcome.read_seconds:.1f} s ({rate:,.0f}/s)",
        f"drift: {s.drifting_creatives} creative(s) in {s.drifting_accounts} account(s); "
        + ", ".join(f"{k} {n:,}" for k, n in s.events.items())
        + f" event(s); revenue {s.revenue_micros / 1e6:,.2f}",
        f"largest posterior mean shift: CTR {s.max_ctr_mean_shift:.5f}, "
        f"CVR {s.max_cvr_mean_shift:.5f}",
        f"published {outcome.corrections} correction(s), "
        f"parameters of {outcome.snapshots} account(s)",
    ]
    rows = sorted(
        ((a, d) for a, found in outcome.drifts.items() for d in found),
        key=lambda row: -sum(abs(x) for x in _counts(row[1].delta).values()),
    )[:top]
    if rows:
        lines.append(
            f"{'account':<20} {'creative':<20} {'sends':>8} {'clicks':>8} {'conv.':>6} "
            f"{'CTR mean':>19} {'CVR mean':>19}"
        )
    for account, d in rows:
        lines.append(
            f"{account[:20]:<20} {d.creative_id[:20]:<20} {d.delta.sends:>+8} {d.delta.clicks:>+8} "
            f"{d.delta.conversions:>+6} {d.ctr_mean[0]:.5f} -> {d.ctr_mean[1]:.5f} "
            f"{d.cvr_mean[0]:.5f} -> {d.cvr_mean[1]:.5f}"
        )
    st = outcome.send_times
    if st is not None:
        lines.append(
            f"send-time slots: {st.contacts:,} contact(s) compared, {len(st.drifts)} drifting "
            f"(sends {st.events['send']:,}, responses {st.events['response']:,}), "
            f"{st.corrected} corrected; {st.moving} moving, {st.missing} missing; "
            f"priors of {outcome.priors} account(s) published"
        )
    return "\n".join(lines)


def record(metrics: StatsJobMetrics, outcome: Outcome, now: float) -> None:
    s = outcome.summary
    for kind, n in s.events.items():
        metrics.drift_events.labels(kind).set(n)
    metrics.drift_revenue.set(s.revenue_micros / 1e6)
    metrics.drift_accounts.set(s.drifting_accounts)
    metrics.drift_creatives.set(s.drifting_creatives)
    metrics.mean_shift.labels("ctr").set(s.max_ctr_mean_shift)
    metrics.mean_shift.labels("cvr").set(s.max_cvr_mean_shift)
    metrics.accounts.set(s.accounts)
    for (event_kind, name), n in outcome.records.items():
        metrics.records.labels(event_kind, name).set(n)
    metrics.corrections.set(outcome.corrections)
    if outcome.read_seconds:
        metrics.read_rate.set(outcome.records_read / outcome.read_seconds)
    metrics.duration.set(outcome.seconds)
    metrics.snapshot_accounts.set(outcome.snapshots)
    if (st := outcome.send_times) is not None:
        found = {"compared": st.contacts, "drifting": len(st.drifts), "corrected": st.corrected}
        for name, n in {**found, "moving": st.moving, "missing": st.missing}.items():
            metrics.send_times.contacts.labels(name).set(n)
        for slot_kind, n in st.events.items():
            metrics.send_times.drift_events.labels(slot_kind).set(n)
        metrics.send_times.priors.set(outcome.priors)
    metrics.last_success.set(now)


def export(metrics: StatsJobMetrics, path: Path | None, pushgateway_url: str) -> None:
    from prometheus_client import push_to_gateway, write_to_textfile

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), metrics.registry)
    if pushgateway_url:
        push_to_gateway(pushgateway_url, job=PUSH_JOB, registry=metrics.registry)
