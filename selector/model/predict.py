"""Per-contact predictions: for each creative, the click probability and the expected
revenue per send with a central interval, e.g.

    loan-a: 12.1% click [10.9, 13.4], $0.45 expected revenue [0.39, 0.52]

What `creative-select predict ACCOUNT CONTACT` prints and a client call returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selector.custom_fields import CategoricalField, CustomField
from selector.domain import Account
from selector.model.artifact import ContextualModel
from selector.model.profile import DAY, KIND_CODE, ContactProfile
from selector.model.record import Records
from selector.model.scoring import Catalog, Prediction, predict
from selector.view import FloatArray


def catalog_for(account: Account, model: ContextualModel) -> Catalog:
    """The model's tables for every creative of the account, in catalog order."""
    offers = {o.offer_id: o for o in account.offers}
    creatives = account.creatives
    return Catalog.of(
        model,
        tuple(c.creative_id for c in creatives),
        tuple(c.offer_id for c in creatives),
        np.array([offers[c.offer_id].payout for c in creatives], dtype=float),
        np.array([offers[c.offer_id].payout_type == "cto" for c in creatives], dtype=bool),
        account.settings.payout_floor,
    )


def predictions(
    account: Account,
    model: ContextualModel,
    profiles: Records,
    times: FloatArray,
    rng: np.random.Generator,
    samples: int = 2000,
    level: float = 0.8,
    candidates_only: bool = True,
) -> list[list[Prediction]]:
    """Per contact (its profile record at its time), per creative (active automated ones
    unless `candidates_only` is False)."""
    catalog = catalog_for(account, model)
    x, pair = catalog.inputs(profiles, np.asarray(times, dtype=float))
    ids = tuple(c.creative_id for c in account.creatives)
    rows = predict(catalog, ids, x, pair, rng, samples, level)
    keep = {c.creative_id for c in account.creatives if c.is_candidate or not candidates_only}
    return [[p for p in row if p.creative_id in keep] for row in rows]


def describe(p: Prediction, currency: str = "$") -> str:
    """'loan-a: 12.1% click [10.9, 13.4], $0.45 expected revenue [0.39, 0.52]'"""
    return (
        f"{p.creative_id}: {100 * p.click:.1f}% click [{100 * p.click_low:.1f}, "
        f"{100 * p.click_high:.1f}], {currency}{p.revenue:.2f} expected revenue "
        f"[{p.revenue_low:.2f}, {p.revenue_high:.2f}]"
    )


def describe_all(rows: Sequence[Prediction], currency: str = "$") -> str:
    return "\n".join(describe(p, currency) for p in rows)


def ranked(rows: Sequence[Prediction], goal: str) -> list[Prediction]:
    """Best first by what the account's goal maximizes (expected revenue or clicks)."""
    key = (lambda p: p.revenue) if goal == "revenue" else (lambda p: p.click)
    return sorted(rows, key=key, reverse=True)


def history(p: ContactProfile, now: float) -> str:
    """'14 sends, 2 clicks, 1 conversion ($20.00), last click 3.2 days ago'"""
    kinds = [r.kind for r in p.recent]
    sends = p.sends + kinds.count(KIND_CODE["send"])
    clicks = p.clicks + kinds.count(KIND_CODE["click"])
    conversions = p.conversions + kinds.count(KIND_CODE["conversion"])
    revenue = p.revenue_micros + sum(r.revenue_micros for r in p.recent)
    clicked = [r.time for r in p.recent if r.kind == KIND_CODE["click"]]
    last = max([p.last_click, *clicked])

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    text = f"{plural(sends, 'send')}, {plural(clicks, 'click')}, "
    text += f"{plural(conversions, 'conversion')} (${revenue / 1e6:.2f})"
    if np.isfinite(last):
        text += f", last click {max(0.0, now - last) / DAY:.1f} days ago"
    return text


def to_plain(p: Prediction) -> dict[str, float | str]:
    """A prediction as JSON-ready values (probabilities and currency units)."""
    return {
        "creative_id": p.creative_id,
        "click": p.click,
        "click_low": p.click_low,
        "click_high": p.click_high,
        "revenue": p.revenue,
        "revenue_low": p.revenue_low,
        "revenue_high": p.revenue_high,
    }


def custom_text(fields: Sequence[CustomField], slots: Sequence[float | None]) -> str:
    """The contact's stored custom values by name, e.g. 'plan=pro, age=41'."""
    parts = []
    for f, v in zip(fields, slots, strict=False):
        if v is not None:
            shown = f.values[int(v)] if isinstance(f, CategoricalField) else f"{v:g}"
            parts.append(f"{f.name}={shown}")
    return ", ".join(parts)
