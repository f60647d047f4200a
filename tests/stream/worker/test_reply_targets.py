"""The worker's own topics, named as Faust names them, are all refused as reply targets
by the policy the worker builds from its settings."""

from __future__ import annotations

from faust.types import TopicT

from stream.handlers.reply_to import ReplyPolicy
from stream.worker import topics
from stream.worker.app import app, settings
from stream.worker.tables import account_to_catalog, account_to_stats


def test_every_topic_the_worker_reads_or_keeps_state_in_is_refused() -> None:
    policy = ReplyPolicy.from_settings(settings)
    declared = {
        name
        for value in vars(topics).values()
        if isinstance(value, TopicT)
        for name in value.topics
    }
    assert len(declared) == 12  # not thompson-params, send-time-responses; models and priors: feeds
    changelogs = {account_to_stats.changelog_topic_name, account_to_catalog.changelog_topic_name}
    assert changelogs == {
        f"{settings.app_id}-account-to-stats-changelog",
        f"{settings.app_id}-account-to-catalog-changelog",
    }
    leader = f"{app.conf.id}-__assignor-__leader"  # faust/assignor/leader_assignor.py
    internal = (declared - {settings.topic("selection-responses")}) | changelogs | {leader}
    assert {topic: policy.refusal(topic) for topic in internal} == dict.fromkeys(
        internal, "internal_topic"
    )
    assert policy.refusal(settings.topic("selection-responses")) is None
