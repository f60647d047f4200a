"""The send-time agent's outgoing messages and what it counts of them: ok responses from
a batch's decisions, and error responses with their dead letters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selector.sendtime import SendTimeDecider, SendTimeDecisions, SendTimeRequest
from selector.sendtime.batch import ARMS, REASONS
from selector.sendtime.clock import DAY, ZONE_ISSUES, ZONE_SOURCES
from selector.sendtime.codec import CodecReason
from stream.handlers.sendtime_selection import Selected
from stream.ops.metrics import Metrics
from stream.wire import codec
from stream.wire import messages as m
from stream.wire.encoders import valid_id
from stream.wire.envelope import Incoming, Outgoing
from stream.wire.messages import MAX_TEXT_LENGTH
from stream.wire.reasons import Rejection
from stream.wire.sendtime_messages import SendTimeAnswer, SendTimeError, SendTimeQuery

Item = tuple[Incoming, SendTimeQuery, SendTimeRequest]


def local_seconds(decisions: SendTimeDecisions, decider: SendTimeDecider) -> np.ndarray:
    """Each decision's local time of day in seconds, read in its own zone."""
    hours = np.empty(len(decisions))
    t = np.floor(decisions.send_at).astype(np.int64)
    zones = np.asarray(decisions.zones, dtype=object)
    for name in set(decisions.zones):
        rows = np.flatnonzero(zones == name)
        local = t[rows] + decider.zones.clock(name).offset_at(t[rows])
        hours[rows] = local % DAY
    return hours


class Answers:
    def __init__(self, metrics: Metrics, responses_topic: str, dead_letters_topic: str) -> None:
        self._metrics = metrics
        self._responses_topic = responses_topic
        self._dead_letters_topic = dead_letters_topic

    def decided(
        self,
        items: Sequence[Item],
        decisions: SendTimeDecisions,
        decider: SendTimeDecider,
        now: float,
        selections: Sequence[Selected | None] | None = None,
    ) -> list[Outgoing]:
        """The ok responses, each on its request's reply topic (else the default), with
        the selection of each request that asked for one."""
        self.count(decisions, decider)
        out = []
        default_delay = decider.settings.control_delay_seconds
        for i, (_, query, request) in enumerate(items):
            d = decisions.row(i)
            delay = request.control_delay_seconds
            delay = default_delay if delay is None else delay
            launch = request.launch_time
            answer = SendTimeAnswer(
                query.request_id, query.account_id, query.campaign_id, d.send_at, d.slot,
                d.weekend, d.arm, d.reason, min(1.0, max(0.0, d.propensity)), d.zone,
                d.zone_source, d.deferred, launch, launch + (delay if d.arm == "control" else 0),
                now, selections[i] if selections is not None else None,
            )  # fmt: skip
            topic = query.reply_to or self._responses_topic
            out.append(Outgoing(topic, query.account_id.encode(), m.encode(answer)))
        return out

    def count(self, decisions: SendTimeDecisions, decider: SendTimeDecider) -> None:
        st = self._metrics.sendtime
        seconds = local_seconds(decisions, decider)
        for a, arm in enumerate(ARMS):
            mine = decisions.arm == a
            if not mine.any():
                continue
            for r in np.unique(decisions.reason[mine]).tolist():
                st.decisions.labels(arm, REASONS[r]).inc(int((decisions.reason[mine] == r).sum()))
            for second in seconds[mine].tolist():
                st.local_time.labels(arm).observe(second)
            st.deferred.labels(arm).inc(int(decisions.deferred[mine].sum()))
        fallback = decisions.zone_source != ZONE_SOURCES.index("request")
        sources, issues = decisions.zone_source[fallback], decisions.zone_issue[fallback]
        for source, issue in zip(sources.tolist(), issues.tolist(), strict=True):
            st.zone_fallbacks.labels(ZONE_SOURCES[source], ZONE_ISSUES[issue]).inc()

    def count_unusable(self, status: Sequence[CodecReason | None]) -> None:
        for reason in status:
            if reason is not None:
                self._metrics.sendtime.state_issues.labels(reason).inc()

    def reject(
        self,
        message: Incoming,
        request_id: str | None,
        account_id: str | None,
        reason: Rejection,
        detail: str | None,
        now: float,
    ) -> list[Outgoing]:
        """An error response on the default topic and a dead letter, both counted."""
        self._metrics.sendtime.errors.labels(reason).inc()
        self._metrics.dead_letters.labels(reason, message.topic).inc()
        valid = valid_id(account_id)
        key = valid.encode() if valid is not None else (message.key or b"")
        text = (detail or reason)[:MAX_TEXT_LENGTH]
        error = SendTimeError(valid_id(request_id), valid_id(account_id), reason, text, now)
        letter = codec.dead_letter(
            message.value, message.key, reason, text, message.topic, message.partition,
            message.offset, now,
        )  # fmt: skip
        return [
            Outgoing(self._responses_topic, key, m.encode(error)),
            Outgoing(self._dead_letters_topic, key, letter),
        ]
