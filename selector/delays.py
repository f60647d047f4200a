"""Feedback delay distributions: how long after a send its click arrives, and after a
click its conversion.

A scenario gives one per kind under `feedback_delays` (schemas/scenario.v1.schema.json):

- `{distribution: constant, seconds: d}`;
- `{distribution: exponential, median_seconds: m}` (rate ln 2 / m);
- `{distribution: lognormal, median_seconds: m, sigma: s}` (log-delay ~ N(ln m, s^2));
- `{distribution: empirical, bins: [{up_to_seconds: x, share: w}, ...]}`: a histogram,
  uniform within each bin (the first bin starts at 0), shares normalised to sum to 1.

Each value samples delays with a generator passed in and reports its CDF, so the same
object describes the truth of a simulation and can be compared with what the selector
estimates from the stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from statistics import NormalDist
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from selector.domain import ConfigError

FloatArray = NDArray[np.float64]
Kind = Literal["constant", "exponential", "lognormal", "empirical"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(path, message)


@dataclass(frozen=True, slots=True)
class DelayDistribution:
    """One delay law; `edges` and `shares` are used by `empirical` only."""

    kind: Kind = "constant"
    seconds: float = 0.0  # constant: the delay; exponential and lognormal: the median
    sigma: float = 0.0
    edges: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """n independent delays, in seconds."""
        if self.kind == "constant":
            return np.full(n, self.seconds)
        if self.kind == "exponential":
            return rng.exponential(self.seconds / math.log(2.0), n)
        if self.kind == "lognormal":
            return np.exp(rng.normal(math.log(self.seconds), self.sigma, n))
        which = rng.choice(len(self.shares), size=n, p=np.array(self.shares))
        lows = np.array((0.0, *self.edges[:-1]))
        highs = np.array(self.edges)
        return np.asarray(lows[which] + rng.random(n) * (highs[which] - lows[which]))

    def cdf(self, seconds: FloatArray) -> FloatArray:
        """P(delay <= seconds)."""
        t = np.asarray(seconds, dtype=np.float64)
        if self.kind == "constant":
            return (t >= self.seconds).astype(np.float64)
        if self.kind == "exponential":
            return np.where(t > 0, -np.expm1(-math.log(2.0) * np.maximum(t, 0) / self.seconds), 0)
        if self.kind == "lognormal":
            z = (np.log(np.maximum(t, 1e-300)) - math.log(self.seconds)) / self.sigma
            return np.where(t > 0, np.vectorize(NormalDist().cdf)(z), 0.0)
        cumulative = np.concatenate([[0.0], np.cumsum(self.shares)])
        return np.interp(t, np.array((0.0, *self.edges)), cumulative, left=0.0, right=1.0)

    @property
    def median_seconds(self) -> float:
        if self.kind in ("constant", "exponential", "lognormal"):
            return self.seconds
        cumulative = np.cumsum(self.shares)
        j = int(np.searchsorted(cumulative, 0.5))
        low = self.edges[j - 1] if j else 0.0
        below = cumulative[j - 1] if j else 0.0
        return low + (0.5 - below) / self.shares[j] * (self.edges[j] - low)


NO_DELAY = DelayDistribution()


def _positive(value: object, path: str, low: float = 0.0, strict: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    _require(ok, path, f"must be a finite number; got {value!r}")
    assert isinstance(value, int | float)
    _require(value > low if strict else value >= low, path, f"must be > {low:g}; got {value!r}")
    return float(value)


FIELDS: dict[Kind, set[str]] = {
    "constant": {"distribution", "seconds"},
    "exponential": {"distribution", "median_seconds"},
    "lognormal": {"distribution", "median_seconds", "sigma"},
    "empirical": {"distribution", "bins"},
}


def delay_from_dict(data: object, path: str) -> DelayDistribution:
    """Build and validate one distribution from its document form."""
    _require(isinstance(data, Mapping), path, "must be an object")
    assert isinstance(data, Mapping)
    kind = data.get("distribution")
    _require(kind in KINDS, f"{path}.distribution", f"must be one of {', '.join(KINDS)}")
    unknown = sorted(set(data) - FIELDS[kind])  # type: ignore[index]
    _require(not unknown, path, f"unknown field(s) {', '.join(map(str, unknown))}")
    missing = sorted(FIELDS[kind] - set(data))  # type: ignore[index]
    _require(not missing, path, f"a {kind} delay needs {', '.join(missing)}")
    if kind == "constant":
        return DelayDistribution(
            "constant", _positive(data["seconds"], f"{path}.seconds", strict=False)
        )
    if kind in ("exponential", "lognormal"):
        median = _positive(data["median_seconds"], f"{path}.median_seconds")
        sigma = _positive(data["sigma"], f"{path}.sigma") if kind == "lognormal" else 0.0
        return DelayDistribution(kind, median, sigma)
    return _empirical(data["bins"], f"{path}.bins")


def _empirical(bins: Any, path: str) -> DelayDistribution:
    _require(isinstance(bins, list) and len(bins) > 0, path, "must be a non-empty list")
    edges, shares = [], []
    for i, item in enumerate(bins):
        where = f"{path}[{i}]"
        ok = isinstance(item, Mapping) and set(item) == {"up_to_seconds", "share"}
        _require(ok, where, "must be {up_to_seconds, share}")
        edges.append(_positive(item["up_to_seconds"], f"{where}.up_to_seconds"))
        shares.append(_positive(item["share"], f"{where}.share", strict=False))
    increasing = all(b > a for a, b in pairwise(edges))
    _require(increasing, path, "up_to_seconds must increase from bin to bin")
    total = sum(shares)
    _require(total > 0, path, "shares must not all be 0")
    return DelayDistribution("empirical", 0.0, 0.0, tuple(edges), tuple(s / total for s in shares))
