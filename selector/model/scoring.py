"""Scoring with a model: contextual Thompson sampling for a batch, and predictions.

Thompson sampling (Chapelle and Li 2011, algorithm 3, in batch). When a model meets a
catalog, `POOL` weight vectors are drawn from each posterior (click, and conversion for
the revenue goal), with a generator seeded by the model's account and version, and
collapsed to effective P x K matrices, M = W C' (a creative the model has not seen gets
its own deviation drawn per sample, `ContextualModel.new_creative_sd`). Per batch, S of
them are picked at random, and every request is scored under each in one matrix product,
X (n x P) @ [M_1 .. M_S], plus the pair features' term. The score is the logit (goal
`clicks`) or sigmoid(click) x sigmoid(conversion) x value, value = max(payout, floor),
the conversion factor left out for per-click offers (goal `revenue`). Each request takes
the best eligible creative under one of the S samples picked uniformly at random, that is,
the creative is drawn from its win shares over the S samples (`win_shares`). The pool
makes a full-covariance posterior as cheap per decision as a diagonal one. Scores are
laid out n x K x S, draws on the fast axis, so the maximum over creatives and each
creative's count of draws at it are a few passes over contiguous memory.

Propensity: the chosen creative's win share (after the learning mode and the exploration
floor, `selector.policies.thompson.mix`). Given the batch's S draws it is the exact
probability of the choice, so inverse-propensity estimates from the log are unbiased; as
an estimate of the probability under the posterior itself it is a Monte Carlo estimate
with standard error at most 0.5 / sqrt(S).
"""

from __future__ import annotations

import zlib
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
POOL = 1024


