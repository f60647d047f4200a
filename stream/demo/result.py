"""The demo's result, from what went through Kafka alone: the topics read from the
beginning, each send joined to its answer by `request_id`, and the lift report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from selector.batch import ARMS, DECIDED_BY, POOLS
from selector.scenario import Scenario
from selector.simulate import SimulationResult
from selector.stats import AccountStats
from stream.adapters.kafka_config import kafka_config
from stream.adapters.topic_specs import describe_topics
from stream.demo.sender import truth_at, truths
from stream.settings import Settings
from stream.wire import codec
from stream.wire.batches import EVENT_KINDS, open_events, open_responses
from stream.wire.messages import (
    TOPICS,
    SelectionResponse,
)

Array = np.ndarray[Any, Any]


async def read_topics(settings: Settings, kinds: Sequence[str]) -> dict[str, list[Any]]:
    """Every decodable message of each kind's topic, from the beginning to the current end."""
    topics = {settings.topic(TOPICS[kind]): kind for kind in kinds}  # type: ignore[index]
    consumer = AIOKafkaConsumer(**kafka_config(settings), group_id=None, enable_auto_commit=False)
    out: dict[str, list[Any]] = {kind: [] for kind in kinds}
    await consumer.start()
    try:
        described = await describe_topics(settings, topics)
        partitions = [
            TopicPartition(topic, p)
            for topic, state in described.items()
            for p in range(state.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                kind = topics[tp.topic]
                for record in records:
                    out[kind].extend(_messages(kind, record.value))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


def _messages(kind: str, raw: bytes | None) -> list[Any]:
    """A record's decodable messages: one, or each of a batch envelope's items."""
    if kind == "selection_response":
        items: Any = open_responses(raw)
        values = [items] if isinstance(items, codec.Rejected) else items
    elif kind in EVENT_KINDS:
        opened = open_events(kind, raw)
        values = [opened] if isinstance(opened, codec.Rejected) else [i.value for i in opened.items]
    else:
        values = [codec.decode(kind, raw)]
    return [v for v in values if not isinstance(v, codec.Rejected)]


COLUMNS: dict[str, tuple[Any, float]] = {  # column: (dtype, initial value)
    "time": (float, 0.0),
    "contact": (np.int32, 0),
    "segment": (np.uint8, 0),
    "creative": (np.int16, 0),
    "arm": (np.uint8, 0),
    "method": (np.uint8, 0),
    "pool": (np.uint8, 0),
    "propensity": (float, math.nan),
    "click": (bool, 0),
    "conversion": (bool, 0),
    "revenue": (float, 0.0),
    "expected": (float, 0.0),
    "oracle": (float, 0.0),
}


@dataclass
class _Outcomes:
    """One account's messages from Kafka, joined: answers by request_id, clicks and
    conversions by send_event_id, sends in time order."""

    answers: dict[str, SelectionResponse]
    sends: list[Any]
    clicked: set[str]
    converted: dict[str, float]

    @classmethod
    def of(cls, messages: Mapping[str, list[Any]], account_id: str) -> _Outcomes:
        mine = {
            kind: [x for x in xs if x.account_id == account_id] for kind, xs in messages.items()
        }
        return cls(
            {
                r.request_id: r
                for r in mine["selection_response"]
                if isinstance(r, SelectionResponse)
            },
            sorted(mine["send"], key=lambda s: (s.time, s.event_id)),
            {c.send_event_id for c in mine["click"]},
            {c.send_event_id: c.revenue for c in mine["conversion"]},
        )


class _Truth:
    """The scenario's truth along the sends: expected and oracle values, with the oracle's
    eligible creatives replaying the cooldowns from the sends themselves."""

    def __init__(self, scenario: Scenario, segment_of: Array, start_time: float) -> None:
        self.table = truths(scenario)
        self.creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
        self.index = {cid: k for k, cid in enumerate(self.creative_ids)}
        self.window = scenario.account.settings.cooldown_seconds
        self.segment_of = segment_of
        self.start_time = start_time
        self.last_sent: dict[str, dict[int, float]] = {}

    def row(self, send: Any, answer: SelectionResponse, joined: _Outcomes) -> dict[str, Any]:
        offset = send.time - self.start_time
        truth = truth_at(self.table, offset)
        contact = int(send.contact_id.rsplit("-", 1)[1])
        segment = int(self.segment_of[contact])
        k = self.index[send.creative_id]
        history = self.last_sent.setdefault(send.contact_id, {})
        eligible = truth.candidate.copy()
        for j, when in history.items():
            if send.time - when < self.window:
                eligible[j] = False
        values = truth.value[segment]
        expected = float(values[k])
        history[k] = send.time
        click = send.event_id in joined.clicked
        paid = click * float(truth.pays_per_click[k])
        return {
            "time": offset, "contact": contact, "segment": segment, "creative": k,
            "arm": ARMS.index(answer.arm), "method": DECIDED_BY.index(answer.method),
            "pool": POOLS.index(answer.pool),
            "propensity": math.nan if answer.propensity is None else answer.propensity,
            "click": click, "conversion": send.event_id in joined.converted,
            "revenue": paid + joined.converted.get(send.event_id, 0.0),
            "expected": expected,
            "oracle": float(values[eligible].max()) if eligible.any() else expected,
        }  # fmt: skip


def build_result(
    scenario: Scenario,
    messages: Mapping[str, list[Any]],
    segment_of: Array,
    start_time: float,
    seed: int,
    account_id: str,
) -> tuple[SimulationResult, dict[str, int]]:
    """Per send (joined to its selection answer by request_id, and to its click and
    conversion by send_event_id): the columns `build_report` takes. Expected and oracle
    values come from the scenario's truth."""
    joined = _Outcomes.of(messages, account_id)
    truth = _Truth(scenario, segment_of, start_time)
    n = len(joined.sends)
    cols = {name: np.full(n, fill, dtype=dtype) for name, (dtype, fill) in COLUMNS.items()}
    keep = np.ones(n, dtype=bool)
    for i, send in enumerate(joined.sends):
        answer = joined.answers.get(send.request_id or "")
        if answer is None:
            keep[i] = False
            continue
        for name, value in truth.row(send, answer, joined).items():
            cols[name][i] = value
    kept: dict[str, Any] = {name: column[keep] for name, column in cols.items()}
    result = SimulationResult(
        scenario=f"{scenario.name} (demo through Kafka)",
        seed=seed,
        goal=scenario.account.settings.goal,
        creative_ids=truth.creative_ids,
        final_stats=AccountStats(),
        **kept,
    )
    counts = {
        "sends": n,
        "responses": len(joined.answers),
        "clicks": len(joined.clicked),
        "conversions": len(joined.converted),
        "sends_without_response": int(n - keep.sum()),
    }
    return result, counts
