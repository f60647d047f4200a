"""The counterfactual "all automated traffic to the model method", from the contextual
models on the models topic and point-in-time profiles (`selector.live_ope`).

The target of a row is the model version in force at its decision: the highest version
whose record time (when the workers could load it) is at or before the row's decision
time. Its probability of each creative is the model's win share (`selector.model.scoring
.win_shares`, `SAMPLES` posterior draws) over the catalog's candidate creatives, given
the contact's features at the send: the profile rebuilt from the event topics' sends,
clicks and conversions before it, replayed in event-time order through the profile fold
the stream runs (`profile.add_event`), as training builds its examples
(`selector.model.examples`). Per-row eligibility (cooldowns) is not in the log, so the
catalog's candidates stand for it; the learning mode and the exploration floor, which
depend on the live statistics at each decision, are not modelled. A creative never logged
cannot be evaluated: its share is left out and renormalized (`unsupported_mass`).

Rows without a version in force (`no_model`) or whose send is not among the events
(`no_profile`) are left out by reason (`Coverage`), nothing guessed. When there are more
rows than `CAP`, a uniform random sample of `CAP` of them (from the report's seed) is
evaluated, and the coverage says so (`sampled_from`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.domain import Account
from selector.live_counterfactual import Coverage
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent
from selector.model.predict import catalog_for
from selector.model.profile import EMPTY, ContactProfile, add_event
from selector.model.record import RECORD, to_bytes
from selector.model.scoring import win_shares

__all__ = ["CAP", "SAMPLES", "ModelEvidence", "ModelRows", "model_rows", "sampled",
           "send_profiles"]  # fmt: skip
CAP = 200_000
SAMPLES = 256
CHUNK = 2_000
_ORDER = {"send": 0, "click": 1, "conversion": 2}
SendKey = tuple[int, str, float]  # (hash of the contact id, creative id, send time)


@dataclass(frozen=True, slots=True, eq=False)
class ModelEvidence:
    """What one account's model counterfactual needs: its catalog, its model versions
    with their record times, and its events (sends, clicks, conversions)."""

    account: Account
    versions: tuple[tuple[float, ContextualModel], ...]
    events: Sequence[OutcomeEvent]
    cap: int = CAP
    samples: int = SAMPLES


@dataclass(frozen=True, slots=True, eq=False)
class ModelRows:
    """`target`: one row per kept row over the log's creatives; `kept`: which of the log's
    rows (after sampling)."""

    target: NDArray[np.float64]
    kept: NDArray[np.bool_]
    coverage: Coverage


def sampled(n: int, cap: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """All of `n` rows, or a uniform random `cap` of them."""
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=cap, replace=False) if n > cap else np.arange(n)] = True
    return out


def send_profiles(
    events: Iterable[OutcomeEvent], wanted: set[SendKey], retention_seconds: float
) -> dict[SendKey, bytes]:
    """Each wanted send's contact profile just before it (a profile record), from the
    replay of `events` in time order; duplicates (kind, event id) count once."""
    profiles: dict[str, ContactProfile] = {}
    seen: set[tuple[str, str]] = set()
    out: dict[SendKey, bytes] = {}
    for e in sorted(events, key=lambda e: (e.time, _ORDER[e.kind])):
        if (e.kind, e.event_id) in seen:
            continue
        seen.add((e.kind, e.event_id))
        profile = profiles.get(e.contact_id, EMPTY)
        if e.kind == "send":
            key = (hash(e.contact_id), e.creative_id, e.time)
            if key in wanted and key not in out:
                out[key] = to_bytes(profile)
        profiles[e.contact_id] = add_event(
            profile, e.kind, e.creative_id, e.time, e.revenue_micros, retention_seconds
        )
    return out


def _in_force(
    versions: Sequence[tuple[float, ContextualModel]], decided: NDArray[Any]
) -> tuple[list[ContextualModel], NDArray[np.intp]]:
    """The distinct models and, per row, the index of the one in force (-1: none)."""
    ordered = sorted(versions, key=lambda v: (v[1].version, v[0]))
    models = [m for _, m in ordered]
    at = np.full(decided.size, -1, dtype=np.intp)
    for i, (recorded, _) in enumerate(ordered):  # higher versions win
        at[decided >= recorded] = i
    return models, at


def _shares(
    account: Account, model: ContextualModel, recs: Any, times: NDArray[Any], samples: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:  # fmt: skip
    """(n x K) win shares over the catalog's candidates, in catalog order."""
    catalog = catalog_for(account, model)
    eligible = np.array([c.is_candidate for c in account.creatives], dtype=bool)
    out = []
    for start in range(0, times.size, CHUNK):
        part = slice(start, start + CHUNK)
        x, pair = catalog.inputs(recs[part], times[part])
        mask = np.broadcast_to(eligible, (x.shape[0], eligible.size))
        out.append(win_shares(catalog, x, pair, mask, account.settings.goal, samples, rng))
    return np.concatenate(out) if out else np.zeros((0, eligible.size))


