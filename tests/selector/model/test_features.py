"""Contact features from records: point in time, retention, custom fields, pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selector.custom_fields import CategoricalField, NumericField
from selector.model.features import (
    BASE_FEATURES,
    contact_features,
    custom_names,
    feature_names,
    pair_features,
)
from selector.model.profile import DAY, EMPTY, add_event, creative_key
from selector.model.record import records_of

FIELDS = (NumericField("age", 20, 60), CategoricalField("plan", ("free", "pro")))
NAMES = feature_names(FIELDS)


def column(raw: np.ndarray, name: str) -> np.ndarray:
    return raw[:, NAMES.index(name)]


def profile():  # type: ignore[no-untyped-def]
    p = EMPTY.with_custom((30.0, 1.0))
    p = add_event(p, "send", "a", 0.0, 0)
    p = add_event(p, "click", "a", 6 * 3600.0, 0)  # 06:00 UTC
    p = add_event(p, "send", "b", DAY, 0)
    p = add_event(p, "conversion", "a", DAY + 100.0, 4_000_000)
    return p


def features_at(times: list[float], retention: float = 1e9):  # type: ignore[no-untyped-def]
    recs = records_of([profile()] * len(times))
    return contact_features(recs, np.array(times), FIELDS, retention)


def test_a_decision_sees_only_events_before_it() -> None:
    raw = features_at([3600.0, 7 * 3600.0, 2 * DAY]).raw
    np.testing.assert_allclose(column(raw, "log_sends"), np.log1p([1, 1, 2]))
    np.testing.assert_allclose(column(raw, "log_clicks"), np.log1p([0, 1, 1]))
    np.testing.assert_allclose(column(raw, "never_clicked"), [1, 0, 0])
    np.testing.assert_allclose(column(raw, "log_revenue"), [0, 0, math.log1p(4.0)])
    np.testing.assert_allclose(column(raw, "has_converted"), [0, 0, 1])
    days = (2 * DAY - 6 * 3600.0) / DAY
    np.testing.assert_allclose(column(raw, "click_recency")[2], math.exp(-days / 30))
    np.testing.assert_allclose(column(raw, "log_days_since_click")[2], math.log1p(days))


def test_the_engagement_hour_points_at_the_clicks_hour() -> None:
    raw = features_at([2 * DAY + 6.5 * 3600.0, 2 * DAY + 18.5 * 3600.0]).raw
    # one click at 06:00: the 06:00-07:00 hour, centred at 06:30; shrunk by clicks + 1 = 2
    angle = 2 * math.pi * 6.5 / 24
    np.testing.assert_allclose(column(raw, "engage_cos"), [math.cos(angle) / 2] * 2)
    np.testing.assert_allclose(column(raw, "engage_sin"), [math.sin(angle) / 2] * 2)
    np.testing.assert_allclose(column(raw, "hour_match"), [0.5, -0.5], atol=1e-12)


def test_custom_fields_are_scaled_or_one_hot_and_missing_is_flagged() -> None:
    recs = records_of([profile(), EMPTY])
    raw = contact_features(recs, np.array([0.0, 0.0]), FIELDS, 1e9).raw
    assert custom_names(FIELDS) == ("age", "age_missing", "plan=free", "plan=pro")
    np.testing.assert_allclose(raw[:, len(BASE_FEATURES) :], [[0.25, 0, 0, 1], [0, 1, 0, 0]])


def test_an_expired_history_is_empty_but_custom_fields_remain() -> None:
    raw = features_at([DAY + 200.0 + 40 * DAY], retention=30 * DAY).raw
    assert column(raw, "log_sends")[0] == 0 and column(raw, "never_clicked")[0] == 1
    assert column(raw, "plan=pro")[0] == 1


def test_a_decision_older_than_settled_events_is_flagged_inexact() -> None:
    p = EMPTY
    for i in range(12):
        p = add_event(p, "send", "a", 100.0 * i, 0)
    batch = contact_features(records_of([p, p]), np.array([150.0, 5000.0]), (), 1e9)
    assert batch.exact.tolist() == [False, True]


def test_pair_features_mark_the_creative_and_its_offer_clicked_before() -> None:
    batch = features_at([2 * DAY])
    keys = np.array([creative_key(c) for c in ("a", "a2", "b")], dtype=np.uint32)
    pair = pair_features(batch, keys, np.array([0, 0, 1]))
    assert pair[0].tolist() == [[1, 1], [0, 1], [0, 0]]
    before = pair_features(features_at([3600.0]), keys, np.array([0, 0, 1]))
    assert not before.any()


@pytest.mark.parametrize("n", [0, 1, 257])
def test_shapes(n: int) -> None:
    batch = contact_features(records_of([profile()] * n), np.zeros(n), FIELDS, 1e9)
    assert batch.raw.shape == (n, len(NAMES)) and len(batch) == n


def test_training_pair_features_equal_the_serving_columns() -> None:
    from selector import account_from_dict
    from selector.model.examples import _OfferLookup, sent_pair_features

    ids, offers = ("a", "a2", "b"), ("o1", "o1", "o2")
    account = account_from_dict({
        "account_id": "x",
        "offers": [{"offer_id": "o1", "payout": 1}, {"offer_id": "o2", "payout": 1}],
        "creatives": [{"creative_id": c, "offer_id": o} for c, o in zip(ids, offers, strict=True)],
    })  # fmt: skip
    profiles = [profile(), add_event(EMPTY, "click", "b", 5.0, 0), EMPTY] * 3
    batch = contact_features(records_of(profiles), np.full(9, 3 * DAY), FIELDS, 1e9)
    keys = np.array([creative_key(c) for c in ids], dtype=np.uint32)
    serving = pair_features(batch, keys, np.array([0, 0, 1]))
    sent = np.arange(9) % 3
    training = sent_pair_features(batch, keys[sent], _OfferLookup(account))
    np.testing.assert_array_equal(training, serving[np.arange(9), sent])
