"""Send-time results in the live report: the send-time answers read off their topic, and
the sends and clicks the report reads anyway, joined by
`stream.sendtime.live.sendtime_results` into one send-time section per account.

`SendTimeTap` takes the answers first (`add_answers`: value bytes, decoded by the codec;
undecodable ones are counted by reason, never raised), then looks at every decoded send
and click the report reads (`add_columns`, `add_messages`) and keeps only the few that
matter: sends whose `request_id` is a kept answer's, then clicks naming a kept send. So
the sends must come before the clicks (the report reads them in that order when there
are answers) and the event topics are read once.

Which answers: of the accounts asked for, with their send time (`send_at`) in
`[since, until)`; which sends: of those answers, with their own time in that range, as
the report keeps its sends. An account's section (`selector.live_sections
.sendtime_section`) is then exactly the `sendtime_results` of its answers, sends and
clicks: the estimates (naive, same weekday, weekly, launch alignment) with 95% intervals,
and the counts: answers, error answers, sends joined, and what did not join by reason.

`sendtime_options` is where an account's send-time settings (its zone, its outcome
window) come from the catalog; until the catalog carries them every account gets the
defaults (UTC, 72 hours), as `python -m stream.sendtime.live_topics` does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from selector.live_report import LiveReport, with_sections, with_topic_counts
from selector.live_sections import Section, sendtime_section
from stream.handlers.catalog import AccountCatalog
from stream.sendtime.live import sendtime_results
from stream.wire import codec
from stream.wire.checks import LIMITS, Limits
from stream.wire.messages import ClickEvent, SendEvent, SendTimeAnswer, SendTimeError

__all__ = ["KIND", "SendTimeOptions", "SendTimeTap", "sendtime_options"]
KIND: Final = "send_time_response"
_SEND = ("event_id", "account_id", "campaign_id", "contact_id", "creative_id", "time",
         "request_id")  # fmt: skip
_CLICK = ("event_id", "account_id", "contact_id", "creative_id", "time", "send_event_id")


@dataclass(frozen=True, slots=True)
class SendTimeOptions:
    """How an account's send-time results are measured (`sendtime_results`' options)."""

    window_seconds: float = 72 * 3600.0
    zone: str = "UTC"
    min_week_days: int = 5


def sendtime_options(catalog: AccountCatalog | None) -> SendTimeOptions:
    """The account's send-time measurement options. This is where the catalog's
    send-time settings plug in (their zone and outcome window); the catalog does not
    carry them yet, so every account gets the defaults."""
    del catalog  # no send-time settings in the catalog yet
    return SendTimeOptions()


class SendTimeTap:
    """Collects the send-time answers and the sends and clicks that join them (see the
    module docstring). Owns what it keeps; `apply` adds the sections to a report."""

    def __init__(
        self,
        accounts: frozenset[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limits: Limits = LIMITS,
    ) -> None:
        self._accounts = accounts
        self._range = (-math.inf if since is None else since, math.inf if until is None else until)
        self._limits = limits
        self.read = 0
        self.undecodable: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # error answers by account
        self.answers: list[SendTimeAnswer] = []
        self.sends: list[SendEvent] = []
        self.clicks: list[ClickEvent] = []
        self._requests: set[str] = set()
        self._sends: set[str] = set()

    def __bool__(self) -> bool:
        """Whether there is any answer to join sends to."""
        return bool(self._requests)

    def _wanted(self, account_id: str | None) -> bool:
        return self._accounts is None or account_id in self._accounts

    def add_answers(self, raws: Iterable[bytes | None]) -> None:
        """Send-time response values, as read off their topic."""
        low, high = self._range
        for raw in raws:
            self.read += 1
            answer = codec.decode(KIND, raw, limits=self._limits)
            if isinstance(answer, codec.Rejected):
                self.undecodable[answer.reason] += 1
            elif not self._wanted(answer.account_id):
                self.left_out["other_account"] += 1
            elif isinstance(answer, SendTimeError):
                self.left_out["error_response"] += 1
                self.errors[answer.account_id or ""] += 1
            elif low <= answer.send_at < high:
                self.answers.append(answer)
                self._requests.add(answer.request_id)

    def add_columns(self, kind: str, values: Mapping[str, Sequence[Any]], size: int) -> None:
        """Decoded records of `kind` as columns (`stream.wire.columns`)."""
        if kind == "send" and self._requests:
            keep = [i for i, r in enumerate(values["request_id"]) if r in self._requests]
            self._add_sends(SendEvent(*(values[f][i] for f in _SEND)) for i in keep)
        elif kind == "click" and self._sends:
            ids = values["send_event_id"]
            keep = [i for i in range(size) if ids[i] in self._sends]
            self.clicks += [ClickEvent(*(values[f][i] for f in _CLICK)) for i in keep]

    def add_messages(self, kind: str, messages: Iterable[Any]) -> None:
        """Decoded records of `kind` (a batch envelope's); rejections are skipped, the
        report counts them."""
        if kind == "send" and self._requests:
            self._add_sends(
                m for m in messages if isinstance(m, SendEvent) and m.request_id in self._requests
            )
        elif kind == "click" and self._sends:
            self.clicks += [
                m for m in messages if isinstance(m, ClickEvent) and m.send_event_id in self._sends
            ]

    def _add_sends(self, sends: Iterable[SendEvent]) -> None:
        low, high = self._range
        for s in sends:
            if low <= s.time < high and self._wanted(s.account_id):
                self.sends.append(s)
                self._sends.add(s.event_id)

    def sections(self, catalogs: Mapping[str, AccountCatalog]) -> dict[str, list[Section]]:
        """Each account's send-time section, from what was kept."""
        answers = _by_account(self.answers)
        sends, clicks = _by_account(self.sends), _by_account(self.clicks)
        out: dict[str, list[Section]] = {}
        for account in sorted({*answers, *sends, *(a for a in self.errors if a)}):
            section = account_section(
                account, answers.get(account, []), sends.get(account, []),
                clicks.get(account, []), sendtime_options(catalogs.get(account)),
                self.errors[account],
            )  # fmt: skip
            if section is not None:
                out[account] = [section]
        return out

    def apply(self, report: LiveReport, catalogs: Mapping[str, AccountCatalog]) -> LiveReport:
        """`report` with the send-time sections and this topic's counts in its tables of
        records read, undecodable and left out (none of it if nothing was read)."""
        if not self.read:
            return report
        report = with_topic_counts(report, KIND, self.read, self.undecodable, self.left_out)
        return with_sections(report, self.sections(catalogs))


def _by_account(messages: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for m in messages:
        out.setdefault(m.account_id, []).append(m)
    return out


def account_section(
    account_id: str,
    answers: Sequence[SendTimeAnswer],
    sends: Sequence[SendEvent],
    clicks: Sequence[ClickEvent],
    options: SendTimeOptions,
    errors: int = 0,
) -> Section | None:
    """One account's send-time section: `sendtime_results` of its messages."""
    results = sendtime_results(
        answers, sends, clicks, window_seconds=options.window_seconds,
        account_zone=options.zone, min_week_days=options.min_week_days,
    )  # fmt: skip
    report = results.reports.get(account_id)
    counts = {"answers": len(answers), "error answers": errors, "sends joined": 0}
    if report is not None:
        counts["sends joined"] = report.standard_sends + report.aligned_sends
    counts |= {f"not joined: {reason}": n for reason, n in sorted(results.unjoined.items())}
    estimates = () if report is None else report.estimates
    standard, aligned = (0, 0) if report is None else (report.standard_sends, report.aligned_sends)
    return sendtime_section(estimates, standard, aligned, counts)
