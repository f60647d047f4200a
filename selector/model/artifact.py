"""The trained model as a value: feature spec, click and conversion posteriors, metrics.

`ContextualModel.to_dict` is JSON-ready (arrays as base64 of little-endian float64, so
the round trip is exact) and `to_bytes` is its UTF-8 JSON: the value of a compacted
model topic keyed by account. `from_dict` / `from_bytes` never raise on bad input; they
return a named reason instead.

Design. The click (and conversion) logit of contact x and creative k is
x' W c_k + x' B q_k: W (P x C) weighs contact features against creative features, B
(P x 2) the contact-creative features q_k (clicked this creative, or its offer, before)
against contact features, so a repeat click can matter more for some contacts (say,
those whose custom field is missing) than for others.

Creative features. Each creative is described by c = [1, per_click, one-hot of its offer,
one-hot of its id] over the offers and creatives the model was trained on. A creative
the model has not seen has a zero id one-hot, so its prediction is the shared part (the
contact effects, its offer's and the per-click effects); its own deviation is drawn, at
scoring time, from the spread of the known creatives' deviations (`new_creative_sd`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from selector.custom_fields import CustomField, fields_from_dicts, fields_to_dicts
from selector.model.features import PAIR_FEATURES, feature_names
from selector.model.logistic import FloatArray, LaplacePosterior

FORMAT = "contextual-model.v1"
ModelReason = Literal["not_json", "unknown_format", "bad_field", "bad_shape"]
MODEL_REASONS: tuple[ModelReason, ...] = get_args(ModelReason)


@dataclass(frozen=True, slots=True)
class Priors:
    """Prior precisions (1 / variance) of the weights, by creative-feature column; weights
    are on standardized contact features. `creative` (> `offer`) shrinks a creative's own
    level toward its offer's, which is what a new creative starts from; `creative_cross`
    shrinks harder how a creative's response to each contact feature departs from its
    offer's: P - 1 weights per creative that only a truly creative-specific context
    effect should pull away from 0, and whose noise would otherwise make Thompson
    sampling explore creatives a context-free account cannot tell apart."""

    bias: float = 0.1
    per_click: float = 1.0
    offer: float = 1.0
    creative: float = 4.0
    creative_cross: float = 16.0
    pair: float = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSpec:
    """How contact and creative features are built for this model."""

    fields: tuple[CustomField, ...]
    creative_ids: tuple[str, ...]
    offer_ids: tuple[str, ...]
    center: FloatArray
    scale: FloatArray
    retention_seconds: float
    priors: Priors = field(default_factory=Priors)

    @property
    def contact_names(self) -> tuple[str, ...]:
        return ("intercept", *feature_names(self.fields))

    @property
    def creative_names(self) -> tuple[str, ...]:
        offers = tuple(f"offer={o}" for o in self.offer_ids)
        return ("bias", "per_click", *offers, *(f"creative={c}" for c in self.creative_ids))

    @property
    def dims(self) -> tuple[int, int, int]:
        """(P, C, Q): contact features, creative features, contact-creative features; the
        weights are a P x (C + Q) matrix, stored row-major."""
        return len(self.contact_names), len(self.creative_names), len(PAIR_FEATURES)

    def standardize(self, raw: FloatArray) -> FloatArray:
        """[1, (raw - center) / scale]."""
        out = np.empty((raw.shape[0], raw.shape[1] + 1))
        out[:, 0] = 1.0
        np.subtract(raw, self.center, out=out[:, 1:])
        out[:, 1:] /= self.scale
        return out

    def creative_features(
        self, creative_ids: Sequence[str], offer_ids: Sequence[str], per_click: Any
    ) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.bool_]]]:
        """(K x C) features of a catalog's creatives, and which of them the model knows."""
        offers = {o: i for i, o in enumerate(self.offer_ids)}
        known = {c: i for i, c in enumerate(self.creative_ids)}
        f = len(self.offer_ids)
        out = np.zeros((len(creative_ids), len(self.creative_names)))
        out[:, 0] = 1.0
        out[:, 1] = np.asarray(per_click, dtype=float)
        for row, (cid, oid) in enumerate(zip(creative_ids, offer_ids, strict=True)):
            if oid in offers:
                out[row, 2 + offers[oid]] = 1.0
            if cid in known:
                out[row, 2 + f + known[cid]] = 1.0
        return out, np.array([c in known for c in creative_ids], dtype=bool)

    def groups(self) -> dict[str, np.ndarray[Any, np.dtype[np.intp]]]:
        """Weight groups whose shared prior precision training sets from the data (see
        `logistic.fit_evidence`): how each creative, each offer, and per-click offers as a
        whole respond to each contact feature beyond the shared response; the
        contact-creative features' effect, and how it varies with the contact features."""
        p, c, q = self.dims
        f = len(self.offer_ids)
        index = np.arange(p * (c + q)).reshape(p, c + q)
        return {
            "creative_cross": index[1:, 2 + f : c].reshape(-1),
            "offer_cross": index[1:, 2 : 2 + f].reshape(-1),
            "per_click_cross": index[1:, 1].reshape(-1),
            "pair": index[0, c:].reshape(-1),
            "pair_cross": index[1:, c:].reshape(-1),
        }

    def precision(self) -> FloatArray:
        """The prior precision of every weight (P x (C + Q), row-major): the intercept's
        row, then one row per contact feature."""
        p, c, q = self.dims
        k = c - 2 - len(self.offer_ids)
        pr = self.priors
        shared = [pr.bias, pr.per_click, *[pr.offer] * len(self.offer_ids)]
        first = [*shared, *[pr.creative] * k, *[pr.pair] * q]
        rest = [*shared, *[pr.creative_cross] * k, *[pr.pair] * q]
        return np.array(first + rest * (p - 1), dtype=float)


