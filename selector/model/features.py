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


_SLOTS = np.arange(MAX_RECENT)
_CLICK, _CONVERSION = KIND_CODE["click"], KIND_CODE["conversion"]


def contact_features(
    recs: Records, times: FloatArray, fields: Sequence[CustomField], retention_seconds: float
) -> ContactBatch:
    """Raw (unstandardized) contact features of a batch of records at `times`."""
    times = np.asarray(times, dtype=np.float64)
    n = times.shape[0]
    t = times[:, None]
    recent = recs["recent"]
    rtime, kind = recent["time"], recent["kind"]
    visible = recs["n_recent"][:, None] > _SLOTS
    visible &= rtime < t
    click_now = kind == _CLICK
    click_now &= visible
    conv_now = kind == _CONVERSION
    conv_now &= visible
    n_visible, n_clicks, n_convs = visible.sum(axis=1), click_now.sum(axis=1), conv_now.sum(axis=1)
    last_event = np.maximum(recs["settled_until"], np.where(visible, rtime, -np.inf).max(axis=1))
    live = (times - last_event) <= retention_seconds
    everyone = bool(live.all())
    # Totals as of each decision, zero for an expired history.
    counts = np.empty((3, n), dtype=np.int64)
    np.add(recs["sends"], n_visible, out=counts[0])
    counts[0] -= n_clicks
    counts[0] -= n_convs
    np.add(recs["clicks"], n_clicks, out=counts[1])
    np.add(recs["conversions"], n_convs, out=counts[2])
    revenue = (recs["revenue_micros"] + (recent["revenue"] * conv_now).sum(axis=1)) / 1e6
    if not everyone:
        counts[:, ~live] = 0
        revenue[~live] = 0.0
    sends, clicks = counts[0].astype(float), counts[1].astype(float)
    hour = _hour_of_day(rtime)
    settled_hours = recs["click_hours"].astype(np.float64)
    hour_cos = settled_hours @ _HOUR_COS + (_HOUR_COS[hour] * click_now).sum(axis=1)
    hour_sin = settled_hours @ _HOUR_SIN + (_HOUR_SIN[hour] * click_now).sum(axis=1)
    last_click = np.maximum(recs["last_click"], np.where(click_now, rtime, -np.inf).max(axis=1))
    settled = recs["clicked"]
    clicked = np.concatenate([settled["key"], recent["creative"]], axis=1)
    valid = np.empty(clicked.shape, dtype=bool)
    np.less(
        _SLOTS[: settled.shape[1]], recs["n_clicked"][:, None], out=valid[:, : settled.shape[1]]
    )
    valid[:, settled.shape[1] :] = click_now
    if not everyone:
        valid &= live[:, None]
        hour_cos[~live] = 0.0
        hour_sin[~live] = 0.0
    raw = np.empty((n, len(BASE_FEATURES) + len(custom_names(fields))))
    _history(raw, sends, clicks, counts[2], revenue, last_click, hour_cos, hour_sin, times)
    raw[:, len(BASE_FEATURES) - 1] = np.log1p(_distinct(clicked, valid))
    _custom(raw[:, len(BASE_FEATURES) :], custom_slots(recs), fields)
    exact = np.asarray(recs["settled_until"] < times)
    return ContactBatch(raw, clicked, valid, exact)


