"""Domain objects: offers, creatives, campaigns and an account's selection settings.

Every value is immutable and validates itself on construction, so a bad catalog fails
where it is loaded, with a message that names the field and says what would be valid,
rather than deep inside a decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from selector.custom_fields import CustomField, check_fields, fields_from_dicts
from selector.errors import ConfigError as ConfigError

PayoutType = Literal["cpa", "cto"]
CreativeType = Literal["automated", "manual"]
CreativeStatus = Literal["active", "paused", "archived"]
CampaignMode = Literal["automated", "manual"]
Rotation = Literal["random", "round_robin"]
Goal = Literal["clicks", "revenue"]
Method = Literal["thompson_single_step", "thompson_two_step", "random", "manual", "model"]
LearningMode = Literal["compete", "floor", "cap", "pool"]

METHODS: tuple[Method, ...] = get_args(Method)
DAY_SECONDS = 86_400.0


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(path, message)


def _one_of(value: object, allowed: tuple[str, ...], path: str) -> None:
    _require(value in allowed, path, f"must be one of {', '.join(allowed)}; got {value!r}")


def _finite(value: float, path: str) -> None:
    _require(
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        path,
        f"must be a finite number; got {value!r}",
    )


def _identifier(value: object, path: str) -> None:
    _require(isinstance(value, str) and value != "", path, "must be a non-empty string")


@dataclass(frozen=True, slots=True)
class Offer:
    """What the account is paid for: per conversion (`cpa`) or per click (`cto`)."""

    offer_id: str
    payout: float
    payout_type: PayoutType = "cpa"

    def __post_init__(self) -> None:
        _identifier(self.offer_id, "offer.offer_id")
        path = f"offer {self.offer_id}"
        _finite(self.payout, f"{path}.payout")
        _require(self.payout >= 0, f"{path}.payout", f"must be >= 0; got {self.payout}")
        _one_of(self.payout_type, get_args(PayoutType), f"{path}.payout_type")


@dataclass(frozen=True, slots=True)
class Creative:
    """A message variant; only active `automated` creatives are candidates for ML selection."""

    creative_id: str
    offer_id: str
    type: CreativeType = "automated"
    status: CreativeStatus = "active"

    def __post_init__(self) -> None:
        _identifier(self.creative_id, "creative.creative_id")
        path = f"creative {self.creative_id}"
        _identifier(self.offer_id, f"{path}.offer_id")
        _one_of(self.type, get_args(CreativeType), f"{path}.type")
        _one_of(self.status, get_args(CreativeStatus), f"{path}.status")

    @property
    def is_candidate(self) -> bool:
        return self.type == "automated" and self.status == "active"


@dataclass(frozen=True, slots=True)
class Campaign:
    """A send program; `automated_percent` of its contacts get ML selection, the rest control."""

    campaign_id: str
    default_creative_id: str
    mode: CampaignMode = "automated"
    automated_percent: float = 80.0
    manual_creative_ids: tuple[str, ...] = ()
    rotation: Rotation = "random"

    def __post_init__(self) -> None:
        _identifier(self.campaign_id, "campaign.campaign_id")
        path = f"campaign {self.campaign_id}"
        _identifier(self.default_creative_id, f"{path}.default_creative_id")
        _one_of(self.mode, get_args(CampaignMode), f"{path}.mode")
        _finite(self.automated_percent, f"{path}.automated_percent")
        _require(
            0.0 <= self.automated_percent <= 100.0,
            f"{path}.automated_percent",
            f"must be between 0 and 100; got {self.automated_percent}",
        )
        _one_of(self.rotation, get_args(Rotation), f"{path}.rotation")
        _require(
            len(set(self.manual_creative_ids)) == len(self.manual_creative_ids),
            f"{path}.manual_creative_ids",
            "lists a creative more than once",
        )
        _require(
            self.mode != "manual" or len(self.manual_creative_ids) > 0,
            f"{path}.manual_creative_ids",
            "a manual campaign needs at least one creative to rotate",
        )


@dataclass(frozen=True, slots=True)
class MethodShare:
    """One selection method and the percentage of automated traffic routed to it."""

    method: Method
    traffic_pct: float

    def __post_init__(self) -> None:
        _one_of(self.method, METHODS, "settings.methods[].method")
        _finite(self.traffic_pct, f"settings.methods.{self.method}.traffic_pct")
        _require(
            0.0 <= self.traffic_pct <= 100.0,
            f"settings.methods.{self.method}.traffic_pct",
            f"must be between 0 and 100; got {self.traffic_pct}",
        )


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """Pseudo-counts added to every Beta posterior (1, 1 is the uniform prior)."""

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            _finite(value, f"settings.prior.{name}")
            _require(value > 0, f"settings.prior.{name}", f"must be > 0; got {value}")


def _default_methods() -> tuple[MethodShare, ...]:
    return (MethodShare("thompson_single_step", 100.0),)


@dataclass(frozen=True, slots=True)
class SelectionSettings:
    """An account's `automated_selection_settings`."""

    goal: Goal = "revenue"
    cooldown_seconds: float = 5 * DAY_SECONDS
    methods: tuple[MethodShare, ...] = field(default_factory=_default_methods)
    learning_threshold: int = 3000
    learning_pct: float = 10.0
    learning_mode: LearningMode = "compete"
    payout_floor: float = 20.0
    prior: BetaPrior = field(default_factory=BetaPrior)
    half_life_seconds: float | None = None
    exploration_floor_pct: float = 0.0
    model_training_interval_seconds: float = DAY_SECONDS
    # contact attributes the `model` method uses as features (`selector.custom_fields`)
    custom_fields: tuple[CustomField, ...] = ()

    def __post_init__(self) -> None:
        _one_of(self.goal, get_args(Goal), "settings.goal")
        _finite(self.cooldown_seconds, "settings.cooldown_seconds")
        _require(self.cooldown_seconds >= 0, "settings.cooldown_seconds", "must be >= 0")
        self._check_methods()
        _require(
            isinstance(self.learning_threshold, int) and self.learning_threshold >= 0,
            "settings.learning_threshold",
            f"must be a whole number of sends >= 0; got {self.learning_threshold!r}",
        )
        _one_of(self.learning_mode, get_args(LearningMode), "settings.learning_mode")
        for name in ("learning_pct", "exploration_floor_pct"):
            value = getattr(self, name)
            _finite(value, f"settings.{name}")
            _require(0 <= value <= 100, f"settings.{name}", f"must be 0-100; got {value}")
        _finite(self.payout_floor, "settings.payout_floor")
        _require(self.payout_floor >= 0, "settings.payout_floor", "must be >= 0")
        if self.half_life_seconds is not None:
            _finite(self.half_life_seconds, "settings.half_life_seconds")
            _require(self.half_life_seconds > 0, "settings.half_life_seconds", "must be > 0")
        _finite(self.model_training_interval_seconds, "settings.model_training_interval_seconds")
        check_fields(self.custom_fields)

    def _check_methods(self) -> None:
        _require(len(self.methods) > 0, "settings.methods", "needs at least one method")
        names = [m.method for m in self.methods]
        _require(len(set(names)) == len(names), "settings.methods", "lists a method twice")
        total = sum(m.traffic_pct for m in self.methods)
        shares = ", ".join(f"{m.method}={m.traffic_pct:g}" for m in self.methods)
        _require(
            abs(total - 100.0) < 1e-6,
            "settings.methods",
            f"traffic_pct must sum to 100; got {total:g} ({shares})",
        )


