"""Decision quality under realistic feedback delays (`scenarios/delays.yaml`: clicks a
median of 30 minutes after the send with a tail to a day, conversions a median of a day
after the click), against the same scenario without delays.

Measured with this code, revenue goal, regret of the automated arm (the same seeds and
simulator for both):

| seeds | with delays | without | ratio |
|---|---|---|---|
| 0-7 | 2,492 | 2,179 | 1.14x |
| 8-15 | 2,343 | 2,231 | 1.05x |
| 0-15 | 2,417 | 2,205 | 1.10x |

Per seed (0-15), with delays: 2203 2285 2883 2624 2992 2187 2355 2405 2422 2520 2822
2714 2328 2042 2161 1733; without: 1633 2047 4376 2393 1774 1790 1756 1660 1689 2233
2747 2152 1889 1673 3300 2163. Single seeds range 0.65x to 1.69x: which of the top three
creatives Thompson sampling settles on first decides most of a run's regret, so only
the mean over seeds is checked, at the 1.2x target.

Before the delay estimate had a prior (none before 30 observed delays, the likelihood
alone after) and before the conversion-rate prior pooled the offer's other creatives,
the same seeds gave 3,310 against 2,369 (1.40x; seeds 8-15 1.32x, 0-15 1.36x; per seed
0.94x to 2.48x). Seeds 0-7 with one of the two: the delay prior alone 3,512 against
2,288 (1.54x), the offer pooling alone 2,839 against 2,100 (1.35x); with neither but the
true delay distributions given to the posterior, 2,975 (1.26x). Pending sends counted as
non-clicks gave 3.9x.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from selector.batch import ARMS
from selector.delays import NO_DELAY
from selector.simulate import SimulationResult, simulate
from tests.selector.test_quality import load

pytestmark = pytest.mark.slow
SEEDS = range(8)


def regret(result: SimulationResult) -> float:
    automated = result.arm == ARMS.index("automated")
    return float(result.regret[automated].sum())


def test_regret_with_realistic_delays_stays_close_to_regret_without() -> None:
    delayed = load("delays")
    assert delayed.account.settings.goal == "revenue"
    assert delayed.conversion_delay.median_seconds == 86_400
    prompt = dataclasses.replace(delayed, click_delay=NO_DELAY, conversion_delay=NO_DELAY)
    with_delays = np.mean([regret(simulate(delayed, seed)) for seed in SEEDS])
    without = np.mean([regret(simulate(prompt, seed)) for seed in SEEDS])
    assert with_delays <= 1.2 * without


def test_the_stream_estimates_the_accounts_delay_distributions() -> None:
    scenario = load("delays")
    # seven simulated days, so the conversion delays' tail is covered (seeds 0 and 2:
    # errors up to 0.021 at these points)
    short = dataclasses.replace(scenario, sends=140_000)
    stats = simulate(short, 0).final_stats
    rows = stats.counts.items()
    sent = {c: n.sends for c, n in rows}
    clicked = {c: n.clicks for c, n in rows}
    converted = {c: n.conversions for c, n in rows}
    for kind, law, parents, children in (
        ("click", scenario.click_delay, sent, clicked),
        ("conversion", scenario.conversion_delay, clicked, converted),
    ):
        estimate = stats.timing.delay_cdf(kind, parents, children)
        assert estimate is not None
        at = law.median_seconds * np.array([0.25, 1.0, 4.0])
        assert np.abs(estimate(at) - law.cdf(at)).max() < 0.05, kind
