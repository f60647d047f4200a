"""The tables' changelog topics are created with the others, before a worker starts."""

from __future__ import annotations


def test_the_changelog_topics_created_before_a_start_are_the_tables() -> None:
    from stream.adapters.topic_specs import TABLES, changelog_topics
    from stream.worker import tables
    from stream.worker.app import app, settings

    made = {t.changelog_topic.get_topic_name(): t for t in app.tables.values()}
    specs = {s.name: s for s in changelog_topics(settings)}
    assert set(made) == set(specs)
    assert {name for name, _ in TABLES} == {t.name for t in made.values()}
    for name, spec in specs.items():
        assert spec.compacted and spec.partitions == made[name].partitions
        extra = made[name].changelog_topic.config or {}
        wanted = (
            {"max.message.bytes": str(spec.max_message_bytes)} if spec.max_message_bytes else {}
        )
        assert {k: v for k, v in extra.items() if k == "max.message.bytes"} == wanted
    assert tables.partition_to_answers.changelog_topic.get_topic_name() in specs