@dataclass(frozen=True, slots=True)
class Account:
    """One account's catalog and settings: everything a decision needs besides the stats."""

    account_id: str
    settings: SelectionSettings
    offers: tuple[Offer, ...]
    creatives: tuple[Creative, ...]
    campaigns: tuple[Campaign, ...] = ()

    def __post_init__(self) -> None:
        _identifier(self.account_id, "account_id")
        offer_ids = _unique_ids([o.offer_id for o in self.offers], "offers")
        creative_ids = _unique_ids([c.creative_id for c in self.creatives], "creatives")
        _unique_ids([c.campaign_id for c in self.campaigns], "campaigns")
        for creative in self.creatives:
            _require(
                creative.offer_id in offer_ids,
                f"creative {creative.creative_id}.offer_id",
                f"offer {creative.offer_id!r} is not in this account",
            )
        for campaign in self.campaigns:
            path = f"campaign {campaign.campaign_id}"
            _require(
                campaign.default_creative_id in creative_ids,
                f"{path}.default_creative_id",
                f"creative {campaign.default_creative_id!r} is not in this account",
            )
            for cid in campaign.manual_creative_ids:
                _require(
                    cid in creative_ids,
                    f"{path}.manual_creative_ids",
                    f"creative {cid!r} is not in this account",
                )

    def campaign(self, campaign_id: str) -> Campaign | None:
        for campaign in self.campaigns:
            if campaign.campaign_id == campaign_id:
                return campaign
        return None


