"""The simulator: the selection loop run against known true rates, with an oracle.

Simulated time advances in batches: batch b is one send blast of `batch_size` distinct
contacts, drawn from the scenario's contact pool, at time b * batch_size / send rate.
The simulator plays the caller of the service: it keeps each contact's cooldown state (a
dict, as the sender would keep it in Redis), asks `Selector.decide_batch`, draws clicks
and conversions from the true rates of the contact's segment, and feeds the outcomes back.

Feedback: a send reaches the stats at once (the sender reports it). Each click arrives
after its own delay, drawn from the scenario's click delay distribution, and each
conversion after a further delay drawn from the conversion delay distribution (time
from click to conversion); an event is stamped with its arrival time, so forgetting
weighs it correctly, and it is in the stats of every batch decided at or after that
time. Delays are not rounded to batches: a delay of a third of a batch interval and one
of two thirds leave different feedback pending at the next decision. Stats updates are
built per batch and creative from the public `AccountStats`/`Counts` values and merged,
which equals applying each event one by one (`tests/selector/test_simulate.py` checks it
against `fold`) at a fraction of the cost.

Contacts' own features (`selector.contacts`) scale their click rates, for outcomes and
oracle alike; with `model` traffic the simulator also plays the stream and the trainer
(`selector.simulate_context`).

The oracle knows the true rates and the contact's own features: per send it takes the best
expected value (revenue per send, or click rate for the clicks goal) among the creatives
that were eligible for that contact at that moment. Regret is the oracle's expected value
minus that of the creative actually sent; with no eligible creative both are the
fallback's, so a fallback adds no regret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from selector.batch import RequestBatch
from selector.contacts import draw_contacts
from selector.decide import Selector
from selector.domain import DAY_SECONDS, Goal
from selector.scenario import Phase, Scenario
from selector.simulate_context import ContactSide, Pending
from selector.simulate_model import Training
from selector.stats import MICROS, AccountStats, Counts, Decayed
from selector.timing import Timing

Progress = Callable[[int, int], None]
Array = NDArray[Any]
_NO_COOLDOWNS: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True, eq=False)
class SimulationResult:
    """One run, one row per send (columns). `creative`, `arm`, `method`, `pool` and
    `reason` are codes: positions into `creative_ids`, `selector.batch.ARMS`, `DECIDED_BY`,
    `POOLS`, `REASONS` (`reason` None: not recorded); `trainings`: the model's.
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
    click_at: Array | None = None  # when each click reached the stats (NaN: no click)
    conversion_at: Array | None = None
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
        ("click_at", np.float64), ("conversion_at", np.float64),
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
    propensity_samples: int = 1024,  # accepted for callers; propensities are exact now
    observe_delays: bool = True,
) -> SimulationResult:
    """Run `scenario` with `seed`; `progress(sends_done, total)` is called after each batch.

    Contacts, decisions, outcomes and delays draw from four generators spawned from the
    seed, so two runs that differ only in settings (or delays) see the same contacts and
    the same luck as far as their choices allow (common random numbers make comparisons
    sharper). With `observe_delays` False, clicks and conversions reach the stats without
    the time of their send or click, as from a sender that does not report it: no delay
    is observed and the posterior counts pending sends as sends (`selector.timing`).
    """
    contact_rng, decision_rng, outcome_rng, delay_rng, feature_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    shares = scenario.segment_shares()
    segment_of = contact_rng.choice(shares.size, size=scenario.contacts, p=shares)
    contact_ids = [f"contact-{i}" for i in range(scenario.contacts)]
    people = draw_contacts(scenario.contact_model, segment_of, feature_rng)
    loop = _Loop(scenario, propensity_samples, observe_delays, ContactSide(scenario, people))
    columns = _Columns(scenario.sends)
    seconds_per_send = DAY_SECONDS / scenario.sends_per_day
    for start in range(0, scenario.sends, scenario.batch_size):
        size = min(scenario.batch_size, scenario.sends - start)
        now = start * seconds_per_send
        contacts = contact_rng.choice(scenario.contacts, size=size, replace=False)
        batch = loop.send(now, contacts, contact_ids, segment_of[contacts], decision_rng)
        outcomes = loop.outcomes(batch, outcome_rng, delay_rng)
        columns.put(start, contact=contacts, **batch.columns, **outcomes)
        if progress is not None:
            progress(start + size, scenario.sends)
    return SimulationResult(
        scenario=scenario.name,
        seed=seed,
        goal=scenario.account.settings.goal,
        creative_ids=tuple(c.creative_id for c in scenario.account.creatives),
        final_stats=loop.stats,
        trainings=loop.side.trainings,
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

    def __init__(
        self, scenario: Scenario, propensity_samples: int, observe_delays: bool, side: ContactSide
    ) -> None:
        self.scenario = scenario
        self.side = side
        self.observe_delays = observe_delays
        self.phases = scenario.phases()
        self.propensity_samples = propensity_samples
        self.truth = _truth(self.phases[0], propensity_samples)
        self.stats = AccountStats(half_life_seconds=scenario.account.settings.half_life_seconds)
        self.pending = Pending()
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
        recs = self.side.records(contacts)
        batch = RequestBatch.from_columns(
            [self.campaign_id] * contacts.size,
            [contact_ids[c] for c in contacts],
            np.full(contacts.size, now),
            cooldowns,
            recs,
        )
        model = self.side.model
        decision = truth.selector.decide_batch(self.stats, batch, rng, self.rotation, model)
        self.rotation = decision.rotation
        creative = decision.creative
        self.side.sent(recs, contacts, creative, now)
        eligible = truth.candidate & ~self._cooling(cooldowns, now)
        rates, values = self.side.rates_and_values(truth, segment, contacts, now)
        expected, oracle = _expected_and_oracle(values, creative, eligible)
        self._record_cooldowns(contacts, creative, now)
        sends = self._delta(now, sends=np.bincount(creative, minlength=len(self.creative_ids)))
        timing = Timing.of_columns("send", self.creative_ids, creative, np.full(creative.size, now))
        self.stats = self.stats.merge(replace(sends, timing=timing))
        cols = {
            "time": np.full(creative.size, now), "segment": segment, "creative": creative,
            "arm": decision.arm, "method": decision.method, "pool": decision.pool,
            "reason": decision.reason, "propensity": decision.propensity,
            "expected": expected, "oracle": oracle,
        }  # fmt: skip
        click_rate = rates[np.arange(creative.size), creative]
        return _Sent(now, contacts, segment, creative, click_rate, truth, cols)

    def outcomes(
        self, sent: _Sent, rng: np.random.Generator, delay_rng: np.random.Generator
    ) -> dict[str, Array]:
        """Clicks and conversions from the true rates, queued until each one's arrival."""
        phase, k = sent.truth.phase, sent.creative
        click = rng.random(k.size) < sent.click_rate
        conversion = click & (rng.random(k.size) < phase.conversion_rate[sent.segment, k])
        paid_click = sent.truth.payout_if_clicked[k] * click
        paid_conversion = sent.truth.payout_if_converted[k] * conversion
        click_at = np.full(k.size, np.nan)
        click_at[click] = sent.now + self.scenario.click_delay.sample(int(click.sum()), delay_rng)
        conversion_at = np.full(k.size, np.nan)
        delays = self.scenario.conversion_delay.sample(int(conversion.sum()), delay_rng)
        conversion_at[conversion] = click_at[conversion] + delays
        micros = np.round(paid_conversion * MICROS).astype(np.int64)
        sent_at = np.full(k.size, sent.now)
        none = np.zeros(int(click.sum()), np.int64)
        self.pending.add(k[click], click_at[click], none, 0, sent_at[click])
        self.pending.add(
            k[conversion], conversion_at[conversion], micros[conversion], 1, click_at[conversion]
        )
        self.side.outcomes(sent, (click_at, conversion_at), micros, (paid_click, paid_conversion))
        return {
            "click": click,
            "conversion": conversion,
            "revenue": paid_click + paid_conversion,
            "click_at": click_at,
            "conversion_at": conversion_at,
        }

    def _advance(self, now: float) -> None:
        """Deliver feedback that has arrived and switch to the phase in force at `now`."""
        arrived = self.pending.take(now)
        if arrived is not None:
            self.stats = self.stats.merge(self._arrivals(*arrived))
        current = [p for p in self.phases if p.start_seconds <= now][-1]
        if current is not self.truth.phase:
            self.truth = _truth(current, self.propensity_samples)
        self.side.advance(now, current.account)

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
        return self._value(counts, decayed)

    def _arrivals(
        self, creative: Array, time: Array, micros: Array, kind: Array, origin: Array
    ) -> AccountStats:
        """The stats value of clicks (kind 0) and conversions (kind 1) arriving at `time`,
        caused at `origin` (the send, the click)."""
        counts: dict[str, Counts] = {}
        decayed: dict[str, Decayed] = {}
        half_life = self.stats.half_life_seconds
        for k in np.unique(creative).tolist():
            mine = creative == k
            conv = kind[mine] == 1
            revenue = int(micros[mine].sum())
            row = Counts(0, int((~conv).sum()), int(conv.sum()), revenue)
            cid = self.creative_ids[k]
            counts[cid] = row
            if half_life is not None:
                t = time[mine]
                ref = float(t.max())
                w = 2.0 ** ((t - ref) / half_life)
                decayed[cid] = Decayed(
                    0.0, float(w[~conv].sum()), float(w[conv].sum()),
                    float((w * micros[mine]).sum()) / MICROS, ref,
                )  # fmt: skip
        seen = origin if self.observe_delays else None
        timing = Timing()
        for code, name in ((0, "click"), (1, "conversion")):
            rows = kind == code
            cause = None if seen is None else seen[rows]
            part = Timing.of_columns(name, self.creative_ids, creative[rows], time[rows], cause)
            timing = timing.merge(part)
        return replace(self._value(counts, decayed), timing=timing)

    def _value(self, counts: dict[str, Counts], decayed: dict[str, Decayed]) -> AccountStats:
        half_life = self.stats.half_life_seconds
        return AccountStats(
            MappingProxyType(counts),
            half_life,
            MappingProxyType(decayed if half_life is not None else {}),
        )
