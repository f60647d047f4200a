"""What the simulator adds when contacts have features of their own or traffic goes to
`model`: the contacts' rate multipliers (`selector.contacts`) for outcomes and oracle,
the truth of who clicked what (for repeat clicks), and the stream's and trainer's work
(`selector.simulate_model`). A plain scenario without `model` traffic uses none of it,
and its runs are the same, draw for draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.contacts import Contacts, click_multipliers
from selector.domain import Account
from selector.model.artifact import ContextualModel
from selector.model.record import Records
from selector.scenario import Scenario
from selector.simulate_model import ModelLoop, Training

Array = NDArray[Any]


class ContactSide:
    """The contacts' own side of one simulation run."""

    def __init__(self, scenario: Scenario, people: Contacts) -> None:
        self.scenario = scenario
        self.people = people
        methods = {m.method for m in scenario.account.settings.methods}
        self.loop = ModelLoop(scenario, people) if "model" in methods else None
        self.repeats = scenario.contact_model.repeat_click_multiplier != 1.0
        k = len(scenario.account.creatives)
        self.clicked_before = np.zeros((scenario.contacts, k), dtype=bool)
        self.arrivals = Pending()

    @property
    def model(self) -> ContextualModel | None:
        return self.loop.model if self.loop else None

    @property
    def trainings(self) -> tuple[Training, ...]:
        return tuple(self.loop.trainings) if self.loop else ()

    def records(self, contacts: Array) -> Records | None:
        return self.loop.records(contacts) if self.loop else None

    def sent(self, recs: Records | None, contacts: Array, creative: Array, now: float) -> None:
        if self.loop and recs is not None:
            self.loop.sent(recs, contacts, creative, now)

    def rates_and_values(
        self, truth: Any, segment: Array, contacts: Array, now: float
    ) -> tuple[Array, Array]:
        """(n x K) true click rates and expected values of a batch's contacts: their
        segments' (from the simulator's truth) times each contact's own multipliers."""
        click, value = truth.phase.click_rate[segment], truth.value[segment]
        cm = self.scenario.contact_model
        if not cm.varies_rates:
            return click, value
        before = self.clicked_before[contacts]
        factor = click_multipliers(cm, self.people.hour[contacts], now, before)
        rates = np.minimum(click * factor, 1.0)
        per_click = np.divide(value, click, out=np.zeros_like(click), where=click > 0)
        return rates, rates * per_click

    def outcomes(
        self, sent: Any, arrival: tuple[Array, Array], micros: Array, paid: tuple[Array, Array]
    ) -> None:
        """Record a batch's outcomes: `arrival` is (click_at, conversion_at), NaN where none;
        `paid` is (per click, per conversion) revenue."""
        contacts, creative = sent.contacts, sent.creative
        click_at, conversion_at = arrival
        if self.loop:
            self.loop.outcomes(creative, click_at, conversion_at, paid)
        if not (self.loop or self.repeats):
            return
        clicked, converted = ~np.isnan(click_at), ~np.isnan(conversion_at)
        none = np.zeros(int(clicked.sum()), np.int64)
        self.arrivals.add(creative[clicked], click_at[clicked], none, 0, contacts[clicked])
        self.arrivals.add(
            creative[converted], conversion_at[converted], micros[converted], 1,
            contacts[converted],
        )  # fmt: skip

    def advance(self, now: float, account: Account) -> None:
        """Deliver the clicks and conversions that have arrived by `now`; retrain if due."""
        arrived = self.arrivals.take(now)
        if arrived is not None:
            creative, time, micros, kind, contact = arrived
            clicks = kind == 0
            self.clicked_before[contact[clicks], creative[clicks]] = True
            if self.loop:
                self.loop.feedback(time, contact, creative, kind == 1, micros)
        if self.loop:
            self.loop.maybe_train(now, account)


class Pending:
    """Feedback events drawn but not yet arrived: creative, arrival time, revenue micros,
    kind (0 click, 1 conversion) and a column carried along (the time of their cause for
    the stats, the contact for the profiles), as columns."""

    def __init__(self) -> None:
        self.columns: list[tuple[Array, ...]] = []

    def add(self, creative: Array, time: Array, micros: Array, kind: int, origin: Array) -> None:
        if creative.size:
            self.columns.append((creative, time, micros, np.full(creative.size, kind), origin))

    def take(self, now: float) -> tuple[Array, ...] | None:
        """Remove and return the events that arrived at or before `now`."""
        if not self.columns:
            return None
        columns = [np.concatenate(c) for c in zip(*self.columns, strict=True)]
        due = columns[1] <= now
        self.columns = [tuple(c[~due] for c in columns)] if (~due).any() else []
        return tuple(c[due] for c in columns) if due.any() else None
