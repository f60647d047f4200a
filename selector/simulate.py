"""The simulator: the selection loop run against known true rates, with an oracle.

Simulated time advances in batches: batch b is one send blast of `batch_size` distinct
contacts, drawn from the scenario's contact pool, at time b * batch_size / send rate.
The simulator plays the caller of the service: it keeps each contact's cooldown state (a
dict, as the sender would keep it in Redis), asks `Selector.decide_batch`, draws clicks
and conversions from the true rates of the contact's segment, and feeds the outcomes back.

Feedback: a send reaches the stats at once (the sender reports it), clicks and
conversions only `feedback_delay_seconds` later, stamped with that later event time so
forgetting weighs them correctly. A stats update is built per batch and creative from the
public `AccountStats`/`Counts` values and merged, which equals applying each event one by
one (`tests/selector/test_simulate.py` checks it against `fold`) at a fraction of the cost.

Contacts may carry features that change their rates per creative (`selector.contacts`:
an engagement hour, repeat clicks); their multipliers apply to the segment's click rates,
for the outcomes and the oracle alike. When the account routes traffic to `model`, the
simulator also plays the stream and the trainer (`selector.simulate_model`): it keeps
contact profiles, passes their records with each batch, and retrains the model every
`model_training_interval_seconds`, promoting candidates through the gate.

The oracle knows the true rates and the contact's own features: per send it takes the best
expected value (revenue per send, or click rate for the clicks goal) among the creatives
that were eligible for that contact at that moment. Regret is the oracle's expected value
minus that of the creative actually sent; with no eligible creative both are the
fallback's, so a fallback adds no regret.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.batch import RequestBatch
from selector.contacts import Contacts, click_multipliers, draw_contacts
from selector.decide import Selector
from selector.domain import DAY_SECONDS, Goal
from selector.scenario import Phase, Scenario
from selector.simulate_model import ModelLoop, Training, conversion_micros
from selector.stats import MICROS, AccountStats, Counts, Decayed

Progress = Callable[[int, int], None]
Array = NDArray[Any]
_NO_COOLDOWNS: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True, eq=False)
class SimulationResult:
    """One run, one row per send (columns). `creative`, `arm`, `method`, `pool` and
    `reason` are codes: positions into `creative_ids`, `selector.batch.ARMS`, `DECIDED_BY`,
    `POOLS`, `REASONS` (`reason` is None where a producer did not record it).
    `trainings` lists the model's training runs, if it had any.
    `expected` and `oracle` are the true expected values (RPS, or click rate for the
    clicks goal) of the creative sent and of the best eligible one."""

    scenario: str
    seed: int
    goal: Goal
    creative_ids: tuple[str, ...]
    time: Array
    contact: Array
    segment: Array
    creative: Array
    arm: Array
    method: Array
    pool: Array
    propensity: Array
    click: Array
    conversion: Array
    revenue: Array
    expected: Array
    oracle: Array
    final_stats: AccountStats
    reason: Array | None = None
    trainings: tuple[Training, ...] = ()

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def regret(self) -> Array:
        """Per-send regret: oracle expected value minus the chosen creative's."""
        return self.oracle - self.expected


@dataclass(frozen=True, slots=True, eq=False)
class _Truth:
    """One phase made ready for the loop: its selector and its value per segment x creative."""

    phase: Phase
    selector: Selector
    candidate: Array
    value: Array
    payout_if_clicked: Array
    payout_if_converted: Array


def _truth(phase: Phase, propensity_samples: int) -> _Truth:
    account = phase.account
    payout = {o.offer_id: o.payout for o in account.offers}
    per_click = {o.offer_id: o.payout_type == "cto" for o in account.offers}
    pays = np.array([payout[c.offer_id] for c in account.creatives])
    cto = np.array([per_click[c.offer_id] for c in account.creatives], dtype=bool)
    click, conv = phase.click_rate, phase.conversion_rate
    revenue_per_send = click * np.where(cto, 1.0, conv) * pays
    value = click if account.settings.goal == "clicks" else revenue_per_send
    return _Truth(
        phase=phase,
        selector=Selector(account, propensity_samples=propensity_samples),
        candidate=np.array([c.is_candidate for c in account.creatives], dtype=bool),
        value=value,
        payout_if_clicked=np.where(cto, pays, 0.0),
        payout_if_converted=np.where(cto, 0.0, pays),
    )


class _Columns:
    """Preallocated per-send columns, filled batch by batch."""

    SPEC = (
        ("time", np.float64), ("contact", np.int32), ("segment", np.uint8),
        ("creative", np.int16), ("arm", np.uint8), ("method", np.uint8), ("pool", np.uint8),
        ("reason", np.uint8),
        ("propensity", np.float64), ("click", bool), ("conversion", bool),
        ("revenue", np.float64), ("expected", np.float64), ("oracle", np.float64),
    )  # fmt: skip

    def __init__(self, n: int) -> None:
        self.data = {name: np.zeros(n, dtype=dtype) for name, dtype in self.SPEC}

    def put(self, start: int, **columns: Array) -> None:
        for name, values in columns.items():
            self.data[name][start : start + values.size] = values


