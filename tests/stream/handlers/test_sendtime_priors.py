"""Fitted send-time priors: the job fits an account's prior to its contacts' counts and
encodes it as `send_time_prior.v1` (valid by its schema); a worker's book keeps the
newest version per account, rejects what does not decode or is not its key's, forgets on
a tombstone, uses a prior only for the layout it was fitted for, and the send-time
service decides with it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson

from selector.sendtime import SendTimeSettings, SlotPrior
from selector.sendtime.clock import DAY
from selector.sendtime.counts import ContactSlots, History
from stream.handlers.sendtime_priors import PriorBook, PublishedPrior, decode_prior, encode_prior
from stream.handlers.sendtime_store import MemorySendTimeStore
from stream.job.sendtime_priors import fitted
from stream.ops.metrics import Metrics
from tests.stream.handlers.test_sendtime import service

SCHEMA = jsonschema.Draft202012Validator(
    json.loads(
        (
            Path(__file__).resolve().parents[3] / "schemas" / "send_time_prior.v1.schema.json"
        ).read_text()
    )
)
NOW = 1_773_000_000.0
SETTINGS = SendTimeSettings()


def contacts(n: int, seed: int) -> list[ContactSlots]:
    """Morning people (slot 4) and evening people (slot 9), 30 sends each over a month."""
    rng = np.random.default_rng(seed)
    today, history = int(NOW // DAY), History()
    out = []
    for i in range(n):
        best = 4 if i % 3 else 9
        cells = rng.integers(4, 11, size=30)
        rate = np.where(cells == best, 0.5, 0.05)
        responses = rng.random(30) < rate
        bucket = np.full(30, history.bucket(today - 3), dtype=np.int64)
        keys = np.unique(cells)
        sends = np.array([(cells == c).sum() for c in keys], dtype=np.int64)
        resp = np.array([(responses & (cells == c)).sum() for c in keys], dtype=np.int64)
        out.append(ContactSlots(bucket[: keys.size], keys.astype(np.int64), sends, resp, (), today))
    return out


def test_the_fitted_prior_finds_the_routines_and_encodes_to_a_valid_message() -> None:
    published = fitted("acme", SETTINGS, contacts(600, 1), NOW, 5)
    assert published is not None and published.prior.cells == 12
    prior = published.prior
    assert prior.routines >= 2 and prior.contacts == 600
    rates = prior.alpha / (prior.alpha + prior.beta)
    assert {int(np.argmax(r)) for r in rates[prior.weight > 0.1]} >= {4, 9}
    raw = encode_prior(published)
    SCHEMA.validate(orjson.loads(raw))
    back = decode_prior(raw)
    assert isinstance(back, PublishedPrior) and back.version == 5
    assert np.allclose(back.prior.alpha, prior.alpha) and np.allclose(
        back.prior.weight, prior.weight
    )
    assert fitted("acme", SETTINGS, [], NOW, 5) is None


def message(version: int, account: str = "acme", slots: int = 12) -> bytes:
    return encode_prior(
        PublishedPrior(account, version, NOW, slots, False, SlotPrior.uniform(slots))
    )


def test_the_book_keeps_the_newest_usable_prior_per_account() -> None:
    loads: list[str] = []
    book = PriorBook(loads.append)
    assert book.apply(b"acme", message(2)) == "loaded"
    first = book.for_account("acme", SETTINGS)
    assert first is not None and book.for_account("acme", SETTINGS) is first
    assert book.apply(b"acme", message(2)) == "older"  # the topic read again
    assert book.apply(b"acme", message(1)) == "older"
    assert book.apply(b"other", message(3)) == "rejected"  # not its key's account
    bad = orjson.loads(message(9))
    bad["prior"]["weight"] = [0.5]
    assert book.apply(b"acme", orjson.dumps(bad)) == "rejected"
    assert book.apply(b"acme", b"{not json") == "rejected"
    assert book.apply(None, message(9)) == "rejected"
    assert book.for_account("acme", SETTINGS) is first  # the prior in use stays
    assert book.apply(b"acme", message(3, slots=24)) == "loaded"
    assert book.for_account("acme", SETTINGS) is None  # fitted for 24 slots, not 12
    assert book.for_account("acme", SendTimeSettings(slots=24)) is not None
    assert book.apply(b"acme", None) == "loaded" and len(book) == 0  # a tombstone
    assert loads.count("rejected") == 4 and loads.count("older") == 2


async def test_the_service_decides_with_the_published_prior() -> None:
    book = PriorBook()
    published = fitted("acme", SETTINGS, contacts(600, 2), NOW, 7)
    assert published is not None
    svc = service(
        MemorySendTimeStore(),
        Metrics(),
        prior_for=lambda a, s: book.for_account(a, s) or SlotPrior.uniform(s.cells),
    )
    assert svc.decider("acme").prior.routines == 1  # nothing published yet: uniform
    book.apply(b"acme", encode_prior(published))
    in_use = svc.decider("acme").prior
    assert in_use.routines == published.prior.routines >= 2
    assert svc.decider("acme").prior is in_use  # kept while nothing new is published