@dataclass(frozen=True, slots=True, eq=False)
class DrawPool:
    """Posterior draws collapsed to the catalog, float32, draws on the last axis:
    (P x K x POOL) creative and (P x Q x POOL) pair weights."""

    m: FloatArray
    beta: FloatArray

    def pick(self, samples: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """`samples` draws, (P x K*S) and (P x Q*S), draws on the fast axis: a block at a
        random offset (the draws are iid, so any block is an iid sample), or with
        replacement beyond the pool."""
        p, k, size = self.m.shape
        q = self.beta.shape[1]
        if samples > size:
            idx = rng.integers(0, size, samples)
            m, beta = self.m[:, :, idx], self.beta[:, :, idx]
        else:
            at = int(rng.integers(0, size - samples + 1))
            m = np.ascontiguousarray(self.m[:, :, at : at + samples])
            beta = np.ascontiguousarray(self.beta[:, :, at : at + samples])
        return m.reshape(p, k * samples), beta.reshape(p, q * samples)

    def columns(self, which: NDArray[np.intp]) -> DrawPool:
        """The same draws for the creatives `which` only."""
        return DrawPool(np.ascontiguousarray(self.m[:, which, :]), self.beta)


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """A model's view of one account catalog: K creatives in the catalog's order.

    Scoring works in an internal creative order (`order`): the creatives paid per
    conversion first, then the per-click ones (`converting` of them), so that only the
    former get a conversion model; `click_pool` is in that order, `conversion_pool` holds
    the first `converting` creatives of it."""

    model: ContextualModel
    creative: FloatArray
    known: NDArray[np.bool_]
    keys: NDArray[np.uint32]
    offer_of: NDArray[np.intp]
    value: FloatArray
    value32: FloatArray
    payout: FloatArray
    per_click: NDArray[np.bool_]
    click_pool: DrawPool
    conversion_pool: DrawPool
    order: NDArray[np.intp]
    converting: int

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
        seed = zlib.crc32(f"{model.account_id}:{model.version}".encode())
        rng = np.random.default_rng(seed)
        per_click = np.asarray(per_click, dtype=bool)
        order = np.argsort(per_click, kind="stable")
        converting = int((~per_click).sum())
        clicks = _pool(model, model.click, creative, known, POOL, rng)
        conversions = _pool(model, model.conversion, creative, known, POOL, rng)
        return cls(
            model=model,
            creative=creative,
            known=known,
            keys=np.array([creative_key(c) for c in creative_ids], dtype=np.uint32),
            offer_of=np.array([codes[o] for o in offer_ids], dtype=np.intp),
            value=np.maximum(np.asarray(payout, dtype=float), payout_floor),
            value32=np.maximum(np.asarray(payout, dtype=np.float32), np.float32(payout_floor)),
            payout=np.asarray(payout, dtype=float),
            per_click=per_click,
            click_pool=clicks.columns(order),
            conversion_pool=conversions.columns(order[:converting]),
            order=order,
            converting=converting,
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

    def mean_logits(self, posterior: LaplacePosterior, x: FloatArray, pair: FloatArray) -> Any:
        """(n x K) logits at the posterior mean."""
        w, b = self.model.weights(posterior)
        return x @ (w @ self.creative.T) + np.einsum("nkq,nq->nk", pair, x @ b)


def _pool(
    model: ContextualModel,
    posterior: LaplacePosterior,
    creative: FloatArray,
    known: NDArray[np.bool_],
    size: int,
    rng: np.random.Generator,
) -> DrawPool:
    """`size` posterior draws collapsed to the catalog's creatives."""
    p, c, q = model.spec.dims
    w = posterior.sample(size, rng).reshape(size, p, c + q)
    m = w[:, :, :c] @ creative.T
    unknown = np.flatnonzero(~known)
    if unknown.size:
        sd = model.new_creative_sd(posterior)
        m[:, :, unknown] += rng.standard_normal((size, p, unknown.size)) * sd[None, :, None]
    b = w[:, :, c:]
    return DrawPool(
        np.ascontiguousarray(m.transpose(1, 2, 0), dtype=np.float32),
        np.ascontiguousarray(b.transpose(1, 2, 0), dtype=np.float32),
    )


def _logits(
    x32: FloatArray, pair32: FloatArray | None, k: int, m: FloatArray, b: FloatArray
) -> Any:
    """(n x K x S) logits under S draws: m (P x K*S), b (P x Q*S), pair32 (n x K x Q), or
    None when every pair feature is 0."""
    n = x32.shape[0]
    out = (x32 @ m).reshape(n, k, -1)
    if pair32 is not None:
        q = pair32.shape[2]
        out += pair32 @ (x32 @ b).reshape(n, q, -1)
    return out


def _one_plus_exp(a: FloatArray) -> FloatArray:
    """1 + e^a, in place (float32 overflows to inf, which the division turns into 0)."""
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1.0
    return a


def _sigmoid(a: FloatArray) -> FloatArray:
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1.0
    np.reciprocal(a, out=a)
    return a


def _ordered_scores(
    catalog: Catalog,
    x: FloatArray,
    pair: FloatArray,
    goal: str,
    samples: int,
    rng: np.random.Generator,
) -> Any:
    """(n x K x S) Thompson scores with the creatives in `catalog.order`."""
    x32 = x.astype(np.float32)
    k, kc = catalog.order.size, catalog.converting
    pair32 = pair[:, catalog.order, :].astype(np.float32) if pair.any() else None
    click = catalog.click_pool.pick(samples, rng)
    if goal == "clicks":
        return _logits(x32, pair32, k, *click)
    # value * sigmoid(a) * sigmoid(b) = value / ((1 + e^-a) (1 + e^-b)); the negated
    # logits come straight from the products with -x, which saves passes over n x K x S.
    minus_x = np.negative(x32)
    denominator = _one_plus_exp(_logits(minus_x, pair32, k, *click))
    conversion_pick = catalog.conversion_pool.pick(samples, rng)
    if kc:
        conv_pair = None if pair32 is None else np.ascontiguousarray(pair32[:, :kc, :])
        conversion = _one_plus_exp(_logits(minus_x, conv_pair, kc, *conversion_pick))
        denominator[:, :kc, :] *= conversion
    value = catalog.value32[catalog.order][:, None]
    return np.divide(value, denominator, out=denominator)


def sampled_scores(
    catalog: Catalog,
    x: FloatArray,
    pair: FloatArray,
    goal: str,
    samples: int,
    rng: np.random.Generator,
) -> Any:
    """(n x K x S) Thompson scores, creatives in the catalog's order: logits for `clicks`,
    revenue per send for `revenue`."""
    scores = _ordered_scores(catalog, x, pair, goal, samples, rng)
    return scores[:, np.argsort(catalog.order), :]


def win_shares(
    catalog: Catalog,
    x: FloatArray,
    pair: FloatArray,
    eligible: NDArray[np.bool_],
    goal: str,
    samples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """(n x K): for each request, the share of `samples` posterior draws under which each
    of its eligible creatives scores best (a row without an eligible creative is 0).
    Drawing the creative from this row has the law of taking the best under one of the
    draws picked at random, and its entry is the choice's exact probability given them.

    The best under a draw is the first eligible creative (in the catalog's order) with
    the highest score, as `argmax` takes it. Counted as the creatives equal to the draw's
    maximum, which is that when exactly one is; rows where some draw has a tie (or a NaN
    score) are counted again with `argmax`."""
    order = catalog.order
    scores = _ordered_scores(catalog, x, pair, goal, samples, rng)
    has_any = eligible.any(axis=1)
    if not eligible.all():
        scores += np.where(eligible[:, order], np.float32(0.0), np.float32(-np.inf))[:, :, None]
    best = scores.max(axis=1)
    at_best = np.equal(scores, best[:, None, :])
    count = np.uint16 if samples < 2**16 else np.int64
    wins = np.add.reduce(at_best.view(np.uint8), axis=2, dtype=count)
    n, k = eligible.shape
    shares = np.empty((n, k))
    shares[:, order] = wins
    redo = wins.sum(axis=1, dtype=np.int64) != samples
    if np.isnan(best).any():
        redo |= np.isnan(best).any(axis=1)
    redo = np.flatnonzero(redo & has_any)
    if redo.size:
        inverse = np.argsort(order)
        first = np.argmax(scores[redo][:, inverse, :], axis=1)  # (r x S)
        flat = first + (np.arange(redo.size) * k)[:, None]
        shares[redo] = np.bincount(flat.ravel(), minlength=redo.size * k).reshape(-1, k)
    shares /= samples
    shares[~has_any] = 0.0
    return shares


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
    conversion probability left out for per-click offers), from `samples` fresh draws."""
    model = catalog.model
    x32, pair32 = x.astype(np.float32), pair.astype(np.float32)
    k = catalog.creative.shape[0]
    clicks = _pool(model, model.click, catalog.creative, catalog.known, samples, rng)
    convs = _pool(model, model.conversion, catalog.creative, catalog.known, samples, rng)
    click = _sigmoid(_logits(x32, pair32, k, *_whole(clicks)))
    conv = _sigmoid(_logits(x32, pair32, k, *_whole(convs)))
    conv[:, catalog.per_click, :] = 1.0
    revenue = click * conv * catalog.payout.astype(np.float32)[:, None]
    q = np.array([(1.0 - level) / 2.0, 0.5, (1.0 + level) / 2.0])
    cq, rq = np.quantile(click, q, axis=2), np.quantile(revenue, q, axis=2)
    return [
        [
            Prediction(cid, *_triple(cq, i, j), *_triple(rq, i, j), level)
            for j, cid in enumerate(creative_ids)
        ]
        for i in range(x.shape[0])
    ]


def _whole(pool: DrawPool) -> tuple[FloatArray, FloatArray]:
    """Every draw of a pool, as `DrawPool.pick` lays them out."""
    p = pool.m.shape[0]
    return pool.m.reshape(p, -1), pool.beta.reshape(p, -1)


def _triple(q: FloatArray, i: int, j: int) -> tuple[float, float, float]:
    """(median, low, high) from quantiles stacked (low, median, high)."""
    return float(q[1, i, j]), float(q[0, i, j]), float(q[2, i, j])
