"""The reply_to allow-list: every internal topic refused whatever the pattern, the default
and the senders' prefix allowed, and the cache of what the existence checks found."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

import pytest
import yaml

from stream.handlers.reply_to import (
    REPLY_REFUSALS,
    ReplyPolicy,
    ReplyRouter,
    ReplyTopics,
)
from stream.ops import metrics as metrics_module
from stream.ops.metrics import Metrics
from stream.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[3]
APP = "cs-app"
PREFIXES = ("", "staging.")


def service_topics() -> list[str]:
    """Every topic of the contract (schemas/topics.yaml), read apart from the code."""
    doc = yaml.safe_load((ROOT / "schemas" / "topics.yaml").read_text())
    return [t["name"] for t in doc["topics"]]


def internal_topics(prefix: str) -> list[str]:
    """Every topic a response must never reach, for an app `APP` with `prefix`."""
    own = [name for name in service_topics() if name != "selection-responses"]
    return [
        *(prefix + name for name in own),
        *own,  # the same topics without the prefix: another deployment's
        f"{APP}-account-to-stats-changelog",
        f"{APP}-account-to-catalog-changelog",
        f"{APP}-__assignor-__leader",
        f"{APP}-anything-else",
        f"{APP}",
        "other-app-some-table-changelog",
        "other-app-some-topic-repartition",
        "__consumer_offsets",
        "__transaction_state",
        "__cluster_metadata",
    ]


def policy(prefix: str, pattern: str = "") -> ReplyPolicy:
    settings = Settings(app_id=APP, topic_prefix=prefix, reply_topic_pattern=pattern)
    return ReplyPolicy.from_settings(settings)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("pattern", ["", ".*", r"[A-Za-z0-9._-]+", r"staging\..*|.*changelog"])
def test_no_internal_topic_is_ever_a_reply_target(prefix: str, pattern: str) -> None:
    p = policy(prefix, pattern)
    topics = internal_topics(prefix)
    assert len(topics) == 2 * 15 + 10  # 15 service topics besides the responses
    for topic in topics:
        assert p.is_internal(topic), topic
        assert p.refusal(topic) == "internal_topic", topic


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_default_topic_and_the_senders_prefix_are_allowed(prefix: str) -> None:
    p = policy(prefix)
    assert p.refusal(f"{prefix}selection-responses") is None
    assert p.refusal(f"{prefix}selection-replies.sender-eu") is None
    assert p.refusal(f"{prefix}selection-replies.a") is None
    assert p.refusal(f"{prefix}selection-replies.") == "not_allowed"  # the prefix alone
    assert p.refusal("sender-eu.selection-responses") == "not_allowed"  # the old example
    assert p.refusal(f"{prefix}replies") == "not_allowed"
    if prefix:
        assert p.refusal("selection-replies.sender-eu") == "not_allowed"  # unprefixed
        assert p.refusal("selection-responses") == "not_allowed"


def test_a_pattern_allows_more_topics_and_an_empty_prefix_none() -> None:
    p = policy("", r"replies-[a-z]+")
    assert p.refusal("replies-eu") is None
    assert p.refusal("replies-eu2") == "not_allowed"  # matched in full only
    assert p.refusal("selection-replies.eu") is None
    closed = ReplyPolicy.from_settings(Settings(app_id=APP, reply_topic_prefix=""))
    assert closed.refusal("selection-replies.eu") == "not_allowed"
    assert closed.refusal("selection-responses") is None


def test_the_reply_settings_are_validated() -> None:
    for env, message in [
        ({"CS_REPLY_TOPIC_PREFIX": "a/b"}, "CS_REPLY_TOPIC_PREFIX may hold only"),
        ({"CS_REPLY_TOPIC_PREFIX": "creative-selection.x."}, "must not start with CS_APP_ID"),
        ({"CS_APP_ID": "t-app", "CS_TOPIC_PREFIX": "t-app."}, "must not start with CS_APP_ID"),
        ({"CS_REPLY_TOPIC_PATTERN": "(unclosed"}, "CS_REPLY_TOPIC_PATTERN is not a regex"),
        ({"CS_REPLY_TOPIC_CHECK_SECONDS": "0"}, "CS_REPLY_TOPIC_CHECK_SECONDS"),
        ({"CS_REPLY_TOPIC_CHECK_SECONDS": "31"}, "CS_REPLY_TOPIC_CHECK_SECONDS"),
        ({"CS_REPLY_TOPIC_CACHE_SECONDS": "-1"}, "CS_REPLY_TOPIC_CACHE_SECONDS"),
    ]:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)
    assert Settings.from_env({"CS_REPLY_TOPIC_PREFIX": ""}).reply_topic_prefix == ""


def test_the_refusal_labels_are_the_metrics_bounded_set() -> None:
    assert REPLY_REFUSALS == metrics_module.REPLY_REFUSALS


def test_the_cache_expires_and_stays_bounded() -> None:
    topics = ReplyTopics(ttl=10.0, max_entries=3)
    topics.record({"a": True, "b": False}, now=0.0)
    assert (topics.known("a", 9.9), topics.known("b", 9.9), topics.known("c", 0.0)) == (
        True,
        False,
        None,
    )
    assert topics.known("a", 10.0) is None and len(topics) == 1  # expired and dropped
    topics.record({"c": True}, now=5.0, ttl=1.0)
    assert topics.known("c", 5.5) is True and topics.known("c", 6.0) is None
    topics.record({f"t{i}": True for i in range(5)}, now=20.0)
    assert len(topics) == 3 and topics.known("t0", 20.0) is None
    assert topics.known("t4", 20.0) is True


class Directory:
    """A cluster with the given topics, answering after `delay` seconds."""

    def __init__(self, topics: set[str], delay: float = 0.0, fail: bool = False) -> None:
        self.topics, self.delay, self.fail = topics, delay, fail
        self.asked: list[set[str]] = []
        self.answered = 0

    async def existing(self, names: Collection[str]) -> set[str]:
        self.asked.append(set(names))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("no broker")
        self.answered += 1
        return self.topics & set(names)


def router(directory: Directory, metrics: Metrics, now: list[float]) -> ReplyRouter:
    return ReplyRouter(
        policy(""),
        directory,
        metrics,
        check_seconds=0.05,
        cache_seconds=60.0,
        clock=lambda: now[0],
    )


async def test_routes_check_once_then_use_the_cache() -> None:
    metrics, now = Metrics(), [0.0]
    directory = Directory({"selection-replies.eu"})
    r = router(directory, metrics, now)
    assert r.route(None, 0.0) == "answer" and r.route("selection-responses", 0.0) == "answer"
    assert r.route("sends", 0.0) == "internal_topic"
    assert r.route("elsewhere", 0.0) == "not_allowed"
    assert r.route("selection-replies.eu", 0.0) == "check"
    found = await r.look_up({"selection-replies.eu", "selection-replies.gone"})
    assert found == {"selection-replies.eu": True, "selection-replies.gone": False}
    assert r.route("selection-replies.eu", 1.0) == "answer"
    assert r.route("selection-replies.gone", 1.0) == "missing_topic"
    assert r.route("selection-replies.gone", 61.0) == "check"  # expired
    assert len(directory.asked) == 1
    checks = metrics.reply_topic_checks
    assert checks.labels("found")._value.get() == 1 and checks.labels("missing")._value.get() == 1


@pytest.mark.parametrize("directory", [Directory(set(), delay=5.0), Directory(set(), fail=True)])
async def test_a_slow_or_failing_check_is_bounded_and_retried_soon(directory: Directory) -> None:
    metrics, now = Metrics(), [100.0]
    r = router(directory, metrics, now)
    assert await r.look_up({"selection-replies.eu"}) == {"selection-replies.eu": False}
    assert len(directory.asked) == 1 and directory.answered == 0  # cut short, not waited out
    assert r.route("selection-replies.eu", 104.0) == "missing_topic"
    assert r.route("selection-replies.eu", 105.0) == "check"  # unconfirmed: kept 5 s only
    assert metrics.reply_topic_checks.labels("unconfirmed")._value.get() == 1


def test_refusals_are_counted_with_a_bounded_label_and_name_the_topic() -> None:
    metrics = Metrics()
    r = router(Directory(set()), metrics, [0.0])
    reason, detail = r.refused("internal_topic", "sends")
    assert reason == "forbidden_reply_to" and "'sends' is an internal topic" in detail
    assert r.refused("not_allowed", "x")[0] == "forbidden_reply_to"
    reason, detail = r.refused("missing_topic", "selection-replies.eu")
    assert reason == "unknown_reply_to" and "answered on 'selection-responses'" in detail
    counted = {c: metrics.reply_to_refused.labels(c)._value.get() for c in REPLY_REFUSALS}
    assert counted == {"internal_topic": 1, "not_allowed": 1, "missing_topic": 1}
