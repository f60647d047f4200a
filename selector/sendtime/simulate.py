"""The send-time simulator: daily launches decided by `SendTimeDecider` against contacts
whose true response rates depend on the local slot, the day kind and the weekday.

Truth: each contact follows a routine (it responds best around an hour of its own, one
for weekdays and one for weekends) and has its own rate at that hour; in slot s its rate
is best * (off_peak + (1 - off_peak) * exp(-d^2 / (2 width^2))), d the circular distance
in hours from the slot's middle to the best hour. A send delivered on local weekday w of
launch l is answered with probability rate * weekday_factors[w] * launch factor; the
calendar factors are what the measurement must see through, and the rate without them
is each send's `expected` value, from which the true uplift is computed.

Before the first launch each contact has `history.sends` sends at random allowed times
over the past `history.days` days; the account's prior is fitted to that history
(`fit_prior`), as the daily job would. Then every launch asks for a decision for every
contact (the decider splits off the control group), draws the responses, and folds each
send and response into the contact's counts, as the stream would before the next day's
launch. Each run is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.batch import ARMS, SendTimeBatch, SendTimeDecisions
from selector.sendtime.clock import ZONE_ISSUES, ZONE_SOURCES
from selector.sendtime.decide import SendTimeDecider
from selector.sendtime.hours import is_weekend
from selector.sendtime.measure import Outcomes, weekday
from selector.sendtime.prior import SlotPrior, fit_prior
from selector.sendtime.scenario import EPOCH, SendTimeScenario
from selector.sendtime.settings import SendTimeSettings

FloatArray = NDArray[np.float64]
Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """Each contact's zone (index into `zones`) and true rate per (day kind, slot):
    kind 0 weekday, 1 weekend; `allowed` marks the slots meeting the sending hours."""

    zones: tuple[str, ...]
    zone: Int64Array
    routine: Int64Array
    rate: FloatArray
    allowed: BoolArray

    @property
    def best_allowed(self) -> FloatArray:
        """(contacts, kind): the rate of each contact's best allowed slot."""
        return np.where(self.allowed, self.rate, -1.0).max(axis=2)

    def account_best(self) -> Int64Array:
        """(kind,): the allowed slot with the highest mean rate over contacts."""
        return np.where(self.allowed, self.rate.mean(axis=0), -1.0).argmax(axis=1)

    def differs(self) -> BoolArray:
        """(contacts, kind): the contact's best allowed slot is not the account's."""
        own = np.where(self.allowed, self.rate, -1.0).argmax(axis=2)
        return own != self.account_best()[None, :]


def make_truth(scenario: SendTimeScenario, rng: np.random.Generator) -> Truth:
    n, settings, model = scenario.contacts, scenario.settings, scenario.response
    zones = tuple(z for z, _ in scenario.zones)
    zone = rng.choice(len(zones), size=n, p=[s for _, s in scenario.zones])
    routine = rng.choice(len(scenario.routines), size=n, p=[r.share for r in scenario.routines])
    best = np.empty((n, 2))
    for i, r in enumerate(scenario.routines):
        rows = routine == i
        jitter = rng.normal(0.0, r.spread_hours, size=(int(rows.sum()), 1))
        best[rows] = np.array([r.best_hour, r.weekend_best_hour])[None, :] + jitter
    top = rng.beta(model.mean * model.strength, (1 - model.mean) * model.strength, size=n)
    hours = (np.arange(settings.slots) + 0.5) * 24.0 / settings.slots
    gap = np.abs(hours[None, None, :] - best[:, :, None]) % 24.0
    gap = np.minimum(gap, 24.0 - gap)
    bump = np.exp(-(gap**2) / (2.0 * model.width_hours**2))
    rate = top[:, None, None] * (model.off_peak + (1.0 - model.off_peak) * bump)
    a, b = settings.hours.intervals()
    starts = np.arange(settings.slots) * settings.slot_seconds
    ends = starts + settings.slot_seconds
    meets = ((starts < a[1]) & (ends > a[0])) | ((starts < b[1]) & (ends > b[0]))
    return Truth(zones, zone, routine, rate, np.broadcast_to(meets, (2, settings.slots)))