@dataclass(frozen=True, slots=True, eq=False)
class ContextualModel:
    """One account's promoted (or candidate) model. `version` increases with each
    training run of the account; decisions made with the model carry it."""

    account_id: str
    version: int
    trained_at: float
    spec: FeatureSpec
    click: LaplacePosterior
    conversion: LaplacePosterior
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def weights(self, posterior: LaplacePosterior) -> tuple[FloatArray, FloatArray]:
        """The posterior mean as (W: P x C, B: P x Q)."""
        p, c, q = self.spec.dims
        full = posterior.mean.reshape(p, c + q)
        return full[:, :c], full[:, c:]

    def new_creative_sd(self, posterior: LaplacePosterior) -> FloatArray:
        """Per contact feature, the spread of the known creatives' own weights (the prior
        sd when there are fewer than two), for creatives the model has not seen."""
        w, _ = self.weights(posterior)
        own = w[:, 2 + len(self.spec.offer_ids) :]
        pr = self.spec.priors
        prior_sd = np.full(w.shape[0], 1.0 / math.sqrt(pr.creative_cross))
        prior_sd[0] = 1.0 / math.sqrt(pr.creative)
        if own.shape[1] < 2:
            return prior_sd
        return np.minimum(np.sqrt((own**2).mean(axis=1)), prior_sd)

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        return {
            "format": FORMAT,
            "account_id": self.account_id,
            "version": self.version,
            "trained_at": self.trained_at,
            "spec": {
                "fields": fields_to_dicts(s.fields),
                "creative_ids": list(s.creative_ids),
                "offer_ids": list(s.offer_ids),
                "center": _array(s.center),
                "scale": _array(s.scale),
                "retention_seconds": s.retention_seconds,
                "priors": {k: getattr(s.priors, k) for k in Priors.__dataclass_fields__},
            },
            "click": _posterior_dict(self.click),
            "conversion": _posterior_dict(self.conversion),
            "metrics": dict(self.metrics),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()


def _array(a: FloatArray) -> dict[str, Any]:
    data = np.ascontiguousarray(a, dtype="<f8")
    return {"shape": list(data.shape), "f8": base64.b64encode(data.tobytes()).decode()}


def _unarray(d: Any) -> FloatArray:
    shape = tuple(int(x) for x in d["shape"])
    raw = base64.b64decode(d["f8"], validate=True)
    return np.frombuffer(raw, dtype="<f8").reshape(shape).copy()


def _posterior_dict(p: LaplacePosterior) -> dict[str, Any]:
    if p.chol is not None:
        lower = p.chol[np.tril_indices(p.chol.shape[0])]  # the factor is lower triangular
        return {"kind": "full", "mean": _array(p.mean), "chol_lower": _array(lower)}
    assert p.sd is not None
    return {"kind": "diagonal", "mean": _array(p.mean), "sd": _array(p.sd)}


def _posterior(d: Any, size: int) -> LaplacePosterior:
    mean = _unarray(d["mean"])
    if d["kind"] == "full":
        lower = _unarray(d["chol_lower"])
        if lower.shape != (size * (size + 1) // 2,):
            raise ValueError("shape")
        chol = np.zeros((size, size))
        chol[np.tril_indices(size)] = lower
        post = LaplacePosterior(mean, chol=chol)
        ok = True
    else:
        post = LaplacePosterior(mean, sd=_unarray(d["sd"]))
        ok = post.sd is not None and post.sd.shape == (size,)
    if mean.shape != (size,) or not ok:
        raise ValueError("shape")
    return post


def from_dict(data: Mapping[str, Any]) -> ContextualModel | ModelReason:
    """The model a `to_dict` document describes, or why it is not one."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        return "unknown_format"
    try:
        s = data["spec"]
        spec = FeatureSpec(
            fields=fields_from_dicts(s["fields"]),
            creative_ids=tuple(str(c) for c in s["creative_ids"]),
            offer_ids=tuple(str(o) for o in s["offer_ids"]),
            center=_unarray(s["center"]),
            scale=_unarray(s["scale"]),
            retention_seconds=float(s["retention_seconds"]),
            priors=Priors(**{k: float(v) for k, v in s["priors"].items()}),
        )
        model = ContextualModel(
            account_id=str(data["account_id"]),
            version=int(data["version"]),
            trained_at=float(data["trained_at"]),
            spec=spec,
            click=LaplacePosterior(np.zeros(0)),
            conversion=LaplacePosterior(np.zeros(0)),
            metrics=dict(data.get("metrics", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return "bad_field"
    p, c, q = spec.dims
    if spec.center.shape != (p - 1,) or spec.scale.shape != (p - 1,):
        return "bad_shape"
    try:
        click = _posterior(data["click"], p * (c + q))
        conversion = _posterior(data["conversion"], p * (c + q))
    except (KeyError, TypeError, ValueError):
        return "bad_shape"
    return ContextualModel(
        model.account_id, model.version, model.trained_at, spec, click, conversion, model.metrics
    )


def from_bytes(blob: bytes) -> ContextualModel | ModelReason:
    try:
        data = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return "not_json"
    return from_dict(data)
