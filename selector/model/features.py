"""Contact features as arrays: a batch of profile records at their decision times -> an
(N, P) matrix, plus the (N, K, 2) contact-creative features, in a few numpy operations.

The view of a profile at time t counts its settled totals and its recent events strictly
before t (`profile` explains the point-in-time rule); a contact whose last visible event
is more than the retention before t has an empty history. Training (`train`) and scoring
(`policies.model`) both call `contact_features`, so the model is trained on exactly the
features it is served.

Contact features (`BASE_FEATURES`), before standardization:
  log_sends, log_clicks        log(1 + count)
  click_rate                   (clicks + 0.5) / (sends + 5), at most 1
  never_clicked                1 without a visible click
  click_recency                exp(-days since the last click / 30), 0 if never
  log_days_since_click         log(1 + min(days, 365)), 0 if never
  log_revenue, has_converted   revenue history
  engage_cos, engage_sin       the clicks' hour-of-day unit vectors (at the centre of each
                               click's UTC hour) summed, / (clicks + 1): the usual
                               engagement hour, shrunk to 0 for few clicks
  hour_match                   that vector . the decision's hour vector
  now_cos, now_sin             the decision's hour of day
  log_distinct_clicked         log(1 + distinct creatives clicked)
Custom fields: a numeric field scaled to [0, 1] by its bounds plus a `_missing` flag; a
categorical field one indicator per declared value (all 0 when missing).
Contact-creative features (`PAIR_FEATURES`): clicked this creative before; clicked a
creative of this creative's offer before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.custom_fields import CategoricalField, CustomField, NumericField
from selector.model.profile import DAY, HOURS, KIND_CODE, MAX_RECENT
from selector.model.record import Records, custom_slots

FloatArray = NDArray[Any]
BASE_FEATURES = (
    *("log_sends", "log_clicks", "click_rate", "never_clicked", "click_recency"),
    *("log_days_since_click", "log_revenue", "has_converted", "engage_cos", "engage_sin"),
    *("hour_match", "now_cos", "now_sin", "log_distinct_clicked"),
)
PAIR_FEATURES = ("clicked_this_creative", "clicked_this_offer")
RECENCY_DAYS = 30.0
_HOUR_COS = np.cos(2.0 * np.pi * (np.arange(HOURS) + 0.5) / HOURS)
_HOUR_SIN = np.sin(2.0 * np.pi * (np.arange(HOURS) + 0.5) / HOURS)


def custom_names(fields: Sequence[CustomField]) -> tuple[str, ...]:
    names: list[str] = []
    for f in fields:
        if isinstance(f, NumericField):
            names += [f.name, f"{f.name}_missing"]
        else:
            names += [f"{f.name}={v}" for v in f.values]
    return tuple(names)


def feature_names(fields: Sequence[CustomField]) -> tuple[str, ...]:
    return (*BASE_FEATURES, *custom_names(fields))


@dataclass(frozen=True, slots=True, eq=False)
class ContactBatch:
    """Features of N contacts at their decision times. `clicked` holds the creative keys
    clicked before each decision (N x 16, valid where `clicked_valid`); `exact` is False
    where the decision is older than events already settled into the profile."""

    raw: FloatArray
    clicked: NDArray[np.uint32]
    clicked_valid: NDArray[np.bool_]
    exact: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.raw.shape[0])


def contact_features(
    recs: Records, times: FloatArray, fields: Sequence[CustomField], retention_seconds: float
) -> ContactBatch:
    """Raw (unstandardized) contact features of a batch of records at `times`."""
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
    history = _history(
        sends, clicks, conversions, revenue, last_click, hour_cos, hour_sin, times, live
    )
    distinct = _distinct(clicked, valid)
    raw = np.concatenate(
        [history, np.log1p(distinct)[:, None], _custom(custom_slots(recs), fields)], axis=1
    )
    exact = np.asarray(recs["settled_until"] < times)
    return ContactBatch(raw, clicked, valid, exact)


def _history(
    sends: FloatArray,
    clicks: FloatArray,
    conversions: FloatArray,
    revenue: FloatArray,
    last_click: FloatArray,
    hour_cos: FloatArray,
    hour_sin: FloatArray,
    times: FloatArray,
    live: FloatArray,
) -> FloatArray:
    """The first 13 base features; an expired history counts as empty."""
    sends, clicks = np.where(live, sends, 0).astype(float), np.where(live, clicks, 0).astype(float)
    revenue = np.where(live, revenue, 0.0)
    clicked = (clicks > 0) & np.isfinite(last_click)
    days = np.where(clicked, np.clip((times - last_click) / DAY, 0.0, 365.0), 0.0)
    engage_cos = np.where(live, hour_cos, 0.0) / (clicks + 1.0)
    engage_sin = np.where(live, hour_sin, 0.0) / (clicks + 1.0)
    now = 2.0 * np.pi * (np.mod(times, DAY) / DAY)
    now_cos, now_sin = np.cos(now), np.sin(now)
    return np.stack(
        [
            np.log1p(sends),
            np.log1p(clicks),
            np.minimum((clicks + 0.5) / (sends + 5.0), 1.0),
            (~clicked).astype(float),
            np.where(clicked, np.exp(-days / RECENCY_DAYS), 0.0),
            np.log1p(days),
            np.log1p(revenue),
            (np.where(live, conversions, 0) > 0).astype(float),
            engage_cos,
            engage_sin,
            engage_cos * now_cos + engage_sin * now_sin,
            now_cos,
            now_sin,
        ],
        axis=1,
    )


def _distinct(keys: NDArray[np.uint32], valid: NDArray[np.bool_]) -> FloatArray:
    """Distinct valid keys per row."""
    masked = np.where(valid, keys.astype(np.int64), -1)
    ordered = np.sort(masked, axis=1)
    new = np.ones_like(ordered, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return np.asarray((new & (ordered >= 0)).sum(axis=1), dtype=float)


def _custom(slots: FloatArray, fields: Sequence[CustomField]) -> FloatArray:
    columns: list[FloatArray] = []
    for i, f in enumerate(fields):
        value = slots[:, i]
        missing = np.isnan(value)
        if isinstance(f, NumericField):
            scaled = (np.where(missing, f.low, value) - f.low) / (f.high - f.low)
            columns += [np.clip(scaled, 0.0, 1.0), missing.astype(float)]
        else:
            assert isinstance(f, CategoricalField)
            index = np.where(missing, -1, value).astype(np.int64)
            columns.append((index[:, None] == np.arange(len(f.values))).astype(float))
    if not columns:
        return np.zeros((slots.shape[0], 0))
    return np.column_stack(columns)


def pair_features(
    batch: ContactBatch, creative_keys: NDArray[np.uint32], offer_of: NDArray[np.intp]
) -> FloatArray:
    """(N, K, 2): whether each contact clicked each creative before, and a creative of its
    offer (creatives of the same `offer_of` code)."""
    hit = (batch.clicked[:, :, None] == creative_keys[None, None, :]) & batch.clicked_valid[
        :, :, None
    ]
    this = hit.any(axis=1)
    same_offer = (offer_of[:, None] == offer_of[None, :]).astype(np.float64)
    offer = (this.astype(np.float64) @ same_offer) > 0
    return np.stack([this, offer], axis=2).astype(np.float64)