def simulate(
    scenario: Scenario,
    seed: int,
    progress: Progress | None = None,
    propensity_samples: int = 1024,
) -> SimulationResult:
    """Run `scenario` with `seed`; `progress(sends_done, total)` is called after each batch.

    Contacts, decisions and outcomes draw from three generators spawned from the seed, so
    two runs that differ only in settings see the same contacts and the same luck as far
    as their choices allow (common random numbers make comparisons sharper).
    """
    contact_rng, decision_rng, outcome_rng, feature_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    shares = scenario.segment_shares()
    segment_of = contact_rng.choice(shares.size, size=scenario.contacts, p=shares)
    contact_ids = [f"contact-{i}" for i in range(scenario.contacts)]
    people = draw_contacts(scenario.contact_model, segment_of, feature_rng)
    loop = _Loop(scenario, propensity_samples, people)
    columns = _Columns(scenario.sends)
    seconds_per_send = DAY_SECONDS / scenario.sends_per_day
    for start in range(0, scenario.sends, scenario.batch_size):
        size = min(scenario.batch_size, scenario.sends - start)
        now = start * seconds_per_send
        contacts = contact_rng.choice(scenario.contacts, size=size, replace=False)
        batch = loop.send(now, contacts, contact_ids, segment_of[contacts], decision_rng)
        outcomes = loop.outcomes(batch, outcome_rng)
        columns.put(start, contact=contacts, **batch.columns, **outcomes)
        if progress is not None:
            progress(start + size, scenario.sends)
    return SimulationResult(
        scenario=scenario.name,
        seed=seed,
        goal=scenario.account.settings.goal,
        creative_ids=tuple(c.creative_id for c in scenario.account.creatives),
        final_stats=loop.stats,
        trainings=tuple(loop.model.trainings) if loop.model else (),
        **columns.data,
    )


def _expected_and_oracle(values: Array, creative: Array, eligible: Array) -> tuple[Array, Array]:
    """Per request: the true value of the creative sent, and the best among the eligible
    ones (the sent one's when none was eligible and the fallback answered)."""
    expected = values[np.arange(creative.size), creative]
    best = np.where(eligible, values, -np.inf).max(axis=1, initial=-np.inf)
    return expected, np.where(eligible.any(axis=1), best, expected)


@dataclass(frozen=True, slots=True, eq=False)
class _Sent:
    """One batch as sent: when, to which segments, what, and the columns to record."""

    now: float
    contacts: Array
    segment: Array
    creative: Array
    click_rate: Array
    truth: _Truth
    columns: dict[str, Array]


