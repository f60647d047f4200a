"""Per-contact predictions from the running system: the account's promoted model (the
models topic), its catalog (the catalog topics) and the contact's profile (Redis), turned
into each creative's click probability and expected revenue per send with a central
interval (`selector.model.predict`). What `creative-select predict ACCOUNT CONTACT`
prints and `SelectionClient.predict` returns.

A contact without a stored profile (never sent to, expired, or a value that does not
decode) is predicted as a contact without history, and the answer says so. An account
without a catalog or without a promoted model is an error (`PredictionError`), with what
to do about it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from selector.domain import Account
from selector.model.artifact import ContextualModel, from_bytes
from selector.model.predict import (
    custom_text,
    describe,
    history,
    predictions,
    ranked,
    to_plain,
)
from selector.model.profile import EMPTY
from selector.model.record import decode, records
from selector.model.scoring import Prediction
from stream.adapters.kafka_reader import read_latest
from stream.adapters.profile_store import RedisProfiles
from stream.adapters.redis_store import redis_client
from stream.handlers.catalog import AccountCatalog
from stream.handlers.models import MODELS_TOPIC
from stream.job.cut import read_catalog
from stream.settings import Settings

PROFILE_STATES = ("stored", "none", "unreadable")


class PredictionError(Exception):
    """No prediction can be made: `reason` is `no_catalog`, `invalid_catalog`,
    `no_model` or `no_profile_store`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ContactPredictions:
    """One contact's predictions, best first by the account's goal; `profile`: whether
    its profile was `stored`, `none` (predicted as a contact without history) or
    `unreadable` (likewise, the stored value did not decode)."""

    account_id: str
    contact_id: str
    model_version: int
    trained_at: float
    goal: str
    level: float
    at: float
    profile: str
    history: str
    rows: tuple[Prediction, ...]

    def text(self) -> str:
        """The terminal form: a header, the profile, one line per creative."""
        trained = datetime.fromtimestamp(self.trained_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = (
            f"{self.account_id} / {self.contact_id}: model v{self.model_version} (trained "
            f"{trained}), goal {self.goal}, {100 * self.level:.0f}% intervals, per send"
        )
        if self.profile == "stored":
            seen = f"profile: {self.history}"
        else:
            why = "no stored profile" if self.profile == "none" else "stored profile unreadable"
            seen = f"{why}: predicted as a contact without history"
        return "\n".join([head, seen, *(describe(p) for p in self.rows)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "contact_id": self.contact_id,
            "model_version": self.model_version,
            "trained_at": self.trained_at,
            "goal": self.goal,
            "level": self.level,
            "at": self.at,
            "profile": self.profile,
            "predictions": [to_plain(p) for p in self.rows],
        }


def contact_predictions(
    catalog: AccountCatalog | None,
    model: ContextualModel | None,
    blob: bytes | None,
    account_id: str,
    contact_id: str,
    at: float,
    *,
    samples: int = 2000,
    level: float = 0.8,
    seed: int | None = None,
    every_creative: bool = False,
) -> ContactPredictions:
    """The predictions from what was read (no I/O): the catalog, the promoted model and
    the contact's stored profile (None: none)."""
    account = _account(catalog, account_id)
    if model is None:
        raise PredictionError(
            "no_model",
            f"account {account_id!r} has no promoted model yet (its model traffic gets "
            "Thompson sampling, reason model_unavailable); run `creative-select train`",
        )
    profile = decode(blob) if blob else EMPTY
    state = "none" if not blob else "unreadable" if isinstance(profile, str) else "stored"
    recs = records([blob if state == "stored" else None])[0]
    rng = np.random.default_rng(seed)
    (rows,) = predictions(
        account, model, recs, np.array([at]), rng, samples, level, not every_creative
    )
    told = ""
    if not isinstance(profile, str):
        told = history(profile, at)
        if blob and at - profile.last_event > model.spec.retention_seconds:
            told += " (all older than the retention: predicted without them)"
        custom = custom_text(account.settings.custom_fields, profile.custom)
        told += f"; {custom}" if custom else ""
    return ContactPredictions(
        account_id, contact_id, model.version, model.trained_at, account.settings.goal,
        level, at, state, told, tuple(ranked(rows, account.settings.goal)),
    )  # fmt: skip


def _account(catalog: AccountCatalog | None, account_id: str) -> Account:
    if catalog is None:
        raise PredictionError("no_catalog", f"account {account_id!r} has no catalog")
    if catalog.account is None:
        raise PredictionError("invalid_catalog", f"account {account_id!r}: {catalog.error}")
    return catalog.account


def read_model(settings: Settings, account_id: str) -> ContextualModel | None:
    """The account's model in use: the latest on the models topic (None if none loads)."""
    latest = read_latest(settings, settings.topic(MODELS_TOPIC), settings.partitions)
    raw = latest.get(account_id.encode())
    model = from_bytes(raw) if raw is not None else None
    return model if isinstance(model, ContextualModel) else None


async def read_profile(settings: Settings, account_id: str, contact_id: str) -> bytes | None:
    """The contact's stored profile value (None: none)."""
    if settings.cooldown_store == "memory":
        raise PredictionError(
            "no_profile_store",
            "CS_COOLDOWN_STORE=memory: profiles live inside the worker process; "
            "predictions need the Redis profile store",
        )
    client = redis_client(settings)
    try:
        (blob,) = await RedisProfiles(client, settings.redis_key_prefix).read_profiles(
            [(account_id, contact_id)]
        )
    finally:
        await client.aclose()
    return blob


def predict_contact(
    settings: Settings,
    account_id: str,
    contact_id: str,
    *,
    at: float | None = None,
    clock: Callable[[], float] = time.time,
    **options: Any,
) -> ContactPredictions:
    """Read the catalog, the model and the profile, and predict (at `at`, default now);
    `options` as for `contact_predictions`. Blocking: it reads whole topics."""
    now = clock()
    catalog = read_catalog(settings, now).get(account_id)
    _account(catalog, account_id)  # fail before reading the rest
    model = read_model(settings, account_id)
    blob = asyncio.run(read_profile(settings, account_id, contact_id)) if model else None
    when = now if at is None else at
    return contact_predictions(catalog, model, blob, account_id, contact_id, when, **options)
