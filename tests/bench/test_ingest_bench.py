"""`bench ingest`: the report's steps, and the same results for the same seed."""

from __future__ import annotations

from dataclasses import replace

from bench import cli as bench_command
from bench import ingest_bench

TINY = ingest_bench.Config(messages=6, warmup=4, per_message=20, per_batch=3, repeats=1)


def test_ingest_is_a_bench_command() -> None:
    assert bench_command.DELEGATED["ingest"] == "bench.ingest_bench"


def test_every_step_is_timed_and_the_results_repeat() -> None:
    seconds, digest, events = ingest_bench.run_once(TINY)
    assert set(seconds) == {*ingest_bench.STEPS, "total"}
    assert events == 6 * 20
    assert all(s >= 0 for step, s in seconds.items() if step != "other")
    assert ingest_bench.run_once(TINY)[1] == digest
    assert ingest_bench.run_once(replace(TINY, seed=8))[1] != digest


def test_the_workload_holds_duplicates_and_every_kind() -> None:
    import numpy as np
    import orjson

    stream = ingest_bench.messages(TINY, 50, np.random.default_rng(1))
    kinds = {orjson.loads(m.value)["kind"] for m in stream}
    ids = [e["event_id"] for m in stream for e in orjson.loads(m.value)["events"]]
    assert kinds == {"send", "click", "conversion"}
    assert 0 < len(ids) - len(set(ids)) < 0.15 * len(ids)
