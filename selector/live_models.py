"""Model metrics in the live report: the versions of each account's contextual model on
the models topic, with their held-out metrics, as sections of the report.

`ModelLog` takes the models topic's records in offset order (`add`: key, value bytes,
record time) and keeps, per account, every version that decodes
(`selector.model.artifact.from_bytes`) and the one the workers would have in use (the
newest version by number, as `stream.handlers.models.ModelBook` loads them; a tombstone
removes it). What does not decode is counted by reason (the decoder's, `no_key`,
`key_not_account`), and values keyed by accounts not asked for (not decoded) as left
out, never raised.

`model_sections` builds an account's two sections: `model_metrics`, a row per version
(version, trained at, record time, in use, whether its decisions are among the reported
responses, promoted if the value says so, training sends, then the held-out sends, log
loss, normalized entropy, AUC, calibration, revenue MAE and RMSE as published), and
`model_importances`, the top feature importances of the version in use. Their `data`
carries the same as published values (`versions`, `importances`), so JSON has them
exactly. `ModelLog.apply` adds them to a report, marking the versions that its `model`
section saw, and its counts to the report's tables of records.

Examples
--------
>>> log = ModelLog()
>>> log.add(b"acme", b"{not json", 1.0e9)
>>> log.read, dict(log.undecodable)
(1, {'not_json': 1})
>>> model_sections([], None, set())
()
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from selector.live_report import LiveReport, with_sections, with_topic_counts
from selector.live_sections import Section
from selector.model.artifact import ContextualModel, from_bytes

__all__ = ["HELD_OUT", "KIND", "ModelLog", "ModelVersion", "model_sections", "seen_versions"]
KIND: Final = "model"
HELD_OUT: Final = (
    "sends", "log_loss", "normalized_entropy", "auc", "calibration", "revenue_mae",
    "revenue_rmse",
)  # fmt: skip
_DIGITS = {"log_loss": 4, "normalized_entropy": 4, "auc": 4, "calibration": 3,
           "revenue_mae": 4, "revenue_rmse": 4}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A decoded model value and its record time (epoch seconds)."""

    model: ContextualModel
    record_time: float


class ModelLog:
    """The models topic's versions per account (see the module docstring)."""

    def __init__(self, accounts: frozenset[str] | None = None) -> None:
        self._accounts = accounts
        self.read = 0
        self.undecodable: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.versions: dict[str, list[ModelVersion]] = {}
        self.current: dict[str, int] = {}

    def add(self, key: bytes | None, value: bytes | None, record_time: float) -> None:
        """One record of the models topic."""
        self.read += 1
        if key is None:
            self.undecodable["no_key"] += 1
            return
        account = key.decode(errors="replace")
        if not self._wanted(account):  # not decoded: the key is the account
            self.left_out["other_account"] += 1
            return
        if value is None:  # a tombstone: the account's model is withdrawn
            self.current.pop(account, None)
            self.left_out["tombstone"] += 1
            return
        model = from_bytes(value)
        if isinstance(model, str):
            self.undecodable[model] += 1
        elif model.account_id.encode() != key:
            self.undecodable["key_not_account"] += 1
        else:
            self.versions.setdefault(model.account_id, []).append(ModelVersion(model, record_time))
            if model.version > self.current.get(model.account_id, 0):
                self.current[model.account_id] = model.version

    def _wanted(self, account_id: str) -> bool:
        return self._accounts is None or account_id in self._accounts

    def sections(self, seen: Mapping[str, Collection[int]]) -> dict[str, list[Section]]:
        """Each account's model sections, versions in `seen[account]` marked."""
        out: dict[str, list[Section]] = {}
        for account, versions in sorted(self.versions.items()):
            made = model_sections(versions, self.current.get(account), seen.get(account, ()))
            if made:
                out[account] = list(made)
        return out

    def apply(self, report: LiveReport) -> LiveReport:
        """`report` with the model sections and this topic's counts in its tables of
        records read, undecodable and left out (none of it if nothing was read)."""
        if not self.read:
            return report
        report = with_topic_counts(report, KIND, self.read, self.undecodable, self.left_out)
        return with_sections(report, self.sections(seen_versions(report)))