def history(
    scenario: SendTimeScenario, truth: Truth, start_day: int, rng: np.random.Generator
) -> tuple[Int64Array, Int64Array]:
    """(contacts, cells) sends and responses at random allowed slots of past days."""
    n, settings, k = scenario.contacts, scenario.settings, scenario.history_sends
    cells = settings.cells
    sends = np.zeros(n * cells, dtype=np.int64)
    responses = np.zeros(n * cells, dtype=np.int64)
    if k == 0:
        return sends.reshape(n, cells), responses.reshape(n, cells)
    contact = np.repeat(np.arange(n), k)
    day = start_day - rng.integers(1, scenario.history_days + 1, size=n * k)
    slot = rng.choice(np.flatnonzero(truth.allowed[0]), size=n * k)
    kind = is_weekend(day).astype(np.int64)
    factor = np.asarray(scenario.weekday_factors)[weekday(day)]
    answered = rng.random(n * k) < np.minimum(truth.rate[contact, kind, slot] * factor, 1.0)
    cell = slot + settings.slots * kind if settings.split_weekends else slot
    np.add.at(sends, contact * cells + cell, 1)
    np.add.at(responses, contact * cells + cell, answered)
    return sends.reshape(n, cells), responses.reshape(n, cells)


@dataclass(frozen=True, slots=True, eq=False)
class SendTimeRun:
    """One simulated experiment: `outcomes` for measurement, plus per send its launch
    instant, send time, slot, reason code, propensity, deferral, the true rate of its
    slot relative to the contact's best allowed slot (`best_ratio`), whether that best
    slot differs from the account's, the contact's sends before it, whether it was
    answered at all (the fold counts late responses too) and when (`answered_at`, also
    for sends never answered: when they would have been); and the contacts' (contacts,
    cells) sends and responses before the first launch and after the last."""

    scenario: str
    seed: int
    aligned: bool
    slots: int
    outcomes: Outcomes
    launch_at: FloatArray
    send_at: FloatArray
    slot: Int64Array
    reason: Int64Array
    propensity: FloatArray
    deferred: BoolArray
    best_ratio: FloatArray
    differs: BoolArray
    sends_before: Int64Array
    answered: BoolArray
    answered_at: FloatArray
    prior: SlotPrior
    initial: tuple[Int64Array, Int64Array]
    final: tuple[Int64Array, Int64Array]

    @property
    def optimized(self) -> BoolArray:
        return self.outcomes.arm == ARMS.index("optimized")


def launch_days(scenario: SendTimeScenario) -> list[int]:
    days: list[int] = []
    day = scenario.campaigns.first_day
    while len(days) < scenario.campaigns.launches:
        if int(weekday(np.array([day]))[0]) not in scenario.campaigns.skip_weekdays:
            days.append(day)
        day += 1
    return days


def _instant(day: int, seconds: int, zone: str) -> float:
    local = datetime.combine(EPOCH + timedelta(days=day), datetime.min.time())
    return (local + timedelta(seconds=seconds)).replace(tzinfo=ZoneInfo(zone)).timestamp()


def simulate(
    scenario: SendTimeScenario, seed: int | None = None, aligned: bool = False
) -> SendTimeRun:
    """Run the scenario's campaigns; `aligned` launches the optimized group at the
    alignment launch time and delays the control by the alignment delay."""
    seed = scenario.seed if seed is None else seed
    rng = np.random.default_rng([seed, int(aligned)])
    settings = scenario.settings
    if aligned:
        settings = replace(settings, control_delay_seconds=scenario.aligned_control_delay)
    truth = make_truth(scenario, np.random.default_rng(seed))
    days = launch_days(scenario)
    sends, responses = history(scenario, truth, days[0], np.random.default_rng([seed, 7]))
    prior = fit_prior(sends, responses, period=settings.slots)
    decider = SendTimeDecider(settings, prior)
    initial = (sends.copy(), responses.copy())
    launch_seconds = scenario.aligned_launch_time if aligned else scenario.campaigns.launch_time
    appeal = np.exp(rng.normal(0.0, scenario.campaigns.launch_sd, size=len(days)))
    rows = []
    for index, day in enumerate(days):
        at = _instant(day, launch_seconds, settings.zone)
        batch = _batch(scenario, settings, truth, index, at, sends, responses)
        decisions = decider.decide_batch(batch, rng)
        rows.append(
            _outcomes(
                scenario, settings, truth, index, day, at, decisions, appeal[index], sends, rng
            )
        )
        np.add.at(sends, (np.arange(scenario.contacts), decisions.cell), 1)
        np.add.at(responses, (np.arange(scenario.contacts), decisions.cell), rows[-1]["answered"])
    return _run(scenario, seed, aligned, rows, prior, initial, (sends, responses))