class _Loop:
    """The caller's state between batches: stats, pending feedback, cooldowns, phase."""

    def __init__(self, scenario: Scenario, propensity_samples: int, people: Contacts) -> None:
        self.scenario = scenario
        self.people = people
        methods = {m.method for m in scenario.account.settings.methods}
        self.model = ModelLoop(scenario, people) if "model" in methods else None
        self.clicked_before = np.zeros((scenario.contacts, len(scenario.account.creatives)), bool)
        self.contact_feedback: deque[tuple[float, _Sent, Array, Array]] = deque()
        self.phases = scenario.phases()
        self.propensity_samples = propensity_samples
        self.truth = _truth(self.phases[0], propensity_samples)
        self.stats = AccountStats(half_life_seconds=scenario.account.settings.half_life_seconds)
        self.pending: deque[tuple[float, AccountStats]] = deque()
        self.last_sent: dict[int, dict[str, float]] = {}
        self.rotation: Mapping[str, int] = {}
        self.campaign_id = scenario.account.campaigns[0].campaign_id
        self.creative_ids = tuple(c.creative_id for c in scenario.account.creatives)

    def send(
        self,
        now: float,
        contacts: Array,
        contact_ids: list[str],
        segment: Array,
        rng: np.random.Generator,
    ) -> _Sent:
        self._advance(now)
        truth = self.truth
        cooldowns = [self.last_sent.get(int(c), _NO_COOLDOWNS) for c in contacts]
        recs = self.model.records(contacts) if self.model else None
        batch = RequestBatch.from_columns(
            [self.campaign_id] * contacts.size,
            [contact_ids[c] for c in contacts],
            np.full(contacts.size, now),
            cooldowns,
            recs,
        )
        model = self.model.model if self.model else None
        decision = truth.selector.decide_batch(self.stats, batch, rng, self.rotation, model)
        self.rotation = decision.rotation
        creative = decision.creative
        if self.model and recs is not None:
            self.model.sent(recs, contacts, creative, now)
        eligible = truth.candidate & ~self._cooling(cooldowns, now)
        rates, values = self._rates_and_values(truth, contacts, segment, now)
        expected, oracle = _expected_and_oracle(values, creative, eligible)
        self._record_cooldowns(contacts, creative, now)
        self.stats = self.stats.merge(
            self._delta(now, sends=np.bincount(creative, minlength=len(self.creative_ids)))
        )
        cols = {
            "time": np.full(creative.size, now), "segment": segment, "creative": creative,
            "arm": decision.arm, "method": decision.method, "pool": decision.pool,
            "reason": decision.reason,
            "propensity": decision.propensity, "expected": expected, "oracle": oracle,
        }  # fmt: skip
        click_rate = rates[np.arange(creative.size), creative]
        return _Sent(now, contacts, segment, creative, click_rate, truth, cols)

    def _rates_and_values(
        self, truth: _Truth, contacts: Array, segment: Array, now: float
    ) -> tuple[Array, Array]:
        """(n x K) true click rates and expected values of this batch's contacts."""
        click = truth.phase.click_rate[segment]
        cm = self.scenario.contact_model
        if not cm.varies_rates:
            return click, truth.value[segment]
        factor = click_multipliers(
            cm, self.people.hour[contacts], now, self.clicked_before[contacts]
        )
        rates = np.minimum(click * factor, 1.0)
        per_click_value = np.divide(
            truth.value[segment], click, out=np.zeros_like(click), where=click > 0
        )
        return rates, rates * per_click_value

    def outcomes(self, sent: _Sent, rng: np.random.Generator) -> dict[str, Array]:
        """Clicks and conversions from the true rates; queued until the feedback delay."""
        phase, k = sent.truth.phase, sent.creative
        click = rng.random(k.size) < sent.click_rate
        conversion = click & (rng.random(k.size) < phase.conversion_rate[sent.segment, k])
        paid_click = sent.truth.payout_if_clicked[k] * click
        paid_conversion = sent.truth.payout_if_converted[k] * conversion
        due = sent.now + self.scenario.feedback_delay_seconds
        if self.model:
            self.model.outcomes(k, click, conversion, paid_click + paid_conversion)
        if self.model or self.scenario.contact_model.repeat_click_multiplier != 1.0:
            micros = conversion_micros(conversion, paid_conversion)
            self.contact_feedback.append((due, sent, click, micros))
        feedback = self._delta(
            due,
            clicks=self._per_creative(k, click),
            conversions=self._per_creative(k, conversion),
            revenue_micros=self._per_creative(k, np.round(paid_conversion * MICROS)),
        )
        self.pending.append((due, feedback))
        return {"click": click, "conversion": conversion, "revenue": paid_click + paid_conversion}

    def _advance(self, now: float) -> None:
        """Deliver feedback that is due and switch to the phase in force at `now`."""
        while self.pending and self.pending[0][0] <= now:
            self.stats = self.stats.merge(self.pending.popleft()[1])
        while self.contact_feedback and self.contact_feedback[0][0] <= now:
            due, sent, click, micros = self.contact_feedback.popleft()
            self.clicked_before[sent.contacts[click], sent.creative[click]] = True
            if self.model:
                self.model.feedback(due, sent.contacts, sent.creative, click, micros)
        current = [p for p in self.phases if p.start_seconds <= now][-1]
        if current is not self.truth.phase:
            self.truth = _truth(current, self.propensity_samples)
        if self.model:
            self.model.maybe_train(now, current.account)

    def _cooling(self, cooldowns: list[Mapping[str, float]], now: float) -> Array:
        window = self.scenario.account.settings.cooldown_seconds
        index = {cid: j for j, cid in enumerate(self.creative_ids)}
        cooling = np.zeros((len(cooldowns), len(index)), dtype=bool)
        for i, sent in enumerate(cooldowns):
            for creative_id, when in sent.items():
                cooling[i, index[creative_id]] = now - when < window
        return cooling

    def _record_cooldowns(self, contacts: Array, creative: Array, now: float) -> None:
        ids = self.creative_ids
        for contact, k in zip(contacts.tolist(), creative.tolist(), strict=True):
            self.last_sent.setdefault(contact, {})[ids[k]] = now

    def _per_creative(self, creative: Array, weights: Array) -> Array:
        return np.bincount(creative, weights=weights, minlength=len(self.creative_ids))

    def _delta(self, time: float, **fields: Array) -> AccountStats:
        """The stats value of these events, all at `time`: what folding them one by one
        into an empty value gives, built directly."""
        zero = np.zeros(len(self.creative_ids))
        sends, clicks, conversions, micros = (
            fields.get(name, zero) for name in ("sends", "clicks", "conversions", "revenue_micros")
        )
        counts: dict[str, Counts] = {}
        decayed: dict[str, Decayed] = {}
        for k, cid in enumerate(self.creative_ids):
            row = Counts(int(sends[k]), int(clicks[k]), int(conversions[k]), int(micros[k]))
            if row.is_zero():
                continue
            counts[cid] = row
            decayed[cid] = Decayed(row.sends, row.clicks, row.conversions, row.revenue, time)
        half_life = self.stats.half_life_seconds
        return AccountStats(
            MappingProxyType(counts),
            half_life,
            MappingProxyType(decayed if half_life is not None else {}),
        )
