"""Training the contextual models: per account, a candidate from the matured sends of the
event topics, the promotion gate against the model in use, and the promoted ones for the
models topic. The reading and publishing are `stream.job.train_io`'s; this is the part
that decides, testable without Kafka.

An account is trained when its catalog routes traffic to `model` (or is named with
`accounts`), its model in use is at least `model_training_interval_seconds` old (or
there is none, or `force`), and it has at least `min_sends` matured sends: sends older
than `attribution_seconds` at `now`, whose clicks and conversions have all arrived. The
examples are point in time (`selector.model.examples`: each send sees the contact's
profile as it stood before it). The candidate is version (in use + 1), and it is
published only if the gate (`selector.model.metrics.gate`) prefers it to the model in
use on the candidate's held-out contacts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from selector.domain import Account
from selector.model.artifact import ContextualModel
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.metrics import Evaluation, gate
from selector.model.train import TrainingConfig, evaluate_model, train

DAY = 86_400.0
Slots = tuple[float | None, ...]
# why an account got no candidate, beside the gate's reasons
SKIPS = ("not_due", "too_few_sends", "no_catalog")


@dataclass(frozen=True, slots=True)
class TrainOptions:
    accounts: tuple[str, ...] = ()  # train these (whatever their methods); empty: model's
    min_sends: int = 1000
    attribution_seconds: float = 3 * DAY
    retention_seconds: float = 180 * DAY
    force: bool = False  # train even if the model in use is younger than the interval
    report_only: bool = False  # train and gate, publish nothing
    config: TrainingConfig = field(default_factory=TrainingConfig)


@dataclass(frozen=True, slots=True)
class AccountResult:
    """One account's training: the gate's reason (or why it was skipped), the versions,
    the matured sends, the candidate's and the current model's held-out evaluations, and
    the candidate's metrics (importances, training size, fit)."""

    account_id: str
    reason: str
    version: int | None = None
    current_version: int | None = None
    sends: int = 0
    seconds: float = 0.0
    candidate: Evaluation | None = None
    current: Evaluation | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    published: bool = False

    @property
    def promoted(self) -> bool:
        return self.reason in ("first_model", "better")


def wanted(account: Account, options: TrainOptions) -> bool:
    if options.accounts:
        return account.account_id in options.accounts
    return any(m.method == "model" and m.traffic_pct > 0 for m in account.settings.methods)


def due(account: Account, current: ContextualModel | None, now: float, force: bool) -> bool:
    if force or current is None:
        return True
    return now - current.trained_at >= account.settings.model_training_interval_seconds


def train_account(
    account: Account,
    events: Sequence[OutcomeEvent],
    current: ContextualModel | None,
    now: float,
    options: TrainOptions,
    custom: Mapping[str, Slots] | None = None,
) -> tuple[AccountResult, ContextualModel | None]:
    """The account's result, and the model to publish (None: keep the one in use);
    `custom`: each contact's stored custom-field slots (`settings.custom_fields`)."""
    started = time.process_time()
    base = AccountResult(
        account.account_id, "not_due", current_version=current.version if current else None
    )
    if not due(account, current, now, options.force):
        return base, None
    fields = account.settings.custom_fields
    examples = examples_from_events(
        account, events, fields, options.retention_seconds, options.attribution_seconds, now,
        custom,
    )  # fmt: skip
    if len(examples) < options.min_sends:
        return _result(base, "too_few_sends", sends=len(examples)), None
    version = (current.version if current is not None else 0) + 1
    candidate, holdout = train(
        account, examples, fields, options.retention_seconds, version, now, options.config
    )
    mine = evaluate_model(candidate, account, holdout)
    theirs = evaluate_model(current, account, holdout) if current is not None else None
    verdict = gate(mine, theirs)
    result = _result(
        base,
        verdict.reason,
        version=version,
        sends=len(examples),
        seconds=time.process_time() - started,
        candidate=mine,
        current=theirs,
        metrics=dict(candidate.metrics),
    )
    return result, candidate if verdict.promote else None


def _result(base: AccountResult, reason: str, **changes: Any) -> AccountResult:
    return replace(base, reason=reason, **changes)


def train_all(
    catalogs: Mapping[str, Account | None],
    events: Mapping[str, Sequence[OutcomeEvent]],
    current: Mapping[str, ContextualModel],
    now: float,
    options: TrainOptions,
    custom: Mapping[str, Mapping[str, Slots]] | None = None,
) -> tuple[list[AccountResult], list[ContextualModel]]:
    """Every wanted account's result, and the models to publish; `custom`: per account,
    its contacts' stored custom-field slots."""
    results: list[AccountResult] = []
    publish: list[ContextualModel] = []
    for account_id in sorted(set(catalogs) | set(options.accounts)):
        account = catalogs.get(account_id)
        if account is None:
            if account_id in options.accounts:
                results.append(AccountResult(account_id, "no_catalog"))
            continue
        if not wanted(account, options):
            continue
        result, model = train_account(
            account, events.get(account_id, ()), current.get(account_id), now, options,
            (custom or {}).get(account_id),
        )  # fmt: skip
        results.append(result)
        if model is not None:
            publish.append(model)
    return results, publish
