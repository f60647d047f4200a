"""The model value: exact serialization, named reasons for bad input, creative features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selector.custom_fields import CategoricalField
from selector.model.artifact import ContextualModel, FeatureSpec, from_bytes, from_dict
from selector.model.logistic import LaplacePosterior


def model(kind: str = "diagonal") -> ContextualModel:
    spec = FeatureSpec(
        fields=(CategoricalField("plan", ("free", "pro")),),
        creative_ids=("a", "b"),
        offer_ids=("o1",),
        center=np.linspace(0, 1, 16),
        scale=np.linspace(1, 2, 16),
        retention_seconds=1e7,
    )
    p, c, q = spec.dims
    d = p * (c + q)
    rng = np.random.default_rng(1)

    def post() -> LaplacePosterior:
        if kind == "full":
            return LaplacePosterior(rng.normal(size=d), chol=np.tril(rng.normal(size=(d, d))))
        return LaplacePosterior(rng.normal(size=d), sd=rng.uniform(0.1, 1, d))

    return ContextualModel("acct", 7, 1.7e9, spec, post(), post(), {"holdout": {"auc": 0.6}})


@pytest.mark.parametrize("kind", ["diagonal", "full"])
def test_bytes_round_trip_exactly(kind: str) -> None:
    m = model(kind)
    back = from_bytes(m.to_bytes())
    assert isinstance(back, ContextualModel)
    assert back.to_dict() == m.to_dict()
    np.testing.assert_array_equal(back.click.mean, m.click.mean)
    if kind == "full":
        assert back.click.chol is not None and m.click.chol is not None
        np.testing.assert_array_equal(back.click.chol, m.click.chol)
    assert back.click.kind == kind and back.spec.fields == m.spec.fields


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "unknown_format"),
        (json.dumps({"format": "contextual-model.v1"}).encode(), "bad_field"),
    ],
)
def test_bad_input_gives_a_reason(blob: bytes, reason: str) -> None:
    assert from_bytes(blob) == reason


def test_wrong_shapes_are_named() -> None:
    doc = model().to_dict()
    doc["click"]["mean"] = doc["click"]["sd"] = model().to_dict()["spec"]["center"]
    assert from_dict(doc) == "bad_shape"


def test_an_unknown_creative_gets_only_shared_features() -> None:
    m = model()
    features, known = m.spec.creative_features(("a", "new"), ("o1", "o2"), (False, True))
    assert known.tolist() == [True, False]
    # bias, per_click, offer=o1, creative=a, creative=b
    assert features.tolist() == [[1, 0, 1, 1, 0], [1, 1, 0, 0, 0]]
    assert m.new_creative_sd(m.click).shape == (len(m.spec.contact_names),)
