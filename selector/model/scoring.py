"""Scoring with a model: contextual Thompson sampling for a batch, and predictions.

Thompson sampling (Chapelle and Li 2011, algorithm 3, in batch). Per batch, S weight
vectors are drawn from each posterior (click, and conversion for the revenue goal) and
collapsed to S effective P x K matrices, M_s = W_s C' (creatives the model has not seen
get their own deviation drawn per sample, `ContextualModel.new_creative_sd`). Every
request is scored under every sample in one matrix product, X (n x P) @ [M_1 .. M_S],
plus the pair features' term; the score is the logit (goal `clicks`) or
sigmoid(click) x sigmoid(conversion) x value, with value max(payout, floor), the
conversion factor left out for per-click offers (goal `revenue`). Each request takes the
best eligible creative under one sample picked uniformly at random.

Propensity: the share of the S samples under which the chosen creative wins for that
request. Given the batch's S draws this is the exact probability of the choice (the pick
is uniform over the draws), so inverse-propensity estimates from the log are unbiased;
as an estimate of the probability under the posterior itself it is a Monte Carlo
estimate with standard error at most 0.5 / sqrt(S).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.model.artifact import ContextualModel
from selector.model.features import ContactBatch, contact_features, pair_features
from selector.model.logistic import LaplacePosterior
from selector.model.profile import creative_key
from selector.model.record import Records

FloatArray = NDArray[Any]
DEFAULT_SAMPLES = 64


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """A model's view of one account catalog: K creatives in the catalog's order."""

    model: ContextualModel
    creative: FloatArray
    known: NDArray[np.bool_]
    keys: NDArray[np.uint32]
    offer_of: NDArray[np.intp]
    value: FloatArray
    payout: FloatArray
    per_click: NDArray[np.bool_]

    @classmethod
    def of(
        cls,
        model: ContextualModel,
        creative_ids: tuple[str, ...],
        offer_ids: tuple[str, ...],
        payout: FloatArray,
        per_click: NDArray[np.bool_],
        payout_floor: float,
    ) -> Catalog:
        """`offer_ids`, `payout` and `per_click` are per creative."""
        creative, known = model.spec.creative_features(creative_ids, offer_ids, per_click)
        codes = {o: i for i, o in enumerate(dict.fromkeys(offer_ids))}
        return cls(
            model=model,
            creative=creative,
            known=known,
            keys=np.array([creative_key(c) for c in creative_ids], dtype=np.uint32),
            offer_of=np.array([codes[o] for o in offer_ids], dtype=np.intp),
            value=np.maximum(np.asarray(payout, dtype=float), payout_floor),
            payout=np.asarray(payout, dtype=float),
            per_click=np.asarray(per_click, dtype=bool),
        )

    def inputs(self, recs: Records, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Standardized contact features (n x P) and pair features (n x K x Q)."""
        spec = self.model.spec
        batch = contact_features(recs, times, spec.fields, spec.retention_seconds)
        return spec.standardize(batch.raw), pair_features(batch, self.keys, self.offer_of)

    def inputs_of(self, batch: ContactBatch) -> tuple[FloatArray, FloatArray]:
        return self.model.spec.standardize(batch.raw), pair_features(
            batch, self.keys, self.offer_of
        )

    def effective(
        self, posterior: LaplacePosterior, samples: int, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        """S draws as (S x P x K) creative-collapsed weights and (S x Q) pair weights."""
        p, c, _ = self.model.spec.dims
        w = posterior.sample(samples, rng)
        m = w[:, : p * c].reshape(samples, p, c) @ self.creative.T
        unknown = np.flatnonzero(~self.known)
        if unknown.size:
            sd = self.model.new_creative_sd(posterior)
            noise = rng.standard_normal((samples, p, unknown.size)) * sd[None, :, None]
            m[:, :, unknown] += noise
        return m, w[:, p * c :]

    def mean_logits(self, posterior: LaplacePosterior, x: FloatArray, pair: FloatArray) -> Any:
        """(n x K) logits at the posterior mean."""
        w, beta = self.model.weights(posterior)
        return x @ (w @ self.creative.T) + pair @ beta


def _logits(x32: FloatArray, pair32: FloatArray, m: FloatArray, beta: FloatArray) -> FloatArray:
    """(n x K x S) logits for S effective weight draws."""
    s, p, k = m.shape
    stacked = np.ascontiguousarray(m.transpose(1, 2, 0), dtype=np.float32).reshape(p, k * s)
    out = (x32 @ stacked).reshape(x32.shape[0], k, s)
    out += pair32 @ beta.T.astype(np.float32)
    return out


def _sigmoid(a: FloatArray) -> FloatArray:
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)
    return a