def _batch(
    scenario: SendTimeScenario,
    settings: SendTimeSettings,
    truth: Truth,
    index: int,
    at: float,
    sends: Int64Array,
    responses: Int64Array,
) -> SendTimeBatch:
    n = scenario.contacts
    hours = settings.hours.intervals()
    return SendTimeBatch(
        contact_ids=tuple(f"ct-{j}" for j in range(n)),
        launch_keys=(f"{scenario.name}@{index}",) * n,
        launch=np.full(n, at),
        window=np.full(n, scenario.campaigns.window_hours * 3600.0),
        zones=tuple(truth.zones[z] for z in truth.zone),
        zone_source=np.full(n, ZONE_SOURCES.index("profile"), dtype=np.uint8),
        zone_issue=np.full(n, ZONE_ISSUES.index("none"), dtype=np.uint8),
        hours=np.tile(np.array([*hours[0], *hours[1]], dtype=np.int64), (n, 1)),
        control_pct=np.full(n, settings.control_pct),
        control_delay=np.full(n, settings.control_delay_seconds, dtype=np.int64),
        sends=sends.copy(),
        responses=responses.copy(),
    )


def _outcomes(
    scenario: SendTimeScenario,
    settings: SendTimeSettings,
    truth: Truth,
    index: int,
    day: int,
    at: float,
    d: SendTimeDecisions,
    appeal: float,
    sends: Int64Array,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.generic]]:
    n = scenario.contacts
    contact = np.arange(n)
    kind = d.weekend.astype(np.int64)
    expected = truth.rate[contact, kind, d.slot]
    factor = np.asarray(scenario.weekday_factors)[weekday(d.local_day)] * appeal
    answered = rng.random(n) < np.minimum(expected * factor, 1.0)
    answered_at = d.send_at + rng.exponential(scenario.response.delay_hours * 3600.0, size=n)
    control = d.arm == ARMS.index("control")
    arm_launch = at + np.where(control, settings.control_delay_seconds, 0)
    in_window = answered & (
        answered_at <= arm_launch + scenario.campaigns.outcome_window_hours * 3600
    )
    return {
        "launch": np.full(n, index), "launch_day": np.full(n, day), "arm": d.arm.astype(np.int64),
        "delivery_day": d.local_day, "responded": in_window, "contact": contact,
        "expected": expected, "launch_at": arm_launch.astype(np.float64), "send_at": d.send_at,
        "slot": d.slot, "reason": d.reason.astype(np.int64), "propensity": d.propensity,
        "deferred": d.deferred, "best_ratio": expected / truth.best_allowed[contact, kind],
        "differs": truth.differs()[contact, kind], "sends_before": sends.sum(axis=1),
        "answered": answered, "answered_at": answered_at,
    }  # fmt: skip


def _run(
    scenario: SendTimeScenario,
    seed: int,
    aligned: bool,
    rows: list[dict[str, NDArray[np.generic]]],
    prior: SlotPrior,
    initial: tuple[Int64Array, Int64Array],
    final: tuple[Int64Array, Int64Array],
) -> SendTimeRun:
    col = {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
    outcomes = Outcomes(
        col["launch"], col["launch_day"], col["arm"], col["delivery_day"],
        col["responded"], col["contact"], col["expected"],
    )  # fmt: skip
    return SendTimeRun(
        scenario=scenario.name, seed=seed, aligned=aligned, slots=scenario.settings.slots,
        outcomes=outcomes, launch_at=col["launch_at"], send_at=col["send_at"], slot=col["slot"],
        reason=col["reason"], propensity=col["propensity"], deferred=col["deferred"],
        best_ratio=col["best_ratio"], differs=col["differs"], sends_before=col["sends_before"],
        answered=col["answered"], answered_at=col["answered_at"], prior=prior, initial=initial,
        final=final,
    )  # fmt: skip
