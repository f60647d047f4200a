"""Every topic the service reads or writes; keys and values are raw bytes and our codec
decodes them (see schemas/topics.yaml for the contract of each)."""

from __future__ import annotations

from typing import Any

from stream.worker.app import app, settings


def _topic(*names: str, compacted: bool = False) -> Any:
    return app.topic(
        *(settings.topic(name) for name in names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        compacting=compacted or None,
        internal=True,
    )


sends_topic = _topic("sends")
clicks_topic = _topic("clicks")
conversions_topic = _topic("conversions")
selection_requests_topic = _topic("selection-requests")
selection_responses_topic = _topic("selection-responses")
dead_letters_topic = _topic("dead-letters")
account_settings_topic = _topic("catalog-account-settings", compacted=True)
campaigns_topic = _topic("catalog-campaigns", compacted=True)
creatives_topic = _topic("catalog-creatives", compacted=True)
offers_topic = _topic("catalog-offers", compacted=True)
stats_corrections_topic = _topic("stats-corrections")
send_time_requests_topic = _topic("send-time-requests")

# Agents that read several topics subscribe to them as one stream. The stats agent reads
# the daily job's corrections with the events: one writer for the stats table.
outcome_topics = _topic("sends", "clicks", "conversions", "stats-corrections")
catalog_topics = _topic(
    "catalog-account-settings",
    "catalog-campaigns",
    "catalog-creatives",
    "catalog-offers",
    compacted=True,
)

REQUEST_TOPICS = ("selection-requests", "send-time-requests")
OUTCOME_KINDS = {
    settings.topic("sends"): "send",
    settings.topic("clicks"): "click",
    settings.topic("conversions"): "conversion",
    settings.topic("stats-corrections"): "stats_correction",
}
CATALOG_KINDS = {
    settings.topic("catalog-account-settings"): "account_settings",
    settings.topic("catalog-campaigns"): "campaigns",
    settings.topic("catalog-creatives"): "creatives",
    settings.topic("catalog-offers"): "offers",
}
# The send-time learner reads the sends and clicks too, as a stream of its own.
sendtime_event_topics = _topic("sends", "clicks")
SENDTIME_EVENT_KINDS = {settings.topic("sends"): "send", settings.topic("clicks"): "click"}
# What the agents consume (consumer lag is reported for these only).
CONSUMED_TOPICS = frozenset(
    {*OUTCOME_KINDS, *CATALOG_KINDS, *(settings.topic(n) for n in REQUEST_TOPICS)}
)
