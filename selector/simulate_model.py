"""The simulator's side of the contextual model: what the stream and the trainer do live.

- Profiles: one `ContactProfile` per simulated contact, folded from its sends (at send
  time) and its clicks and conversions (at their arrival times), with its custom fields
  set from the start; each batch's requests carry their records.
- The example log: per send, the raw contact features and pair features it was decided
  on (point in time by construction) and its outcome within the attribution window.
- Training: every `model_training_interval_seconds` of simulated time, a candidate is
  trained on the matured sends (older than the attribution window: the 99.9% quantile of
  the click delay plus that of the conversion delay, so every outcome a label counts has
  arrived), with the trainer's holdout (`selector.model.train`), and replaces the
  current model only through the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.contacts import Contacts
from selector.delays import DelayDistribution
from selector.domain import Account
from selector.model.artifact import ContextualModel
from selector.model.features import contact_features, pair_features
from selector.model.metrics import Verdict, gate
from selector.model.profile import (
    DEFAULT_RETENTION_SECONDS,
    EMPTY,
    ContactProfile,
    add_event,
    creative_key,
)
from selector.model.record import Records, records_of
from selector.model.train import Examples, TrainingConfig, contact_key, evaluate_model, train
from selector.scenario import Scenario
from selector.stats import EventKind

Array = NDArray[Any]


@dataclass(frozen=True, slots=True)
class Training:
    """One training run: when, on how many sends, and the gate's verdict."""

    time: float
    sends: int
    version: int
    verdict: Verdict
    holdout_ne: float | None


@dataclass(slots=True)
class _Log:
    """Growing per-send columns."""

    chunks: list[dict[str, Array]] = field(default_factory=list)

    def add(self, **columns: Array) -> None:
        self.chunks.append(columns)

    def column(self, name: str) -> Array:
        return np.concatenate([c[name] for c in self.chunks])


class ModelLoop:
    """Profiles, the example log and periodic training for one simulation run."""

    def __init__(
        self, scenario: Scenario, contacts: Contacts, config: TrainingConfig | None = None
    ) -> None:
        self.fields = scenario.contact_model.fields
        self.retention = DEFAULT_RETENTION_SECONDS
        self.custom = contacts.custom
        self.profiles: dict[int, ContactProfile] = {}
        self.creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
        self.keys = np.array([creative_key(c) for c in self.creative_ids], dtype=np.uint32)
        offers = {o: i for i, o in enumerate(o.offer_id for o in scenario.account.offers)}
        self.offer_of = np.array(
            [offers[c.offer_id] for c in scenario.account.creatives], dtype=np.intp
        )
        self.interval = scenario.account.settings.model_training_interval_seconds
        self.window = quantile(scenario.click_delay) + quantile(scenario.conversion_delay)
        self.config = config or TrainingConfig()
        self.next_training = self.interval
        self.model: ContextualModel | None = None
        self.trainings: list[Training] = []
        self.log = _Log()
        self.pending: list[tuple[Array, Array, Array, Array]] = []
        self.contact_keys = np.array(
            [contact_key(f"contact-{i}") for i in range(scenario.contacts)], dtype=np.uint32
        )

    def profile(self, contact: int) -> ContactProfile:
        p = self.profiles.get(contact)
        if p is None:
            slots = self.custom[contact, : len(self.fields)]
            p = EMPTY.with_custom(tuple(None if np.isnan(s) else float(s) for s in slots))
            self.profiles[contact] = p
        return p

    def records(self, contacts: Array) -> Records:
        return records_of([self.profile(int(c)) for c in contacts])

    def sent(self, recs: Records, contacts: Array, creative: Array, now: float) -> None:
        """Log the batch's decision-time features and fold its sends into the profiles."""
        times = np.full(contacts.size, now)
        batch = contact_features(recs, times, self.fields, self.retention)
        pair = pair_features(batch, self.keys, self.offer_of)[np.arange(contacts.size), creative]
        self.pending.append((batch.raw, pair, times, contacts))
        for c, k in zip(contacts.tolist(), creative.tolist(), strict=True):
            self.profiles[c] = add_event(
                self.profile(c), "send", self.creative_ids[k], now, 0, self.retention
            )

    def outcomes(
        self, creative: Array, click_at: Array, conversion_at: Array, paid: tuple[Array, Array]
    ) -> None:
        """The batch's labels: a click or conversion counts if it arrived within the
        attribution window of its send (NaN: none); `paid` is (per click, per conversion)."""
        raw, pair, times, contacts = self.pending.pop()
        with np.errstate(invalid="ignore"):
            clicked = click_at <= times + self.window
            converted = clicked & (conversion_at <= times + self.window)
        self.log.add(
            raw=raw, pair=pair, creative=creative.astype(np.intp), time=times,
            clicked=clicked.astype(float), converted=converted.astype(float),
            revenue=paid[0] * clicked + paid[1] * converted, contact=self.contact_keys[contacts],
        )  # fmt: skip

    def feedback(
        self, time: Array, contacts: Array, creative: Array, conversion: Array, micros: Array
    ) -> None:
        """Clicks and conversions reach the profiles, in arrival order."""
        for i in np.argsort(time, kind="stable").tolist():
            c, cid = int(contacts[i]), self.creative_ids[int(creative[i])]
            kind: EventKind = "conversion" if conversion[i] else "click"
            self.profiles[c] = add_event(
                self.profile(c), kind, cid, float(time[i]), int(micros[i]), self.retention
            )

    def maybe_train(self, now: float, account: Account) -> None:
        while self.interval > 0 and now >= self.next_training:
            self._train(self.next_training, account)
            self.next_training += self.interval

    def _train(self, at: float, account: Account) -> None:
        if not self.log.chunks:
            return
        times = self.log.column("time")
        matured = np.flatnonzero(times <= at - self.window)
        if matured.size == 0:
            return
        examples = Examples(
            self.log.column("raw")[matured], self.log.column("pair")[matured],
            self.log.column("creative")[matured], self.creative_ids, times[matured],
            self.log.column("clicked")[matured], self.log.column("converted")[matured],
            self.log.column("revenue")[matured], self.log.column("contact")[matured],
        )  # fmt: skip
        version = len(self.trainings) + 1
        candidate, holdout = train(
            account, examples, self.fields, self.retention, version, at, self.config
        )
        mine = evaluate_model(candidate, account, holdout)
        current = evaluate_model(self.model, account, holdout) if self.model else None
        verdict = gate(mine, current)
        if verdict.promote:
            self.model = candidate
        ne = mine.normalized_entropy
        self.trainings.append(Training(at, len(examples), version, verdict, ne))


def quantile(delay: DelayDistribution, q: float = 0.999) -> float:
    """The q quantile of a delay distribution, by bisection on its CDF (to 1 s)."""
    high = max(delay.median_seconds, 1.0)
    while float(delay.cdf(np.array([high]))[0]) < q and high < 1e9:
        high *= 2.0
    low = 0.0
    while high - low > 1.0:
        mid = 0.5 * (low + high)
        low, high = (low, mid) if float(delay.cdf(np.array([mid]))[0]) >= q else (mid, high)
    return high if delay.kind != "constant" else delay.seconds
