"""The pure core of creative selection: domain, statistics, policies, decisions, simulator.

Imports only the standard library and numpy. Randomness is a `numpy.random.Generator`
passed in; time is passed in.
"""

from selector.batch import BatchDecision, Decision, Request, RequestBatch
from selector.decide import Selector
from selector.domain import (
    Account,
    BetaPrior,
    Campaign,
    ConfigError,
    Creative,
    MethodShare,
    Offer,
    SelectionSettings,
    account_from_dict,
    settings_from_dict,
)
from selector.stats import AccountStats, Counts, Event, fold
from selector.view import UnknownCampaign

__all__ = [
    "Account",
    "AccountStats",
    "BatchDecision",
    "BetaPrior",
    "Campaign",
    "ConfigError",
    "Counts",
    "Creative",
    "Decision",
    "Event",
    "MethodShare",
    "Offer",
    "Request",
    "RequestBatch",
    "SelectionSettings",
    "Selector",
    "UnknownCampaign",
    "account_from_dict",
    "fold",
    "settings_from_dict",
]
