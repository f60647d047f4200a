"""Thompson sampling under the routine mixture, and the propensity of what it chose.

A contact's posterior is a mixture over the account's routines (`selector.sendtime.prior`):
with probability P(r | counts) it follows routine r, and then its cells are independent
Betas, prior of r plus its own counts. A draw picks a routine by those probabilities,
then one value per candidate cell; the highest wins. The propensity of the winner is the
mixture of per-routine win probabilities, each integrated by `win_probability`.

Decisions of a batch collect their integrations in a `PendingPropensities` so the batch
integrates once: most of the integration's cost is per call, not per request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from selector.sendtime.prior import RoutineTables, SlotPrior
from selector.sendtime.propensity import win_probability

Int64Array = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

ROUTINE_FLOOR = 1e-4  # routines less likely than this are left out of a propensity


@dataclass(frozen=True, slots=True, eq=False)
class PendingPropensities:
    """Thompson decisions whose propensity is still to be integrated: their rows, counts,
    candidates, winners, routine probabilities and candidate counts."""

    rows: Int64Array
    sends: Int64Array
    responses: Int64Array
    available: BoolArray
    winner: Int64Array
    chance: FloatArray
    count: Int64Array

    def at(self, rows: Int64Array) -> PendingPropensities:
        """The same decisions with rows renumbered into the batch (`rows[local]`)."""
        return replace(self, rows=rows[self.rows])

    @staticmethod
    def concatenate(parts: list[PendingPropensities]) -> PendingPropensities:
        if len(parts) == 1:
            return parts[0]
        return PendingPropensities(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in PendingPropensities.__slots__)
        )


def thompson(
    prior: SlotPrior,
    tables: RoutineTables,
    sends: Int64Array,
    responses: Int64Array,
    available: BoolArray,
    rng: np.random.Generator,
) -> tuple[Int64Array, FloatArray]:
    """Thompson draws under the routine mixture: a routine from P(routine | counts),
    then one draw per candidate cell from that routine's posterior Betas. Returns the
    winners and the routine probabilities."""
    m = sends.shape[0]
    chance = tables.probabilities(sends, responses)
    routine = np.zeros(m, dtype=np.intp)
    if prior.routines > 1:
        below = chance.cumsum(axis=1) < rng.random((m, 1))
        routine = np.minimum(below.sum(axis=1), prior.routines - 1)
    alpha = prior.alpha[routine] + responses
    beta = prior.beta[routine] + (sends - responses)
    draws = np.full(alpha.shape, -1.0)
    draws[available] = rng.beta(alpha[available], beta[available])
    return draws.argmax(axis=1), chance


def mixture_win_probability(prior: SlotPrior, job: PendingPropensities) -> FloatArray:
    """P(winner) = sum_r P(r | counts) P(winner | r), leaving out routines below
    ROUTINE_FLOOR (the error is at most half their total, which is added)."""
    sends, responses = job.sends, job.responses
    if prior.routines == 1:
        alpha, beta = prior.alpha[0] + responses, prior.beta[0] + (sends - responses)
        return win_probability(alpha, beta, job.available, job.winner)
    row, routine = np.nonzero(job.chance >= ROUTINE_FLOOR)
    a = prior.alpha[routine] + responses[row]
    b = prior.beta[routine] + (sends[row] - responses[row])
    p = win_probability(a, b, job.available[row], job.winner[row])
    weight: FloatArray = job.chance[row, routine]
    n = job.rows.size
    total = np.bincount(row, weights=weight * p, minlength=n)
    dropped = 1.0 - np.bincount(row, weights=weight, minlength=n)
    return np.clip(total + 0.5 * np.maximum(dropped, 0.0), 0.0, 1.0)
