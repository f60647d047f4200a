"""The contact and pair features equal a direct transcription of their definitions, bit
for bit, on random records: expired histories, events after the decision, missing custom
fields, repeated clicks on one creative, and catalogs whose keys collide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from selector.custom_fields import CategoricalField, CustomField, NumericField
from selector.model.features import (
    _HOUR_COS,
    _HOUR_SIN,
    RECENCY_DAYS,
    ContactBatch,
    contact_features,
    pair_features,
)
from selector.model.profile import DAY, KIND_CODE, MAX_CLICKED, MAX_CUSTOM, MAX_RECENT
from selector.model.record import RECORD, Records, custom_slots

FIELDS: tuple[CustomField, ...] = (
    NumericField("age", 20, 60),
    CategoricalField("plan", ("free", "pro", "team")),
    NumericField("score", -1, 1),
)
KEYS = np.array([11, 22, 33, 44, 55, 66], dtype=np.uint32)


def reference_features(
    recs: Records, times: Any, fields: Sequence[CustomField], retention_seconds: float
) -> ContactBatch:
    """The features spelled out one step at a time."""
    times = np.asarray(times, dtype=np.float64)
    t = times[:, None]
    slot = np.arange(MAX_RECENT)[None, :] < recs["n_recent"][:, None].astype(np.intp)
    recent = recs["recent"]
    rtime = recent["time"]
    visible = slot & (rtime < t)
    kind = recent["kind"]
    click_now = visible & (kind == KIND_CODE["click"])
    conv_now = visible & (kind == KIND_CODE["conversion"])
    n_clicks, n_convs = click_now.sum(axis=1), conv_now.sum(axis=1)
    sends = recs["sends"] + (visible.sum(axis=1) - n_clicks - n_convs)
    clicks = recs["clicks"] + n_clicks
    conversions = recs["conversions"] + n_convs
    revenue = (recs["revenue_micros"] + (recent["revenue"] * conv_now).sum(axis=1)) / 1e6
    hour = (np.mod(rtime, DAY) // 3600.0).astype(np.intp)
    settled_hours = recs["click_hours"].astype(np.float64)
    hour_cos = settled_hours @ _HOUR_COS + (_HOUR_COS[hour] * click_now).sum(axis=1)
    hour_sin = settled_hours @ _HOUR_SIN + (_HOUR_SIN[hour] * click_now).sum(axis=1)
    last_click = np.maximum(recs["last_click"], np.where(click_now, rtime, -np.inf).max(axis=1))
    last_event = np.maximum(recs["settled_until"], np.where(visible, rtime, -np.inf).max(axis=1))
    live = (times - last_event) <= retention_seconds
    clicked = np.concatenate([recs["clicked"]["key"], recent["creative"]], axis=1)
    settled_slot = np.arange(recs["clicked"].shape[1])[None, :] < recs["n_clicked"][:, None]
    valid = np.concatenate([settled_slot, click_now], axis=1) & live[:, None]
    sends, clicks = np.where(live, sends, 0).astype(float), np.where(live, clicks, 0).astype(float)
    revenue = np.where(live, revenue, 0.0)
    has_click = (clicks > 0) & np.isfinite(last_click)
    days = np.where(has_click, np.clip((times - last_click) / DAY, 0.0, 365.0), 0.0)
    engage_cos = np.where(live, hour_cos, 0.0) / (clicks + 1.0)
    engage_sin = np.where(live, hour_sin, 0.0) / (clicks + 1.0)
    now = 2.0 * np.pi * (np.mod(times, DAY) / DAY)
    now_cos, now_sin = np.cos(now), np.sin(now)
    distinct = [
        len({int(k) for k, v in zip(ks, vs, strict=True) if v})
        for ks, vs in zip(clicked, valid, strict=True)
    ]
    columns = [
        np.log1p(sends),
        np.log1p(clicks),
        np.minimum((clicks + 0.5) / (sends + 5.0), 1.0),
        (~has_click).astype(float),
        np.where(has_click, np.exp(-days / RECENCY_DAYS), 0.0),
        np.log1p(days),
        np.log1p(revenue),
        (np.where(live, conversions, 0) > 0).astype(float),
        engage_cos,
        engage_sin,
        engage_cos * now_cos + engage_sin * now_sin,
        now_cos,
        now_sin,
        np.log1p(np.array(distinct, dtype=float)),
    ]
    slots = custom_slots(recs)
    for i, f in enumerate(fields):
        value = slots[:, i]
        missing = np.isnan(value)
        if isinstance(f, NumericField):
            scaled = (np.where(missing, f.low, value) - f.low) / (f.high - f.low)
            columns += [np.clip(scaled, 0.0, 1.0), missing.astype(float)]
        else:
            assert isinstance(f, CategoricalField)
            columns += [(~missing & (value == j)).astype(float) for j in range(len(f.values))]
    raw = np.stack(columns, axis=1) if columns else np.zeros((times.size, 0))
    return ContactBatch(raw, clicked, valid, np.asarray(recs["settled_until"] < times))


def reference_pairs(batch: ContactBatch, keys: Any, offer_of: Any) -> Any:
    n, k = batch.clicked.shape[0], keys.size
    out = np.zeros((n, k, 2))
    for i in range(n):
        seen = {int(c) for c, v in zip(batch.clicked[i], batch.clicked_valid[i], strict=True) if v}
        for j in range(k):
            out[i, j, 0] = int(keys[j]) in seen
        for j in range(k):
            out[i, j, 1] = any(out[i, m, 0] for m in range(k) if offer_of[m] == offer_of[j])
    return out


def random_records(n: int, rng: np.random.Generator) -> tuple[Records, Any]:
    """Records with random totals, recent events and custom slots, and decision times,
    some before some of the recent events, some past the retention."""
    recs = np.zeros(n, dtype=RECORD)
    recs["version"] = 1
    base = rng.uniform(0, 400 * DAY, n)
    recs["sends"] = rng.integers(0, 50, n)
    recs["clicks"] = rng.integers(0, 5, n) * (rng.random(n) < 0.6)
    recs["conversions"] = rng.integers(0, 3, n) * (rng.random(n) < 0.3)
    recs["revenue_micros"] = rng.integers(0, 9_000_000, n) * (recs["conversions"] > 0)
    settled = rng.random(n) < 0.5
    recs["settled_until"] = np.where(settled, base, -np.inf)
    recs["last_click"] = np.where(
        settled & (recs["clicks"] > 0), base - rng.uniform(0, 90 * DAY, n), -np.inf
    )
    recs["click_hours"] = rng.integers(0, 3, (n, 24)) * (recs["clicks"] > 0)[:, None]
    n_recent = rng.integers(0, MAX_RECENT + 1, n)
    recs["n_recent"] = n_recent
    for i in range(n):
        times = np.sort(base[i] + rng.uniform(0, 30 * DAY, n_recent[i]))
        for j, when in enumerate(times):
            kind = int(rng.integers(1, 4))
            recs["recent"][i, j] = (
                kind,
                KEYS[rng.integers(0, KEYS.size + 2) % KEYS.size] if rng.random() < 0.9 else 99,
                when,
                4_000_000 * (kind == 3),
            )
        n_clicked = int(rng.integers(0, MAX_CLICKED + 1)) if recs["clicks"][i] else 0
        recs["n_clicked"][i] = n_clicked
        recs["clicked"]["key"][i, :n_clicked] = rng.choice(
            np.concatenate([KEYS, [77, 88]]), n_clicked, replace=False
        )
    present = rng.random((n, MAX_CUSTOM)) < 0.7
    values = np.column_stack([
        rng.uniform(10, 70, n), rng.integers(0, 3, n), rng.uniform(-2, 2, n),
        rng.standard_normal((n, MAX_CUSTOM - 3)),
    ])  # fmt: skip
    recs["custom"] = np.where(present, values, 0.0)
    recs["custom_set"] = (present * (1 << np.arange(MAX_CUSTOM))).sum(axis=1)
    last = np.where(
        n_recent > 0, recs["recent"]["time"][np.arange(n), np.maximum(n_recent - 1, 0)], base
    )
    times = last + rng.choice([-2 * DAY, 0.0, 1.0, 5 * DAY, 60 * DAY], n) + rng.uniform(0, DAY, n)
    return recs, times


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fields", [FIELDS, ()])
def test_contact_features_equal_the_reference(seed: int, fields: tuple[CustomField, ...]) -> None:
    recs, times = random_records(300, np.random.default_rng(seed))
    retention = 45 * DAY
    got = contact_features(recs, times, fields, retention)
    want = reference_features(recs, times, fields, retention)
    live_share = np.mean(got.raw[:, 0] > 0)
    assert 0.2 < live_share < 0.95  # some histories expired, most not
    assert got.raw.dtype == want.raw.dtype and got.raw.shape == want.raw.shape
    np.testing.assert_array_equal(got.raw.view(np.uint64), want.raw.view(np.uint64))
    np.testing.assert_array_equal(got.clicked, want.clicked)
    np.testing.assert_array_equal(got.clicked_valid, want.clicked_valid)
    np.testing.assert_array_equal(got.exact, want.exact)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("keys", "offer_of"),
    [
        (KEYS, np.array([0, 0, 1, 2, 2, 2])),
        (KEYS[::-1].copy(), np.array([0, 1, 2, 3, 4, 5])),
        (np.array([33, 11, 33, 99], dtype=np.uint32), np.array([0, 1, 1, 0])),  # collision
        (KEYS[:1], np.array([0])),
    ],
)
def test_pair_features_equal_the_reference(seed: int, keys: Any, offer_of: Any) -> None:
    recs, times = random_records(200, np.random.default_rng(100 + seed))
    batch = contact_features(recs, times, FIELDS, 45 * DAY)
    got = pair_features(batch, keys, offer_of)
    assert got[:, :, 0].any() and not got[:, :, 0].all()
    np.testing.assert_array_equal(got, reference_pairs(batch, keys, offer_of))


def test_the_hour_of_day_is_exact_at_the_hours_edges() -> None:
    from selector.model.features import _hour_of_day

    edges = 3600.0 * np.arange(-50, 24 * 400, 7)[:, None] + 1.7e9 * np.array([0.0, 1.0])
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    near = np.concatenate([near, np.array([[0.0, -0.0], [1e20, -3e17]])])
    np.testing.assert_array_equal(_hour_of_day(near), (np.mod(near, DAY) // 3600.0).astype(np.intp))
