"""Training one account's click and conversion models on matured sends.

Input: `Examples`, one row per send whose attribution window has closed, with the raw
contact features the send was decided on (`features.contact_features` at the send's
time), its pair features for the creative sent, and its outcome. Part of the sends is
held out, and the models are fitted on the rest: clicks on every send, conversions on
the clicked sends. The held-out sends give the metrics and feed the promotion gate
(`metrics.gate`), which compares the candidate with the current model on the same rows
(`evaluate_model`).

Which sends are held out (`TrainingConfig.holdout`):
- `contacts` (the default): every send of a fixed `holdout_fraction` of the contacts,
  chosen by a hash of the contact id, so no model of the account ever trains on them and
  a candidate and the current model are compared on contacts neither has seen. The held
  out sends span the whole window, every hour of the day included, and training keeps
  the most recent sends of everyone else.
- `recent`: the most recent `holdout_fraction` of the sends. This tests the future, but
  a window shorter than a few days holds out hours of the day the training rows never
  saw, which makes the calibration check fail on young accounts for that reason alone.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from selector.custom_fields import CustomField
from selector.domain import Account
from selector.model.artifact import ContextualModel, FeatureSpec, Priors
from selector.model.features import PAIR_FEATURES
from selector.model.logistic import (
    Design,
    FitInfo,
    FloatArray,
    LaplacePosterior,
    PosteriorKind,
    fit,
    fit_evidence,
)
from selector.model.metrics import Evaluation, evaluate, importances, log_loss

# Features are centred, and divided by their spread only where it exceeds 1: a young
# account's history features have a small spread (most contacts have no sends yet), and
# dividing by it would turn the next day's ordinary values into extreme ones.
SCALE_FLOOR = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class Examples:
    """Matured sends: `creative` indexes `creative_ids`; `revenue` is what the send
    earned (the conversions' revenue, or the payout of a clicked per-click offer)."""

    raw: FloatArray
    pair: FloatArray
    creative: np.ndarray[Any, np.dtype[np.intp]]
    creative_ids: tuple[str, ...]
    time: FloatArray
    clicked: FloatArray
    converted: FloatArray
    revenue: FloatArray
    contact: np.ndarray[Any, np.dtype[np.uint32]]  # `contact_key` of the contact id

    def __len__(self) -> int:
        return int(self.time.size)

    def take(self, rows: Any) -> Examples:
        return Examples(
            self.raw[rows], self.pair[rows], self.creative[rows], self.creative_ids,
            self.time[rows], self.clicked[rows], self.converted[rows], self.revenue[rows],
            self.contact[rows],
        )  # fmt: skip

    def split(self, holdout_fraction: float) -> tuple[Examples, Examples]:
        """(older, most recent `holdout_fraction`) by send time."""
        order = np.argsort(self.time, kind="stable")
        cut = round(len(self) * (1.0 - holdout_fraction))
        return self.take(order[:cut]), self.take(order[cut:])

    def split_contacts(self, holdout_fraction: float) -> tuple[Examples, Examples]:
        """(the other contacts' sends, the sends of the held-out contacts)."""
        held = holdout_units(self.contact) < holdout_fraction
        return self.take(np.flatnonzero(~held)), self.take(np.flatnonzero(held))


def contact_key(contact_id: str) -> int:
    return zlib.crc32(contact_id.encode())


def holdout_units(keys: np.ndarray[Any, np.dtype[np.uint32]]) -> FloatArray:
    """A stable uniform [0, 1) per contact key (Fibonacci hashing of the CRC-32)."""
    mixed = (keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(2**64 - 1)
    return (mixed >> np.uint64(40)).astype(np.float64) / float(2**24)


Holdout = Literal["contacts", "recent"]


@dataclass(frozen=True, slots=True)
class TrainingConfig:
    posterior: PosteriorKind = "full"
    priors: Priors = field(default_factory=Priors)
    holdout: Holdout = "contacts"
    holdout_fraction: float = 0.1
    max_examples: int | None = None  # the most recent ones, when set
    importance_rows: int = 50_000
    evidence_rounds: int = 10  # 0: keep the configured priors


@dataclass(frozen=True, slots=True, eq=False)
class CatalogColumns:
    """Per creative of the account (catalog order): offer id, payout, per-click flag."""

    creative_ids: tuple[str, ...]
    offer_ids: tuple[str, ...]
    payout: FloatArray
    per_click: np.ndarray[Any, np.dtype[np.bool_]]

    @classmethod
    def of(cls, account: Account) -> CatalogColumns:
        offers = {o.offer_id: o for o in account.offers}
        creatives = account.creatives
        return cls(
            tuple(c.creative_id for c in creatives),
            tuple(c.offer_id for c in creatives),
            np.array([offers[c.offer_id].payout for c in creatives], dtype=float),
            np.array([offers[c.offer_id].payout_type == "cto" for c in creatives], dtype=bool),
        )


def _catalog_rows(examples: Examples, catalog: CatalogColumns) -> tuple[Examples, Any]:
    """Examples of creatives in the catalog, and each one's catalog position."""
    index = {c: i for i, c in enumerate(catalog.creative_ids)}
    mapped = np.array([index.get(c, -1) for c in examples.creative_ids], dtype=np.intp)
    position = mapped[examples.creative] if len(examples) else np.zeros(0, dtype=np.intp)
    keep = np.flatnonzero(position >= 0)
    return examples.take(keep), position[keep]


def _design(spec: FeatureSpec, catalog: CatalogColumns, ex: Examples, position: Any) -> Any:
    """Rows grouped by (creative, pattern of the binary pair features); a group's side
    vector is [the creative's features, the pattern]."""
    creative, _ = spec.creative_features(catalog.creative_ids, catalog.offer_ids, catalog.per_click)
    q = len(PAIR_FEATURES)
    patterns = ((np.arange(2**q)[:, None] >> np.arange(q)[None, :]) & 1).astype(float)
    side = np.concatenate(
        [np.repeat(creative, 2**q, axis=0), np.tile(patterns, (creative.shape[0], 1))], axis=1
    )
    code = (ex.pair > 0.5).astype(np.intp) @ (1 << np.arange(q))
    return Design.of(spec.standardize(ex.raw), position * 2**q + code, side)


def train(
    account: Account,
    examples: Examples,
    fields: tuple[CustomField, ...],
    retention_seconds: float,
    version: int,
    now: float,
    config: TrainingConfig | None = None,
) -> tuple[ContextualModel, Examples]:
    """A candidate model, and the held-out examples it was evaluated on."""
    config = config or TrainingConfig()
    catalog = CatalogColumns.of(account)
    if config.max_examples is not None and len(examples) > config.max_examples:
        recent = np.argsort(examples.time, kind="stable")[-config.max_examples :]
        examples = examples.take(np.sort(recent))
    if config.holdout == "contacts":
        fit_rows, holdout = examples.split_contacts(config.holdout_fraction)
    else:
        fit_rows, holdout = examples.split(config.holdout_fraction)
    rows, position = _catalog_rows(fit_rows, catalog)
    spread = rows.raw.std(axis=0) if len(rows) else np.ones(examples.raw.shape[1])
    spec = FeatureSpec(
        fields=fields,
        creative_ids=catalog.creative_ids,
        offer_ids=tuple(o.offer_id for o in account.offers),
        center=rows.raw.mean(axis=0) if len(rows) else np.zeros(examples.raw.shape[1]),
        scale=np.maximum(spread, SCALE_FLOOR),
        retention_seconds=retention_seconds,
        priors=config.priors,
    )
    design, order = _design(spec, catalog, rows, position)
    click, click_info, click_prior = _fit(spec, design, rows.clicked[order], config)
    clicked = np.flatnonzero(rows.clicked > 0)
    conv_design, conv_order = _design(spec, catalog, rows.take(clicked), position[clicked])
    conv_y = rows.converted[clicked][conv_order]
    conversion, conv_info, conv_prior = _fit(spec, conv_design, conv_y, config)
    model = ContextualModel(account.account_id, version, now, spec, click, conversion)
    metrics = {
        "training_sends": len(rows),
        "training_clicks": int(rows.clicked.sum()),
        "training_conversions": int(rows.converted.sum()),
        **_held_out_metrics(model, account, holdout, rows, position, config),
        "importances": _importances(model, design, config.importance_rows),
        "fit": {
            "click_iterations": click_info.iterations,
            "click_converged": click_info.converged,
            "conversion_iterations": conv_info.iterations,
            "conversion_converged": conv_info.converged,
            "posterior": config.posterior,
            "prior_precision": {"click": click_prior, "conversion": conv_prior},
        },
    }
    return replace(model, metrics=metrics), holdout


def _fit(
    spec: FeatureSpec, design: Design, y: FloatArray, config: TrainingConfig
) -> tuple[LaplacePosterior, FitInfo, dict[str, float]]:
    """One model's posterior, and the prior precision of each weight group it used."""
    groups = spec.groups()
    if config.evidence_rounds <= 0:
        post, info = fit(design, y, spec.precision(), config.posterior)
        used = spec.precision()
    else:
        post, info, used = fit_evidence(
            design, y, spec.precision(), list(groups.values()), config.posterior,
            config.evidence_rounds,
        )  # fmt: skip
    return post, info, {name: float(used[g[0]]) for name, g in groups.items() if g.size}


def _held_out_metrics(
    model: ContextualModel,
    account: Account,
    holdout: Examples,
    rows: Examples,
    position: Any,
    config: TrainingConfig,
) -> dict[str, Any]:
    held = evaluate_model(model, account, holdout)
    split = {"by": config.holdout, "fraction": config.holdout_fraction}
    beta = _beta_log_loss(rows, position, holdout, CatalogColumns.of(account))
    return {"holdout": held.to_dict() | split, "per_creative_beta_log_loss": beta}


def predicted(
    model: ContextualModel, account: Account, examples: Examples
) -> tuple[FloatArray, FloatArray]:
    """P(click) and expected revenue per send of each example's creative (posterior
    mean; a creative the model has not seen gets the shared prediction)."""
    catalog = CatalogColumns.of(account)
    ex, position = _catalog_rows(examples, catalog)
    design, order = _design(model.spec, catalog, ex, position)
    back = np.argsort(order)
    p_click = _sigmoid(design.logits(model.click.mean))[back]
    p_conv = _sigmoid(design.logits(model.conversion.mean))[back]
    per_click = catalog.per_click[position]
    value = catalog.payout[position] * np.where(per_click, 1.0, p_conv)
    return p_click, p_click * value


def evaluate_model(model: ContextualModel, account: Account, examples: Examples) -> Evaluation:
    ex, _ = _catalog_rows(examples, CatalogColumns.of(account))
    p_click, revenue = predicted(model, account, ex)
    return evaluate(ex.clicked, p_click, ex.revenue, revenue)


def _sigmoid(a: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-a))


def _beta_log_loss(
    rows: Examples, position: Any, holdout: Examples, catalog: CatalogColumns
) -> float | None:
    """Held-out log loss of each creative's Beta(1, 1) posterior mean click rate."""
    k = len(catalog.creative_ids)
    sends = np.bincount(position, minlength=k)
    clicks = np.bincount(position, weights=rows.clicked, minlength=k)
    held, held_position = _catalog_rows(holdout, catalog)
    if len(held) == 0:
        return None
    rate = (1.0 + clicks) / (2.0 + sends)
    return log_loss(held.clicked, rate[held_position])


def _importances(model: ContextualModel, design: Design, rows: int) -> list[list[Any]]:
    """Top-10 shares of mean |contribution| to the click logit: each contact feature
    (through the creative features), the creative itself, and each pair feature."""
    n = min(rows, design.X.shape[0])
    if n == 0:
        return []
    pick = np.linspace(0, design.X.shape[0] - 1, n).astype(np.intp)
    group = np.searchsorted(design.bounds, pick, side="right") - 1
    w, b = model.weights(model.click)
    c = w.shape[1]
    m = w @ design.side[:, :c].T  # P x groups
    x = design.X[pick]
    contact = x[:, 1:] * m[1:, group].T
    own = m[0, group] - m[0, group].mean()
    pair = (x @ b) * design.side[group, c:]
    names = (*model.spec.contact_names[1:], "creative", *PAIR_FEATURES)
    contributions = np.concatenate([contact, own[:, None], pair], axis=1)
    return [[name, share] for name, share in importances(names, contributions)]