def _unique_ids(ids: Sequence[str], path: str) -> set[str]:
    seen: set[str] = set()
    for item in ids:
        _require(item not in seen, path, f"id {item!r} appears more than once")
        seen.add(item)
    return seen


# --- construction from plain data (JSON/YAML documents) -------------------------------


def _take(data: Mapping[str, Any], path: str, allowed: set[str]) -> dict[str, Any]:
    _require(isinstance(data, Mapping), path, f"must be an object; got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    _require(not unknown, path, f"unknown field(s) {', '.join(unknown)}")
    return dict(data)


def settings_from_dict(data: Mapping[str, Any]) -> SelectionSettings:
    fields = set(SelectionSettings.__dataclass_fields__)
    values = _take(data, "settings", fields)
    if "methods" in values:
        methods = values["methods"]
        if isinstance(methods, Mapping):
            methods = [{"method": k, "traffic_pct": v} for k, v in methods.items()]
        _require(isinstance(methods, list), "settings.methods", "must be a list or a mapping")
        values["methods"] = tuple(
            MethodShare(**_take(m, "settings.methods[]", {"method", "traffic_pct"}))
            for m in methods
        )
    if "prior" in values:
        values["prior"] = BetaPrior(**_take(values["prior"], "settings.prior", {"alpha", "beta"}))
    if "custom_fields" in values:
        declared = values["custom_fields"]
        _require(isinstance(declared, list | tuple), "settings.custom_fields", "must be a list")
        values["custom_fields"] = fields_from_dicts(declared)
    return SelectionSettings(**values)


def _build(cls: Any, data: Mapping[str, Any], path: str) -> Any:
    values = _take(data, path, set(cls.__dataclass_fields__))
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(path, str(exc).split(") ", 1)[-1]) from None


def account_from_dict(data: Mapping[str, Any]) -> Account:
    """Build and validate an `Account` from a JSON/YAML-shaped document."""
    values = _take(data, "account", {"account_id", "settings", "offers", "creatives", "campaigns"})
    _require("account_id" in values, "account.account_id", "is required")
    campaigns = []
    for raw in values.get("campaigns", []):
        item = dict(raw) if isinstance(raw, Mapping) else raw
        if isinstance(item, dict) and "manual_creative_ids" in item:
            item["manual_creative_ids"] = tuple(item["manual_creative_ids"])
        campaigns.append(_build(Campaign, item, "campaign"))
    return Account(
        account_id=values["account_id"],
        settings=settings_from_dict(values.get("settings", {})),
        offers=tuple(_build(Offer, o, "offer") for o in values.get("offers", [])),
        creatives=tuple(_build(Creative, c, "creative") for c in values.get("creatives", [])),
        campaigns=tuple(campaigns),
    )
