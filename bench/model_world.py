"""The synthetic account and event history `bench.model_bench` measures on.

10 creatives over 3 offers (two paid per conversion, one per click) and two custom
fields (`interest`, 4 values; `age`, 18-80). Each contact has an interest segment that
shifts its click rate per creative, an age that shifts it per offer, and an engagement
hour: a send near it is clicked more. Sends pick creatives uniformly (a logging policy
that explores), at a steady rate; clicks follow a minute later, conversions (for clicked
per-conversion creatives) two minutes later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from selector import Account, AccountStats, Counts, account_from_dict
from selector.custom_fields import CategoricalField, CustomField, NumericField
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.profile import EMPTY, ContactProfile, add_event
from selector.model.record import encode
from selector.model.train import Examples, TrainingConfig, train

OFFERS = (("loan", 18.0, "cpa"), ("insurance", 25.0, "cpa"), ("survey", 4.0, "cto"))
CREATIVES = 10
INTERESTS = ("loans", "insurance", "surveys", "none")
FIELDS: tuple[CustomField, ...] = (
    CategoricalField("interest", INTERESTS),
    NumericField("age", 18, 80),
)
CAMPAIGN = "bench-campaign"
SENDS_PER_DAY = 100_000
DECISION_CONTACTS = 1000


def account(method: str) -> Account:
    return account_from_dict({
        "account_id": "bench-model",
        "settings": {"goal": "revenue", "methods": {method: 100}, "payout_floor": 1},
        "offers": [{"offer_id": o, "payout": p, "payout_type": t} for o, p, t in OFFERS],
        "creatives": [
            {"creative_id": f"creative-{i:02d}", "offer_id": OFFERS[i % 3][0]}
            for i in range(CREATIVES)
        ],
        "campaigns": [{"campaign_id": CAMPAIGN, "default_creative_id": "creative-00",
                       "automated_percent": 100}],
    })  # fmt: skip


@dataclass(eq=False)
class World:
    account: Account
    thompson_account: Account
    events: list[OutcomeEvent]
    custom: dict[str, tuple[float | None, ...]]
    contact_ids: list[str]
    now: float
    fields: tuple[CustomField, ...] = FIELDS
    retention: float = 180 * 86_400.0
    campaign: str = CAMPAIGN
    offer_code: Any = field(default_factory=lambda: np.arange(CREATIVES) % 3)

    @property
    def event_count(self) -> int:
        return len(self.events)

    def replay(self) -> Examples:
        return examples_from_events(
            self.account, self.events, self.fields, self.retention, 3600.0, self.now,
            self.custom,
        )  # fmt: skip

    @cached_property
    def examples(self) -> Examples:
        return self.replay()

    @cached_property
    def model_diagonal(self) -> ContextualModel:
        return self._train("diagonal")

    @cached_property
    def model_full(self) -> ContextualModel:
        return self._train("full")

    def _train(self, kind: Any) -> ContextualModel:
        config = TrainingConfig(posterior=kind)
        return train(self.account, self.examples, self.fields, self.retention, 1, self.now,
                     config)[0]  # fmt: skip

    @cached_property
    def blobs(self) -> list[bytes]:
        """Stored profiles of the first contacts, folded from their events."""
        wanted = set(self.contact_ids)
        profiles: dict[str, ContactProfile] = {
            c: EMPTY.with_custom(self.custom[c]) for c in self.contact_ids
        }
        for e in sorted(self.events, key=lambda e: e.time):
            if e.contact_id in wanted:
                profiles[e.contact_id] = add_event(
                    profiles[e.contact_id], e.kind, e.creative_id, e.time, e.revenue_micros
                )
        return [encode(profiles[c]) for c in self.contact_ids]

    @cached_property
    def stats(self) -> AccountStats:
        counts: dict[str, list[int]] = {}
        for e in self.events:
            row = counts.setdefault(e.creative_id, [0, 0, 0, 0])
            row[("send", "click", "conversion").index(e.kind)] += 1
            row[3] += e.revenue_micros
        return AccountStats(MappingProxyType({k: Counts(*v) for k, v in counts.items()}))

    def describe(self) -> dict[str, Any]:
        p, c, q = self.model_full.spec.dims
        return {
            "creatives": CREATIVES, "offers": len(OFFERS), "events": self.event_count,
            "contacts_with_profiles": len(self.contact_ids), "weights": p * (c + q),
            "model_bytes": {"diagonal": len(self.model_diagonal.to_bytes()),
                            "full": len(self.model_full.to_bytes())},
            "profile_bytes": {"mean": float(np.mean([len(b) for b in self.blobs])),
                              "max": max(len(b) for b in self.blobs)},
        }  # fmt: skip


def build_world(events: int, seed: int) -> World:
    rng = np.random.default_rng(seed)
    sends = int(events / 1.12)
    contacts = max(DECISION_CONTACTS, sends // 25)
    interest = rng.integers(0, len(INTERESTS), contacts)
    age = rng.uniform(18, 80, contacts)
    hour = rng.uniform(0, 24, contacts)
    affinity = rng.normal(0.0, 0.6, (len(INTERESTS), CREATIVES))
    base = -2.6 + rng.normal(0.0, 0.2, CREATIVES)
    contact = rng.integers(0, contacts, sends)
    creative = rng.integers(0, CREATIVES, sends)
    time = np.arange(sends) * (86_400.0 / SENDS_PER_DAY)
    send_hour = (time % 86_400.0) / 3600.0
    logit = (
        base[creative]
        + affinity[interest[contact], creative]
        + 0.5 * np.cos(2 * np.pi * (send_hour - hour[contact]) / 24)
        + 0.01 * (age[contact] - 50) * (creative % 3 - 1)
    )
    click = rng.random(sends) < 1 / (1 + np.exp(-logit))
    convert = click & (creative % 3 != 2) & (rng.random(sends) < 0.25)
    payout = np.array([OFFERS[i % 3][1] for i in range(CREATIVES)])
    out: list[OutcomeEvent] = []
    for i in range(sends):
        c, k, t = f"u{contact[i]}", f"creative-{creative[i]:02d}", float(time[i])
        out.append(OutcomeEvent("send", f"s{i}", c, k, t))
        if click[i]:
            out.append(OutcomeEvent("click", f"k{i}", c, k, t + 60.0, 0, f"s{i}"))
        if convert[i]:
            micros = round(payout[creative[i]] * 1e6)
            out.append(OutcomeEvent("conversion", f"v{i}", c, k, t + 120.0, micros, f"s{i}"))
    custom: dict[str, tuple[float | None, ...]] = {
        f"u{j}": (float(interest[j]), float(age[j])) for j in range(contacts)
    }
    now = float(time[-1]) + 2 * 3600.0
    return World(account("model"), account("thompson_single_step"), out, custom,
                 [f"u{j}" for j in range(DECISION_CONTACTS)], now)  # fmt: skip