def sampled_scores(
    catalog: Catalog,
    x: FloatArray,
    pair: FloatArray,
    goal: str,
    samples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """(n x K x S) Thompson scores: logits for `clicks`, revenue per send for `revenue`."""
    model = catalog.model
    x32, pair32 = x.astype(np.float32), pair.astype(np.float32)
    m, beta = catalog.effective(model.click, samples, rng)
    scores = _logits(x32, pair32, m, beta)
    if goal == "clicks":
        return scores
    _sigmoid(scores)
    m, beta = catalog.effective(model.conversion, samples, rng)
    conversion = _sigmoid(_logits(x32, pair32, m, beta))
    conversion[:, catalog.per_click, :] = 1.0
    scores *= conversion
    scores *= catalog.value.astype(np.float32)[None, :, None]
    return scores


def thompson(
    catalog: Catalog,
    x: FloatArray,
    pair: FloatArray,
    eligible: NDArray[np.bool_],
    goal: str,
    samples: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.intp], FloatArray]:
    """The chosen creative per request and the (n x K) choice probabilities given the
    batch's draws (each row sums to 1 over its eligible creatives)."""
    scores = sampled_scores(catalog, x, pair, goal, samples, rng)
    scores[~eligible] = -np.inf
    wins = np.argmax(scores, axis=1)  # (n x S)
    n, k = eligible.shape
    pick = rng.integers(0, samples, n)
    chosen = wins[np.arange(n), pick]
    flat = wins + (np.arange(n) * k)[:, None]
    dist = np.bincount(flat.ravel(), minlength=n * k).reshape(n, k) / samples
    return chosen, dist


@dataclass(frozen=True, slots=True)
class Prediction:
    """One creative for one contact: click probability and expected revenue per send at
    the posterior median, with a central interval (`level`, e.g. 80%)."""

    creative_id: str
    click: float
    click_low: float
    click_high: float
    revenue: float
    revenue_low: float
    revenue_high: float
    level: float


def predict(
    catalog: Catalog,
    creative_ids: tuple[str, ...],
    x: FloatArray,
    pair: FloatArray,
    rng: np.random.Generator,
    samples: int = 2000,
    level: float = 0.8,
) -> list[list[Prediction]]:
    """Per contact, per creative: P(click) and expected revenue per send (true payout,
    conversion probability left out for per-click offers), from `samples` draws."""
    model = catalog.model
    x32, pair32 = x.astype(np.float32), pair.astype(np.float32)
    click = _sigmoid(_logits(x32, pair32, *catalog.effective(model.click, samples, rng)))
    conv = _sigmoid(_logits(x32, pair32, *catalog.effective(model.conversion, samples, rng)))
    conv[:, catalog.per_click, :] = 1.0
    revenue = click * conv * catalog.payout.astype(np.float32)[None, :, None]
    q = np.array([(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0])
    cq, rq = np.quantile(click, q, axis=2), np.quantile(revenue, q, axis=2)
    return [
        [
            Prediction(cid, *_triple(cq, i, j), *_triple(rq, i, j), level)
            for j, cid in enumerate(creative_ids)
        ]
        for i in range(x.shape[0])
    ]


def _triple(q: FloatArray, i: int, j: int) -> tuple[float, float, float]:
    """(median, low, high) from quantiles stacked (low, median, high)."""
    return float(q[1, i, j]), float(q[0, i, j]), float(q[2, i, j])
