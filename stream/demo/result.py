"""The demo's result, from what went through Kafka alone: the topics read from the
beginning, each send joined to its answer by `request_id`, and the lift report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
                    decoded = codec.decode(kind, record.value)
                    if not isinstance(decoded, codec.Rejected):
                        out[kind].append(decoded)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


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
    values come from the scenario's truth; the oracle's eligible creatives replay the
    cooldowns from the sends themselves."""
    answers = {
        r.request_id: r
        for r in messages["selection_response"]
        if isinstance(r, SelectionResponse) and r.account_id == account_id
    }
    sends = sorted(
        (s for s in messages["send"] if s.account_id == account_id),
        key=lambda s: (s.time, s.event_id),
    )
    clicked = {c.send_event_id for c in messages["click"] if c.account_id == account_id}
    converted = {
        c.send_event_id: c.revenue for c in messages["conversion"] if c.account_id == account_id
    }
    table = truths(scenario)
    creative_ids = tuple(c.creative_id for c in scenario.account.creatives)
    index = {cid: k for k, cid in enumerate(creative_ids)}
    window = scenario.account.settings.cooldown_seconds
    last_sent: dict[str, dict[int, float]] = {}
    n = len(sends)
    cols: dict[str, Array] = {
        "time": np.zeros(n),
        "contact": np.zeros(n, dtype=np.int32),
        "segment": np.zeros(n, dtype=np.uint8),
        "creative": np.zeros(n, dtype=np.int16),
        "arm": np.zeros(n, dtype=np.uint8),
        "method": np.zeros(n, dtype=np.uint8),
        "pool": np.zeros(n, dtype=np.uint8),
        "propensity": np.full(n, np.nan),
        "click": np.zeros(n, dtype=bool),
        "conversion": np.zeros(n, dtype=bool),
        "revenue": np.zeros(n),
        "expected": np.zeros(n),
        "oracle": np.zeros(n),
    }
    unmatched = 0
    keep = np.ones(n, dtype=bool)
    for i, send in enumerate(sends):
        answer = answers.get(send.request_id or "")
        if answer is None:
            unmatched += 1
            keep[i] = False
            continue
        offset = send.time - start_time
        truth = truth_at(table, offset)
        contact = int(send.contact_id.rsplit("-", 1)[1])
        segment = int(segment_of[contact])
        k = index[send.creative_id]
        history = last_sent.setdefault(send.contact_id, {})
        eligible = truth.candidate.copy()
        for j, when in history.items():
            if send.time - when < window:
                eligible[j] = False
        values = truth.value[segment]
        expected = float(values[k])
        oracle = float(values[eligible].max()) if eligible.any() else expected
        history[k] = send.time
        click = send.event_id in clicked
        conversion = send.event_id in converted
        revenue = click * float(truth.pays_per_click[k]) + converted.get(send.event_id, 0.0)
        row = {
            "time": offset, "contact": contact, "segment": segment, "creative": k,
            "arm": ARMS.index(answer.arm), "method": DECIDED_BY.index(answer.method),
            "pool": POOLS.index(answer.pool),
            "propensity": math.nan if answer.propensity is None else answer.propensity,
            "click": click, "conversion": conversion, "revenue": revenue,
            "expected": expected, "oracle": oracle,
        }  # fmt: skip
        for name, value in row.items():
            cols[name][i] = value
    result = SimulationResult(
        scenario=f"{scenario.name} (demo through Kafka)",
        seed=seed,
        goal=scenario.account.settings.goal,
        creative_ids=creative_ids,
        final_stats=AccountStats(),
        **{name: column[keep] for name, column in cols.items()},
    )
    counts = {
        "sends": n,
        "responses": len(answers),
        "clicks": len(clicked),
        "conversions": len(converted),
        "sends_without_response": unmatched,
    }
    return result, counts
