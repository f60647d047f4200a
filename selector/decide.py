"""The request -> decision function (DESIGN.md section 2), one request or a batch.

Order of a decision: the campaign's mode; the control split (a stable hash of campaign
and contact, so a contact never changes arm); method routing by `traffic_pct` (a second,
independent stable hash, so reports can attribute outcomes to methods); then the method's
policy, which applies eligibility, cooldowns, the learning pool and the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from selector.batch import (
    ARM,
    DECIDER,
    POOL,
    REASON,
    BatchDecision,
    DecidedBy,
    Decision,
    Request,
    RequestBatch,
)
from selector.domain import Account
from selector.hashing import route_units, split_units
from selector.model.artifact import ContextualModel
from selector.model.scoring import DEFAULT_SAMPLES
from selector.policies import POLICIES, Policy, PolicyContext
from selector.sampling import BetaSampler
from selector.single import SingleDecider
from selector.stats import AccountStats
from selector.view import AccountView, BoolArray, IntArray, compile_account, posterior


class Selector:
    """Decides for one account's requests. Holds the account's compiled arrays and the
    policies' caches (score tables and distributions per posterior and eligibility mask);
    the stats, the random generator and the cooldown state are passed in with each call,
    so the same inputs always give the same decisions.

    `sampler` and `propensity_samples` are accepted for existing callers and unused:
    Thompson propensities are computed exactly (`selector.winprob`), not from draws.

    Examples
    --------
    >>> import numpy as np
    >>> from selector import Selector, Request, AccountStats, account_from_dict
    >>> account = account_from_dict({
    ...     "account_id": "acme",
    ...     "offers": [{"offer_id": "o1", "payout": 30}],
    ...     "creatives": [{"creative_id": "a", "offer_id": "o1"},
    ...                   {"creative_id": "b", "offer_id": "o1"}],
    ...     "campaigns": [{"campaign_id": "spring", "default_creative_id": "a",
    ...                    "automated_percent": 100}],
    ... })
    >>> d = Selector(account).decide(AccountStats(), Request("spring", "c-1", 0.0),
    ...                               np.random.default_rng(7))
    >>> (d.arm, d.pool, d.propensity)
    ('automated', 'learning', 0.5)
    """

    def __init__(
        self,
        account: Account,
        *,
        sampler: BetaSampler | None = None,
        propensity_samples: int = 1024,
        model_samples: int = DEFAULT_SAMPLES,
    ) -> None:
        self.account = account
        self.view: AccountView = compile_account(account)
        del sampler, propensity_samples
        self.model_samples = model_samples
        self._policies: dict[DecidedBy, Policy] = {name: cls() for name, cls in POLICIES.items()}
        self._single = SingleDecider(self.view, self._policies)

    def decide(
        self,
        stats: AccountStats,
        request: Request,
        rng: np.random.Generator,
        rotation: Mapping[str, int] | None = None,
        model: ContextualModel | None = None,
    ) -> Decision:
        """Decide one request: the batch path's decision without building a batch, when
        it can (see `selector.single`; never for the `model` method), else a batch of one."""
        decision = self._single.decide(stats, request, rng)
        if decision is not None:
            return decision
        batch = RequestBatch.from_requests([request])
        return self.decide_batch(stats, batch, rng, rotation, model)[0]

    def decide_each(
        self, stats: AccountStats, requests: Sequence[Request], rng: np.random.Generator
    ) -> list[Decision] | None:
        """Each request on the scalar path (`selector.single`), the same law and the same
        exact propensities as `decide_batch`, without its fixed cost per call (most of a
        batch of a few requests); None when one of them needs the batch path (a manual
        campaign, the `model` method, nothing eligible): decide them all there then."""
        out: list[Decision] = []
        single = self._single
        for request in requests:
            decision = single.decide(stats, request, rng)
            if decision is None:
                return None
            out.append(decision)
        return out

    def decide_batch(
        self,
        stats: AccountStats,
        batch: RequestBatch,
        rng: np.random.Generator,
        rotation: Mapping[str, int] | None = None,
        model: ContextualModel | None = None,
    ) -> BatchDecision:
        """Decide every request of `batch`; `rotation` holds round-robin positions and the
        updated positions come back in the result; `model` is the account's promoted
        contextual model, if any. Raises `UnknownCampaign`."""
        view = self.view
        n = len(batch)
        ctx = self.context(stats, batch, rotation, model)
        campaign = ctx.campaign
        creative = view.default_creative[campaign].copy()
        arm = np.full(n, ARM["control"], dtype=np.uint8)
        method = np.full(n, DECIDER["default"], dtype=np.uint8)
        pool = np.full(n, POOL["control"], dtype=np.uint8)
        reason = np.full(n, REASON["none"], dtype=np.uint8)
        propensity = np.ones(n)

        manual, automated, routes = self._arms_and_routes(batch, campaign)
        for name, rows in routes:
            choice = self._policies[name].choose(ctx, rows, rng)
            creative[rows] = choice.creative
            method[rows] = DECIDER[name]
            pool[rows] = choice.pool
            reason[rows] = choice.reason
            propensity[rows] = choice.propensity
        arm[automated] = ARM["automated"]
        arm[manual] = ARM["manual"]
        return BatchDecision(
            creative_ids=view.creative_ids,
            creative=creative,
            arm=arm,
            method=method,
            pool=pool,
            reason=reason,
            propensity=propensity,
            stats_version=stats.version,
            rotation=ctx.rotation,
            model_version=model.version if model is not None else None,
        )

    def context(
        self,
        stats: AccountStats,
        batch: RequestBatch,
        rotation: Mapping[str, int] | None = None,
        model: ContextualModel | None = None,
    ) -> PolicyContext:
        """What the policies read for this batch (raises `UnknownCampaign`)."""
        now = float(batch.times.max()) if len(batch) else 0.0
        return PolicyContext(
            view=self.view,
            posterior=posterior(self.view, stats, now),
            campaign=self.view.campaign_rows(batch.campaign_ids),
            cooling=self._cooling(batch),
            rotation=dict(rotation or {}),
            times=batch.times,
            profiles=batch.profiles,
            model=model,
            model_samples=self.model_samples,
        )

    def distribution(
        self,
        stats: AccountStats,
        request: Request,
        rng: np.random.Generator,
        rotation: Mapping[str, int] | None = None,
        model: ContextualModel | None = None,
    ) -> dict[str, float]:
        """P(creative) for one request under the policy it is routed to: the full vector
        behind a decision's propensity (exact for Thompson sampling too)."""
        batch = RequestBatch.from_requests([request])
        ctx = self.context(stats, batch, rotation, model)
        _, _, routes = self._arms_and_routes(batch, ctx.campaign)
        default = self.view.creative_ids[int(self.view.default_creative[ctx.campaign[0]])]
        if not routes:
            return {default: 1.0}
        name, rows = routes[0]
        _, masks = self._policies[name].eligible(ctx, rows)
        eligible = masks.rows()[0]
        if not eligible.any():
            return {default: 1.0}
        dist = self._policies[name].distribution(ctx, 0, eligible, rng)
        return {self.view.creative_ids[i]: float(dist[i]) for i in np.flatnonzero(dist)}

    def _arms_and_routes(
        self, batch: RequestBatch, campaign: IntArray
    ) -> tuple[BoolArray, BoolArray, list[tuple[DecidedBy, IntArray]]]:
        view = self.view
        manual = view.manual_campaign[campaign]
        automated = ~manual & (split_units(batch.keys) * 100.0 < view.automated_pct[campaign])
        return manual, automated, self._route(batch, automated, manual)

    def _route(
        self, batch: RequestBatch, automated: BoolArray, manual: BoolArray
    ) -> list[tuple[DecidedBy, IntArray]]:
        routes: list[tuple[DecidedBy, IntArray]] = []
        if manual.any():
            routes.append(("manual", np.flatnonzero(manual)))
        auto_rows = np.flatnonzero(automated)
        if auto_rows.size == 0:
            return routes
        methods = self.view.methods
        if len(methods) == 1:
            return [*routes, (methods[0], auto_rows)]
        units = route_units(batch.keys[auto_rows]) * 100.0
        which = np.searchsorted(self.view.method_cumulative_pct, units, side="right")
        np.minimum(which, len(methods) - 1, out=which)
        for i, name in enumerate(methods):
            rows = auto_rows[which == i]
            if rows.size:
                routes.append((name, rows))
        return routes

    def _cooling(self, batch: RequestBatch) -> BoolArray | None:
        """(N, K) True where the contact received the creative within the cooldown."""
        if batch.last_sent is None:
            return None
        cooldown = self.view.settings.cooldown_seconds
        index = self.view.creative_index
        cooling = np.zeros((len(batch), len(index)), dtype=bool)
        for i, (sent, now) in enumerate(zip(batch.last_sent, batch.times, strict=True)):
            for creative_id, when in sent.items():
                j = index.get(creative_id)
                if j is not None and now - when < cooldown:
                    cooling[i, j] = True
        return cooling