def _hour_of_day(time: FloatArray) -> NDArray[np.intp]:
    """(time mod DAY) // 3600 as integers: the floor of time / 3600 (a quotient rounded up
    to an integer is corrected), mod 24, which is exact for times below 2^52 seconds."""
    q = np.floor(time / 3600.0)
    if q.size and not np.abs(q).max() < 2.0**40:
        return (np.mod(time, DAY) // 3600.0).astype(np.intp)
    q -= q * 3600.0 > time
    hour = q.astype(np.intp)
    hour %= HOURS
    return hour


def _history(
    out: FloatArray,
    sends: FloatArray,
    clicks: FloatArray,
    conversions: FloatArray,
    revenue: FloatArray,
    last_click: FloatArray,
    hour_cos: FloatArray,
    hour_sin: FloatArray,
    times: FloatArray,
) -> None:
    """The first 13 base features into `out`'s first 13 columns (the totals are those of
    the live history: zero where it expired)."""
    clicked = (clicks > 0) & np.isfinite(last_click)
    days = np.where(clicked, np.clip((times - last_click) / DAY, 0.0, 365.0), 0.0)
    clicks_1 = clicks + 1.0
    engage_cos = hour_cos / clicks_1
    engage_sin = hour_sin / clicks_1
    now = 2.0 * np.pi * (np.mod(times, DAY) / DAY)
    now_cos, now_sin = np.cos(now), np.sin(now)
    out[:, 0] = np.log1p(sends)
    out[:, 1] = np.log1p(clicks)
    out[:, 2] = np.minimum((clicks + 0.5) / (sends + 5.0), 1.0)
    out[:, 3] = ~clicked
    out[:, 4] = np.where(clicked, np.exp(-days / RECENCY_DAYS), 0.0)
    out[:, 5] = np.log1p(days)
    out[:, 6] = np.log1p(revenue)
    out[:, 7] = conversions > 0
    out[:, 8] = engage_cos
    out[:, 9] = engage_sin
    out[:, 10] = engage_cos * now_cos + engage_sin * now_sin
    out[:, 11] = now_cos
    out[:, 12] = now_sin


def _distinct(keys: NDArray[np.uint32], valid: NDArray[np.bool_]) -> FloatArray:
    """Distinct valid keys per row."""
    masked = np.where(valid, keys.astype(np.int64), -1)
    masked.sort(axis=1)
    new = masked[:, 1:] != masked[:, :-1]
    new &= masked[:, 1:] >= 0
    return (new.sum(axis=1) + (masked[:, 0] >= 0)).astype(float)


def _custom(out: FloatArray, slots: FloatArray, fields: Sequence[CustomField]) -> None:
    """The custom fields' columns into `out` (N x len(custom_names(fields)))."""
    at = 0
    for i, f in enumerate(fields):
        value = slots[:, i]
        missing = np.isnan(value)
        if isinstance(f, NumericField):
            scaled = (np.where(missing, f.low, value) - f.low) / (f.high - f.low)
            out[:, at] = np.clip(scaled, 0.0, 1.0)
            out[:, at + 1] = missing
            at += 2
        else:
            assert isinstance(f, CategoricalField)
            index = np.where(missing, -1, value).astype(np.int64)
            width = len(f.values)
            np.equal(index[:, None], np.arange(width), out=out[:, at : at + width])
            at += width


def pair_features(
    batch: ContactBatch, creative_keys: NDArray[np.uint32], offer_of: NDArray[np.intp]
) -> FloatArray:
    """(N, K, 2): whether each contact clicked each creative before, and a creative of its
    offer (creatives of the same `offer_of` code)."""
    n, k = batch.clicked.shape[0], creative_keys.shape[0]
    out = np.zeros((n, k, 2))
    if k == 0:
        return out
    order = np.argsort(creative_keys, kind="stable")
    ordered = creative_keys[order]
    if k > 1 and not (ordered[1:] != ordered[:-1]).all():
        return _pair_features_dense(batch, creative_keys, offer_of)
    # Each valid clicked key's place among the sorted catalog keys: a hit where it is there.
    place = np.searchsorted(ordered, batch.clicked)
    np.minimum(place, k - 1, out=place)
    hit = ordered[place] == batch.clicked
    hit &= batch.clicked_valid
    rows, slots = np.nonzero(hit)
    if rows.size == 0:
        return out
    creative = order[place[rows, slots]]
    out[rows, creative, 0] = 1.0
    offers = int(offer_of.max()) + 1
    clicked_offer = np.zeros((n, offers), dtype=bool)
    clicked_offer[rows, offer_of[creative]] = True
    out[:, :, 1] = clicked_offer[:, offer_of]
    return out


def _pair_features_dense(
    batch: ContactBatch, creative_keys: NDArray[np.uint32], offer_of: NDArray[np.intp]
) -> FloatArray:
    """`pair_features` by comparing every clicked key with every creative key (a catalog
    whose keys collide)."""
    hit = (batch.clicked[:, :, None] == creative_keys[None, None, :]) & batch.clicked_valid[
        :, :, None
    ]
    this = hit.any(axis=1)
    same_offer = (offer_of[:, None] == offer_of[None, :]).astype(np.float64)
    offer = (this.astype(np.float64) @ same_offer) > 0
    return np.stack([this, offer], axis=2).astype(np.float64)
