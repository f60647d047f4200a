"""The live report benchmark's synthetic topics (`bench.report_bench`), in memory.

1,000 accounts with 10 creatives and 2 campaigns each, 1,000,000 contacts, 14 days. Per
selection response (80% automated over three methods, 20% control) a send naming it,
except for 1% never sent; clicks on 12% of sends and conversions on 25% of clicks, 90%
of them naming their send and 10% left to be found by contact and creative; 0.5% of every
topic re-published (duplicates). In the raw form 0.2% of the values are cut in half
(undecodable). Responses are about 47% of the records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.wire.messages import ClickEvent, ConversionEvent, SelectionResponse, SendEvent

ACCOUNTS, CREATIVES, CAMPAIGNS, CONTACTS = 1000, 10, 2, 1_000_000
METHODS = (
    ("thompson_single_step", "scored"),
    ("thompson_two_step", "scored"),
    ("random", "uniform"),
)
KINDS = ("selection_response", "send", "click", "conversion")
START = 1_700_000_000.0
SPAN = 14 * 86_400.0
RECORDS_PER_RESPONSE = 2.13
Row = tuple[int, str, str, str, str, str, str, str, float, float]


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """One entry per selection response; sends, clicks and conversions follow from flags."""

    account: np.ndarray
    contact: np.ndarray
    creative: np.ndarray
    campaign: np.ndarray
    automated: np.ndarray
    method: np.ndarray
    time: np.ndarray
    sent: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    named: np.ndarray
    seed: int


def workload(total: int, seed: int) -> Workload:
    """About `total` records in all."""
    rng = np.random.default_rng(seed)
    n = int(total / RECORDS_PER_RESPONSE)
    sent = rng.random(n) >= 0.01
    clicked = sent & (rng.random(n) < 0.12)
    return Workload(
        account=rng.integers(0, ACCOUNTS, n),
        contact=rng.integers(0, CONTACTS, n),
        creative=rng.integers(0, CREATIVES, n),
        campaign=rng.integers(0, CAMPAIGNS, n),
        automated=rng.random(n) < 0.8,
        method=rng.integers(0, len(METHODS), n),
        time=START + np.sort(rng.random(n)) * SPAN,
        sent=sent,
        clicked=clicked,
        converted=clicked & (rng.random(n) < 0.25),
        named=rng.random(n) >= 0.10,
        seed=seed,
    )


def _rows(w: Workload) -> Iterator[Row]:
    columns = (w.account, w.contact, w.creative, w.campaign, w.automated, w.method, w.time)
    for i, (a, c, k, g, auto, m, t) in enumerate(zip(*(x.tolist() for x in columns), strict=True)):
        if auto:
            (name, pool), arm, p = METHODS[m], "automated", 0.1 + 0.8 * (i % 7) / 7
        else:
            name, pool, arm, p = "default", "control", "control", 1.0
        yield i, f"acct-{a:04d}", f"camp-{g}", f"contact-{c}", f"cr-{k}", arm, name, pool, p, t


def _with_duplicates(out: dict[str, list[Any]], seed: int) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed + 1)
    for records in out.values():
        records.extend(records[j] for j in rng.integers(0, len(records), len(records) // 200))
    return out


def records_of(w: Workload) -> dict[str, list[Any]]:
    """Decoded records (`stream.wire.messages` values), per kind."""
    out: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    flags = zip(*(x.tolist() for x in (w.sent, w.clicked, w.converted, w.named)), strict=True)
    for (i, acct, camp, who, cr, arm, name, pool, p, t), (sent, click, conv, named) in zip(
        _rows(w), flags, strict=True
    ):
        request = f"req-{i}"
        response = (request, acct, camp, cr, arm, name, pool, "none", p, i, t)
        out["selection_response"].append(SelectionResponse(*response))  # type: ignore[arg-type]
        if not sent:
            continue
        send = f"send-{i}"
        out["send"].append(SendEvent(send, acct, camp, who, cr, t + 1.0, request))
        ref = send if named else None
        if click:
            out["click"].append(ClickEvent(f"click-{i}", acct, who, cr, t + 600.0, ref, camp))
        if conv:
            out["conversion"].append(
                ConversionEvent(f"conv-{i}", acct, who, cr, t + 900.0, 20.0, ref, camp)
            )
    return _with_duplicates(out, w.seed)


_RESPONSE = (
    b'{"schema":"selection_response.v1","status":"ok","request_id":"req-%d","account_id":"%s",'
    b'"campaign_id":"%s","creative_id":"%s","arm":"%s","method":"%s","pool":"%s",'
    b'"reason":"none","propensity":%r,"params_version":%d,"decided_at":%r}'
)
_SEND = (
    b'{"schema":"send.v1","event_id":"send-%d","account_id":"%s","campaign_id":"%s",'
    b'"contact_id":"%s","creative_id":"%s","time":%r,"request_id":"req-%d"}'
)
_CLICK = (
    b'{"schema":"click.v1","event_id":"click-%d","account_id":"%s","contact_id":"%s",'
    b'"creative_id":"%s","time":%r%s,"campaign_id":"%s"}'
)
_CONVERSION = (
    b'{"schema":"conversion.v1","event_id":"conv-%d","account_id":"%s","contact_id":"%s",'
    b'"creative_id":"%s","time":%r,"revenue":20.0%s,"campaign_id":"%s"}'
)


def raw_of(w: Workload) -> list[tuple[str, bytes]]:
    """The same records as JSON bytes, topic after topic, 0.2% of them cut in half."""
    out: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    flags = zip(*(x.tolist() for x in (w.sent, w.clicked, w.converted, w.named)), strict=True)
    for (i, acct, camp, who, cr, arm, name, pool, p, t), (sent, click, conv, named) in zip(
        _rows(w), flags, strict=True
    ):
        a, g, c, k = acct.encode(), camp.encode(), who.encode(), cr.encode()
        decided = (arm.encode(), name.encode(), pool.encode())
        out["selection_response"].append(_RESPONSE % (i, a, g, k, *decided, p, i, t))
        if not sent:
            continue
        out["send"].append(_SEND % (i, a, g, c, k, t + 1.0, i))
        ref = b',"send_event_id":"send-%d"' % i if named else b""
        if click:
            out["click"].append(_CLICK % (i, a, c, k, t + 600.0, ref, g))
        if conv:
            out["conversion"].append(_CONVERSION % (i, a, c, k, t + 900.0, ref, g))
    duplicated = _with_duplicates(out, w.seed)
    items = [(kind, raw) for kind, values in duplicated.items() for raw in values]
    rng = np.random.default_rng(w.seed + 2)
    for j in rng.integers(0, len(items), len(items) // 500).tolist():
        kind, raw = items[j]
        items[j] = (kind, raw[: len(raw) // 2])
    return items
