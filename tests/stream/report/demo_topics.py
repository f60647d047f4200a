"""What the demo's topics hold after a run, built from a simulation instead of Kafka.

The demo's sender answers every selection response with a send (`send-<request_id>`,
carrying the request id) and, when the contact clicks, a click and possibly a conversion
naming that send; `simulated_topics` writes the same messages for every row of a
`SimulationResult`, so `stream.demo.build_result` and the live report read the same data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.scenario import Scenario
from selector.simulate import SimulationResult, simulate
from stream.commands.simulate import load_scenario
from stream.demo.sender import truths
from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent

PRODUCT = Path(__file__).parents[3] / "scenarios" / "product.yaml"
START = 1_700_000_000.0


def product_run(sends: int = 20_000, seed: int = 3) -> tuple[Scenario, SimulationResult]:
    scenario = dataclasses.replace(load_scenario(PRODUCT), sends=sends)
    return scenario, simulate(scenario, seed, propensity_samples=256)


def simulated_topics(scenario: Scenario, result: SimulationResult) -> dict[str, list[Any]]:
    """Messages per kind, as `stream.demo.read_topics` returns them."""
    account = scenario.account.account_id
    campaign = scenario.account.campaigns[0].campaign_id
    truth = truths(scenario)[0]
    kinds = ("selection_response", "send", "click", "conversion")
    out: dict[str, list[Any]] = {kind: [] for kind in kinds}
    for i in range(len(result)):
        request = f"req-{i}"
        creative_index = int(result.creative[i])
        creative = result.creative_ids[creative_index]
        contact = f"contact-{int(result.contact[i])}"
        t = START + float(result.time[i])
        p = float(result.propensity[i])
        out["selection_response"].append(
            SelectionResponse(
                request, account, campaign, creative, ARMS[result.arm[i]],
                DECIDED_BY[result.method[i]], POOLS[result.pool[i]], "none",
                p if 0 <= p <= 1 else None, i, t,
            )
        )  # fmt: skip
        send = f"send-{request}"
        out["send"].append(SendEvent(send, account, campaign, contact, creative, t, request))
        if not result.click[i]:
            continue
        later = t + scenario.feedback_delay_seconds
        common = (account, contact, creative, later)
        out["click"].append(ClickEvent(f"click-{request}", *common, send, campaign))
        if result.conversion[i]:
            revenue = float(truth.pays_per_conversion[creative_index])
            out["conversion"].append(
                ConversionEvent(f"conv-{request}", *common, revenue, send, campaign)
            )
    return out


def segment_of(scenario: Scenario, result: SimulationResult) -> np.ndarray:
    segments = np.zeros(scenario.contacts, dtype=np.int64)
    segments[result.contact] = result.segment
    return segments


def click_payouts(scenario: Scenario) -> dict[str, dict[str, float]]:
    """Per-click payouts of the account's creatives (the cto offers)."""
    truth = truths(scenario)[0]
    ids = [c.creative_id for c in scenario.account.creatives]
    return {
        scenario.account.account_id: {
            c: float(v) for c, v in zip(ids, truth.pays_per_click, strict=True) if v > 0
        }
    }