def seen_versions(report: LiveReport) -> dict[str, set[int]]:
    """Per account, the model versions its reported `model` decisions named."""
    holders: list[Any] = [*report.accounts, *report.other_accounts]
    out: dict[str, set[int]] = {}
    for holder in holders:
        for s in holder.sections:
            if s.key == "model":
                out.setdefault(holder.account_id, set()).update(s.data.get("model_versions", ()))
    return out


def model_sections(
    versions: Sequence[ModelVersion], current: int | None, seen: Collection[int]
) -> tuple[Section, ...]:
    """An account's `model_metrics` section (a row per version, by version number and
    record time) and, when the version in use has importances, `model_importances`
    (none at all without versions)."""
    if not versions:
        return ()
    ordered = sorted(versions, key=lambda v: (v.model.version, v.record_time))
    data = [_version_data(v, current, seen) for v in ordered]
    head = ("version", "trained (UTC)", "recorded (UTC)", "in use", "in range", "promoted",
            "training sends", "held-out sends", "log loss", "NE", "AUC", "calibration",
            "revenue MAE", "revenue RMSE")  # fmt: skip
    rows = tuple(_version_row(d) for d in data)
    notes = (
        "held out: the sends of the version's training run kept out of its fit; NE is "
        "log loss over the entropy of the held-out click rate (below 1 beats the average)",
        "in range: the reported responses name the version; older versions may have "
        "been compacted off the topic",
        "promoted: yes where the value does not say, since the training job publishes "
        "only versions that passed its promotion gate",
    )
    metrics = Section(
        "model_metrics", "Model versions and held-out metrics", head, rows, notes,
        data={"versions": data},
    )  # fmt: skip
    in_use = [v for v in ordered if v.model.version == current]
    pairs = _importances(in_use[-1].model.metrics) if in_use else []
    if not pairs:
        return (metrics,)
    top = Section(
        "model_importances", f"Model feature importances (version {current}, in use)",
        ("feature", "share"), tuple((name, _share(share)) for name, share in pairs),
        ("share of the mean absolute contribution to the click logit",),
        data={"version": current, "importances": [[n, s] for n, s in pairs]},
    )  # fmt: skip
    return metrics, top


def _version_data(v: ModelVersion, current: int | None, seen: Collection[int]) -> dict[str, Any]:
    m = v.model.metrics
    held = m.get("holdout")
    promoted = m.get("promoted")
    return {
        "version": v.model.version,
        "trained_at": v.model.trained_at,
        "record_time": v.record_time,
        "in_use": v.model.version == current,
        "in_range": v.model.version in seen,
        "promoted": promoted if isinstance(promoted, bool) else None,
        "training_sends": m.get("training_sends"),
        "holdout": dict(held) if isinstance(held, Mapping) else {},
    }


def _version_row(d: Mapping[str, Any]) -> tuple[str, ...]:
    held = d["holdout"]
    # the training job publishes only versions that passed its promotion gate
    promoted = {True: "yes", False: "no", None: "yes"}[d["promoted"]]
    figures = tuple(_number(held.get(k), _DIGITS.get(k, 0)) for k in HELD_OUT)
    return (
        str(d["version"]), _when(d["trained_at"]), _when(d["record_time"]),
        "yes" if d["in_use"] else "", "yes" if d["in_range"] else "", promoted,
        _number(d["training_sends"], 0), *figures,
    )  # fmt: skip


def _number(x: Any, digits: int) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _share(x: float) -> str:
    return f"{x:.1%}"


def _when(t: float) -> str:
    if not 0.0 <= t < 253_402_300_800.0:  # before 1970 or after 9999, or not a number
        return "n/a"
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _importances(metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The published `importances` as (name, share) pairs (malformed entries skipped)."""
    found = metrics.get("importances")
    if not isinstance(found, list):
        return []
    out = []
    for item in found:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
            share = _number(item[1], 0) != "n/a"
            if share:
                out.append((item[0], float(item[1])))
    return out
