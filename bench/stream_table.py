"""The stream benchmark's report as an aligned table."""

from __future__ import annotations

from typing import Any


def _n(x: float) -> str:
    return f"{x:,.0f}" if x == x else "n/a"


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x == x else "n/a"


HEAD: tuple[str, ...] = ("figure", "ours", "raw produce/s", "raw consume/s", "ours/produce")
HEAD = (*HEAD, "ours/consume", "CPU run/wait", "CPU µs/msg", "per CPU-s", "batch")
WIDTHS = (26, 8, 13, 13, 12, 12, 12, 10, 9, 6)


def _line(cells: tuple[str, ...]) -> str:
    right = (c.rjust(w) for c, w in zip(cells[1:], WIDTHS[1:], strict=True))
    return "  ".join([cells[0].ljust(WIDTHS[0]), *right])


def _row(name: str, ours: dict[str, Any], produce: dict[str, Any], consume: dict[str, Any]) -> str:
    p, c, rate = produce["produce_per_second"], consume["consume_per_second"], ours["per_second"]
    run, wait = ours["worker_cpu_utilization"], ours["worker_cpu_wait_fraction"]
    cpu = (
        f"{100 * run:.0f}%/{100 * wait:.0f}%",
        f"{ours['worker_cpu_us_per_message']:.0f}",
        _n(1e6 / ours["worker_cpu_us_per_message"]),
        _n(ours["mean_batch"]),
    )
    return _line((name, _n(rate), _n(p), _n(c), _ratio(rate / p), _ratio(rate / c), *cpu))


def rows(result: dict[str, Any]) -> list[str]:
    raw, sel, stats = result["raw"], result["selections"], result["stats"]
    return [
        _line(HEAD),
        # the worker reads requests and writes responses; it reads events and writes nothing
        _row("selections/s sustained", sel, raw["response"], raw["request"]),
        _row("stats events/s, dedup on", stats, raw["event"], raw["event"]),
    ]


def _percentiles(lat: dict[str, Any]) -> str:
    names = (("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"), ("p99.9", "p999_ms"))
    parts = [f"{name} {lat.get(key, float('nan')):.1f} ms" for name, key in names]
    return ", ".join([*parts, f"max {lat.get('max_ms', float('nan')):.1f} ms"])


def format_table(result: dict[str, Any]) -> str:
    m, load, raw = result["machine"], result["load"], result["raw"]
    sel, lat, stats = result["selections"], result["latency"], result["stats"]
    echo, nan = result["raw_latency"], float("nan")
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    sizes = ", ".join(f"{k} {v['mean_bytes']:.0f} B" for k, v in raw.items())
    lines = [
        "Stream benchmark: one worker (Redis cooldowns, Redis dedup), local Kafka (KRaft) and "
        f"Redis on loopback; {load['accounts']} accounts x {load['creatives_per_account']} "
        f"creatives, revenue goal, every creative past its learning threshold",
        f"{m['cpu_model']} ({m['logical_cpus']} logical CPUs, shared by the broker, Redis, the "
        f"worker and the load generator); Python {m['python']}, {versions}; load average at "
        f"start {' '.join(f'{x:.2f}' for x in m['load_average'])}",
        f"cores: {m['layout_note']}",
        f"requests and events per message: {load.get('request_batch', 1)} (linger "
        f"{load.get('linger_ms', 0):g} ms when paced); message sizes: {sizes}",
        "",
        *rows(result),
        "",
        f"latency at {lat['rate']:,.0f} requests/s, open loop, from the scheduled send time, "
        f"{lat.get('measured', 0):,} requests after a {lat.get('warmup_requests', 0):,}-request "
        f"warm-up: {_percentiles(lat)}",
        f"  (the sender was at most {lat['max_behind_schedule_ms']:.1f} ms behind its schedule; "
        f"worker CPU {100 * lat['worker_cpu_utilization']:.0f}% run, "
        f"{100 * lat['worker_cpu_wait_fraction']:.0f}% wait, "
        f"{lat['worker_cpu_us_per_message']:.0f} µs per request, mean batch "
        f"{lat['mean_batch']:.1f})",
        f"raw aiokafka echo on the worker's core, same rate and requests: {_percentiles(echo)}; "
        f"p99 ours/raw {lat.get('p99_ms', nan) / echo.get('p99_ms', nan):.1f}x",
        f"answered: max-rate {sel['answered']:,}/{sel['requests']:,} ({sel['errors']} errors), "
        f"paced {lat['answered']:,}/{lat['requests']:,} ({lat['errors']} errors); events "
        f"counted {stats['counted']:,.0f}/{stats['events']:,}, duplicates dropped "
        f"{stats['duplicates']:,.0f} of {stats['duplicates_published']:,} published twice",
        f"events: the stats agent alone {_n(stats.get('stats_agent_per_second', nan))}/s, the "
        f"send-time learner {_n(stats.get('learner_per_second', nan))}/s (the row above: until "
        "both had read every event)",
        f"load generator published requests at {_n(sel['publish_per_second'])}/s and events at "
        f"{_n(stats['publish_per_second'])}/s",
        "",
        "ours = the worker's rate over the steady window (10% to 90% of the work done). Raw = "
        "plain aiokafka in one process on",
        "  the worker's core, same messages: responses produced / requests consumed for "
        "selections, events for stats.",
        "CPU run/wait = the worker's time on a CPU / waiting for one while runnable, over the "
        "phase's wall time; CPU µs/msg =",
        "  its CPU time per message; per CPU-s = messages per second of worker CPU: the rate "
        "with a core to itself;",
        "  batch = messages per batch the agent took (CS_SELECT_BATCH / CS_STATS_BATCH "
        "within CS_SELECT_WITHIN_MS / CS_STATS_WITHIN_MS).",
        "",
    ]
    for t in result["targets"]:
        op = "<=" if t["name"].startswith("p99") else ">="
        verdict = "met" if t["met"] else "MISSED"
        lines.append(f"target {t['name']}: {t['value']:,.1f} ({op} {t['target']:,.0f}) {verdict}")
    return "\n".join(lines)