def _aligned(
    shares: NDArray[Any], catalog_ids: tuple[str, ...], creative_ids: tuple[str, ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Rows over `creative_ids` (renormalized) and the mass outside them."""
    column = {c: j for j, c in enumerate(catalog_ids)}
    rows = np.zeros((shares.shape[0], len(creative_ids)))
    for j, c in enumerate(creative_ids):
        if c in column:
            rows[:, j] = shares[:, column[c]]
    mass = rows.sum(axis=1)
    even = np.full(len(creative_ids), 1.0 / max(len(creative_ids), 1))
    safe = np.where(mass[:, None] > 0, rows / np.maximum(mass, 1e-300)[:, None], even)
    return safe, 1.0 - mass


def model_rows(
    evidence: ModelEvidence,
    creative_ids: tuple[str, ...],
    *,
    action: NDArray[Any],
    contact: NDArray[Any],
    sent: NDArray[Any],
    decided: NDArray[Any],
    rng: np.random.Generator,
) -> ModelRows:
    """Target rows over `creative_ids` (the log's actions) for the log's rows that have a
    model in force and a profile, in their order; the coverage counts the rest."""
    n = action.size
    chosen = sampled(n, evidence.cap, rng)
    models, at = _in_force(evidence.versions, decided)
    wanted = chosen & (at >= 0)
    retention = max((m.spec.retention_seconds for m in models), default=0.0)
    rows_wanted = np.flatnonzero(wanted)
    keys = [(int(contact[i]), creative_ids[action[i]], float(sent[i])) for i in rows_wanted]
    found = send_profiles(evidence.events, set(keys), retention)
    has = np.zeros(n, dtype=bool)
    has[rows_wanted] = [k in found for k in keys]
    blobs = [found[k] for k in keys if k in found]
    recs = np.frombuffer(b"".join(blobs), dtype=RECORD) if blobs else np.zeros(0, RECORD)
    target = np.zeros((n, len(creative_ids)))
    outside = np.zeros(n)
    catalog_ids = tuple(c.creative_id for c in evidence.account.creatives)
    row_of = np.cumsum(has) - 1  # the row of `recs` for each kept log row
    for i, model in enumerate(models):
        rows = np.flatnonzero(has & (at == i))
        if rows.size:
            shares = _shares(evidence.account, model, recs[row_of[rows]], decided[rows],
                             evidence.samples, rng)  # fmt: skip
            target[rows], outside[rows] = _aligned(shares, catalog_ids, creative_ids)
    return ModelRows(target[has], has, _coverage(chosen, at, has, decided, outside, n))


def _coverage(
    chosen: NDArray[Any], at: NDArray[Any], has: NDArray[Any], decided: NDArray[Any],
    outside: NDArray[Any], n: int,
) -> Coverage:  # fmt: skip
    reasons = {
        "no_model": int(np.count_nonzero(chosen & (at < 0))),
        "no_profile": int(np.count_nonzero(chosen & (at >= 0) & ~has)),
    }
    out = decided[chosen & ~has]
    left: dict[Any, int] = {r: c for r, c in reasons.items() if c}
    return Coverage(
        by_snapshot=int(has.sum()),
        by_logged=0,
        left_out=left,
        first_left_out=float(out.min()) if out.size else float("nan"),
        last_left_out=float(out.max()) if out.size else float("nan"),
        unsupported_mass=float(outside[has].mean()) if has.any() else 0.0,
        source="model version",
        sampled_from=n if int(chosen.sum()) < n else 0,
    )
