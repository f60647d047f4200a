"""Feedback delay distributions: sampling, CDFs, medians, and every validation error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from selector import ConfigError
from selector.delays import DelayDistribution, delay_from_dict

LAWS = [
    {"distribution": "constant", "seconds": 600},
    {"distribution": "exponential", "median_seconds": 1800},
    {"distribution": "lognormal", "median_seconds": 1800, "sigma": 1.5},
    {
        "distribution": "empirical",
        "bins": [
            {"up_to_seconds": 600, "share": 2},
            {"up_to_seconds": 3600, "share": 1},
            {"up_to_seconds": 86_400, "share": 1},
        ],
    },
]


@pytest.mark.parametrize("doc", LAWS, ids=lambda d: d["distribution"])
def test_samples_follow_the_cdf_and_the_median(doc: dict[str, Any]) -> None:
    law = delay_from_dict(doc, "d")
    draws = law.sample(200_000, np.random.default_rng(1))
    assert draws.shape == (200_000,) and (draws >= 0).all()
    # binomial sd of an empirical CDF over 200,000 draws is <= 0.0012; margin 0.006
    for t in (300.0, 1000.0, 1800.0, 5000.0, 40_000.0):
        assert np.mean(draws <= t) == pytest.approx(float(law.cdf(np.array([t]))[0]), abs=0.006)
    assert np.mean(draws <= law.median_seconds) == pytest.approx(0.5, abs=0.006) or (
        law.kind == "constant"
    )


def test_empirical_median_interpolates_within_its_bin() -> None:
    law = delay_from_dict(LAWS[3], "d")
    assert law.shares == (0.5, 0.25, 0.25)
    assert law.median_seconds == pytest.approx(600.0)
    assert DelayDistribution("exponential", 1800.0).median_seconds == 1800.0


@pytest.mark.parametrize(
    ("doc", "path", "words"),
    [
        ({"distribution": "gamma"}, "d.distribution", "one of"),
        ({"distribution": "exponential"}, "d", "needs median_seconds"),
        ({"distribution": "exponential", "median_seconds": 0}, "d.median_seconds", "> 0"),
        ({"distribution": "lognormal", "median_seconds": 5, "sigma": -1}, "d.sigma", "> 0"),
        ({"distribution": "constant", "seconds": 1, "sigma": 2}, "d", "unknown field"),
        ({"distribution": "empirical", "bins": []}, "d.bins", "non-empty"),
        (
            {"distribution": "empirical", "bins": [{"up_to_seconds": 5, "share": 1},
                                                   {"up_to_seconds": 5, "share": 1}]},
            "d.bins",
            "increase",
        ),
        ({"distribution": "empirical", "bins": [{"up_to_seconds": 5, "share": 0}]}, "d.bins", "0"),
        ({"distribution": "empirical", "bins": [{"up_to_seconds": 5}]}, "d.bins[0]", "share"),
        ("fast", "d", "object"),
    ],
)  # fmt: skip
def test_invalid_distributions_name_the_field(doc: Any, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        delay_from_dict(doc, "d")
    assert info.value.path == path and words in info.value.message
