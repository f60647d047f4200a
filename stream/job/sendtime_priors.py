"""The daily job's send-time priors: each account's `SlotPrior` fitted
(`selector.sendtime.fit_prior`) to its contacts' recounted slot counts over the history
window, published to the compacted send-time priors topic, where every worker picks up
the newest version (`stream.handlers.sendtime_priors`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selector.sendtime import SendTimeSettings, fit_prior
from selector.sendtime.clock import DAY
from selector.sendtime.counts import ContactSlots
from stream.handlers.sendtime_priors import PRIORS_TOPIC, PublishedPrior, encode_prior
from stream.job import cut as job_io
from stream.job.sendtime_recount import SlotReconciliation
from stream.settings import Settings


def fitted(
    account_id: str,
    settings: SendTimeSettings,
    contacts: Sequence[ContactSlots],
    now: float,
    version: int,
) -> PublishedPrior | None:
    """The account's prior from its contacts' counts in the window counted today; None
    without any contact sent to."""
    cells, today = settings.cells, int(now // DAY)
    windows = [c.window(cells, settings.history, today) for c in contacts]
    if not windows:
        return None
    sends = np.stack([w[0] for w in windows])
    responses = np.stack([w[1] for w in windows])
    if not sends.any():
        return None
    period = settings.slots if settings.split_weekends else None
    prior = fit_prior(sends, responses, period=period)
    return PublishedPrior(account_id, version, now, settings.slots, settings.split_weekends, prior)


def fitted_priors(found: SlotReconciliation, now: float, version: int) -> list[PublishedPrior]:
    out = []
    for account, (settings, contacts) in sorted(found.recounted.items()):
        prior = fitted(account, settings, contacts, now, version)
        if prior is not None:
            out.append(prior)
    return out


def publish(settings: Settings, priors: Sequence[PublishedPrior]) -> int:
    """Publish the priors, keyed by account; returns how many."""
    bodies = [(p.account_id.encode(), encode_prior(p)) for p in priors]
    return job_io.publish(settings, settings.topic(PRIORS_TOPIC), bodies)
