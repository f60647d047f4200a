"""Send-time results from the messages on the topics, without Kafka: the function a report
prints (`sendtime_results`), and a simulated experiment as the messages a live one leaves
(`messages_of_run`), so the live path can be checked against the simulator's figures.

The join: a send whose `request_id` is a send-time request's id (the sender sets it when
it sends at the answered time) is joined to that answer, which gives its launch, group,
group launch (`outcomes_from`) and zone; its first click naming it (`send_event_id`)
gives the response time. Sends without an answer, answers without a send and clicks
without a joined send are counted, not used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from selector.sendtime.batch import ARMS, REASONS
from selector.sendtime.clock import ZONE_SOURCES
from selector.sendtime.hours import is_weekend
from selector.sendtime.live import LiveReport, LiveSend, live_report
from selector.sendtime.scenario import SendTimeScenario
from selector.sendtime.simulate import SendTimeRun, make_truth
from stream.wire.messages import ClickEvent, SendEvent, SendTimeAnswer, SendTimeError


@dataclass(frozen=True, slots=True)
class SendTimeResults:
    """Per account, the live report; and what could not be joined, by kind."""

    reports: dict[str, LiveReport]
    unjoined: Counter[str]

    def format_table(self) -> str:
        parts = [f"account {account}\n{r.format_table()}" for account, r in self.reports.items()]
        if self.unjoined:
            parts.append("not joined: " + ", ".join(f"{k} {n:,}" for k, n in self.unjoined.items()))
        return "\n\n".join(parts)


def sendtime_results(
    answers: Iterable[SendTimeAnswer | SendTimeError],
    sends: Iterable[SendEvent],
    clicks: Iterable[ClickEvent],
    *,
    window_seconds: float = 72 * 3600.0,
    account_zone: str = "UTC",
    min_week_days: int = 5,
) -> SendTimeResults:
    """The send-time estimates per account from the answers, sends and clicks read off
    the topics (see the module docstring and `selector.sendtime.live`)."""
    unjoined: Counter[str] = Counter()
    by_request = {a.request_id: a for a in answers if isinstance(a, SendTimeAnswer)}
    first_click: dict[tuple[str, str], float] = {}
    for c in clicks:
        if c.send_event_id is not None:
            key = (c.account_id, c.send_event_id)
            first_click[key] = min(c.time, first_click.get(key, c.time))
    rows: dict[str, list[LiveSend]] = {}
    used: set[str] = set()
    for s in sends:
        answer = by_request.get(s.request_id or "")
        if answer is None or answer.account_id != s.account_id:
            unjoined["send without an answer"] += 1
            continue
        used.add(answer.request_id)
        clicked = first_click.pop((s.account_id, s.event_id), None)
        row = LiveSend(
            answer.campaign_id, answer.launch_time, answer.outcomes_from, answer.arm,
            answer.zone, s.contact_id, s.time, clicked,
        )  # fmt: skip
        rows.setdefault(s.account_id, []).append(row)
    unjoined["answer without a send"] += len(by_request) - len(used)
    unjoined["click without a joined send"] += len(first_click)

    def report(account_rows: list[LiveSend]) -> LiveReport:
        return live_report(
            account_rows, window_seconds=window_seconds, account_zone=account_zone,
            min_week_days=min_week_days,
        )  # fmt: skip

    reports = {account: report(account_rows) for account, account_rows in rows.items()}
    return SendTimeResults(reports, +unjoined)


def messages_of_run(
    run: SendTimeRun, scenario: SendTimeScenario, account_id: str
) -> tuple[list[SendTimeAnswer], list[SendEvent], list[ClickEvent]]:
    """The answers, sends and clicks a live experiment like `run` leaves on the topics:
    every send at its decided time, every answered one clicked when it was answered."""
    truth = make_truth(scenario, np.random.default_rng(run.seed))
    settings = scenario.settings
    delay = scenario.aligned_control_delay if run.aligned else settings.control_delay_seconds
    tag = "aligned" if run.aligned else "standard"
    o = run.outcomes
    control = o.arm == ARMS.index("control")
    launch = run.launch_at - np.where(control, delay, 0)
    weekend = is_weekend(o.delivery_day)
    answers, sends, clicks = [], [], []
    for i in range(len(o)):
        contact, rid = f"ct-{int(o.contact[i])}", f"{tag}-{int(o.launch[i])}-{int(o.contact[i])}"
        sent_at, source = float(run.send_at[i]), ZONE_SOURCES.index("profile")
        answer = SendTimeAnswer(
            rid, account_id, scenario.name, sent_at, int(run.slot[i]), bool(weekend[i]),
            ARMS[o.arm[i]], REASONS[run.reason[i]], float(run.propensity[i]),
            truth.zones[truth.zone[int(o.contact[i])]], ZONE_SOURCES[source],
            bool(run.deferred[i]), float(launch[i]), float(run.launch_at[i]), float(launch[i]),
        )  # fmt: skip
        answers.append(answer)
        sends.append(SendEvent(f"s-{rid}", account_id, scenario.name, contact, "c1", sent_at, rid))
        if run.answered[i]:
            at = float(run.answered_at[i])
            clicks.append(ClickEvent(f"k-{rid}", account_id, contact, "c1", at, f"s-{rid}"))
    return answers, sends, clicks
