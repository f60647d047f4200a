"""Where a selection response may go: the allow-list for a request's `reply_to`, and what
the worker last learnt about which reply topics exist.

A request names its reply topic, but the service decides where it writes. Allowed:

- the default responses topic (`CS_TOPIC_PREFIX` + `selection-responses`);
- a topic under the senders' reply prefix, `CS_TOPIC_PREFIX` + `CS_REPLY_TOPIC_PREFIX`
  (default `selection-replies.`, so sender `sender-eu` replies on
  `selection-replies.sender-eu`);
- a name that `CS_REPLY_TOPIC_PATTERN` (a regex, empty by default) matches in full.

Never, whatever the prefix and the pattern say (`internal_topic`): every topic the service
reads or keeps state in (the event, catalog, request, correction, parameter and
dead-letter topics, with and without `CS_TOPIC_PREFIX`), any name that starts with the
app id (Faust's table changelogs `<app_id>-<table>-changelog`, its
`<app_id>-__assignor-__leader` topic), any changelog or repartition topic, and Kafka's own
`__` topics. A refused request gets an error response (`forbidden_reply_to`) on the
default responses topic, a dead letter and a count; no decision is made for it.

An allowed topic must also exist: the producer would otherwise wait for its metadata
for its whole request timeout, and publish nothing else meanwhile. The worker asks the
cluster (one bounded metadata request for every unchecked name of a batch) and keeps
each answer for `CS_REPLY_TOPIC_CACHE_SECONDS` in a `ReplyTopics`; a missing or
unconfirmed topic is answered as `unknown_reply_to` on the default topic.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from stream.handlers.deadline import within
from stream.handlers.models import MODELS_TOPIC
from stream.handlers.sendtime_priors import PRIORS_TOPIC
from stream.ops.metrics import Metrics
from stream.settings import Settings
from stream.wire.messages import TOPICS
from stream.wire.reasons import Rejection

log = logging.getLogger(__name__)

# Why a reply topic was refused: the bounded label of the refusal counter.
ReplyRefusal = Literal["internal_topic", "not_allowed", "missing_topic"]
REPLY_REFUSALS: tuple[ReplyRefusal, ...] = get_args(ReplyRefusal)

# The service's topics a response may never be written to: all but the responses topic.
SERVICE_TOPICS = (
    *(name for name in TOPICS.values() if name != "selection-responses"),
    MODELS_TOPIC,
    PRIORS_TOPIC,
)
INTERNAL_SUFFIXES = ("-changelog", "-repartition")
# What to do with a decoded request: decide it now, check its reply topic first, or refuse.
Route = Literal["answer", "check"] | ReplyRefusal
# A check that failed (timeout, broker error) is kept this long at most, then tried again.
UNCONFIRMED_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """Which topics a response may be written to.

    Examples
    --------
    >>> policy = ReplyPolicy("selection-responses", "creative-selection")
    >>> policy.refusal("selection-replies.sender-eu") is None
    True
    >>> policy.refusal("creative-selection-account-to-stats-changelog")
    'internal_topic'
    >>> policy.refusal("sender-eu.selection-responses")
    'not_allowed'
    """

    default_topic: str
    app_id: str
    topic_prefix: str = ""
    reply_prefix: str = "selection-replies."  # the whole prefix, topic_prefix included
    pattern: str = ""
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern) if self.pattern else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyPolicy:
        prefix = settings.reply_topic_prefix
        return cls(
            default_topic=settings.topic("selection-responses"),
            app_id=settings.app_id,
            topic_prefix=settings.topic_prefix,
            reply_prefix=settings.topic(prefix) if prefix else "",
            pattern=settings.reply_topic_pattern,
        )

    def is_internal(self, topic: str) -> bool:
        """True for a topic a response must never go to (the module docstring lists them)."""
        if topic.startswith("__") or topic.endswith(INTERNAL_SUFFIXES):
            return True
        if self.app_id and topic.startswith(self.app_id):
            return True
        return any(topic in (name, self.topic_prefix + name) for name in SERVICE_TOPICS)

    def refusal(self, topic: str) -> ReplyRefusal | None:
        """None when a response may be written to `topic`, else why not (never
        `missing_topic`: whether the topic exists is for `ReplyTopics` to say)."""
        if topic == self.default_topic:
            return None
        if self.is_internal(topic):
            return "internal_topic"
        prefix = self.reply_prefix
        if prefix and topic.startswith(prefix) and len(topic) > len(prefix):
            return None
        if self._regex is not None and self._regex.fullmatch(topic):
            return None
        return "not_allowed"


class TopicDirectory(Protocol):
    """Tells which topics exist (an adapter asks the cluster's metadata)."""

    async def existing(self, names: Collection[str]) -> set[str]:
        """The names among `names` that exist; raises when the cluster cannot say."""


class ReplyTopics:
    """What the last checks said about reply topics: found or not, until it expires.

    At most `max_entries` names are kept (the oldest checked go first), so requests
    naming ever new topics cannot grow it without bound.

    Examples
    --------
    >>> topics = ReplyTopics(ttl=60.0)
    >>> topics.record({"selection-replies.a": True, "selection-replies.b": False}, now=0.0)
    >>> topics.known("selection-replies.a", 30.0), topics.known("selection-replies.b", 30.0)
    (True, False)
    >>> topics.known("selection-replies.a", 61.0) is None  # expired: check again
    True
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bool, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def known(self, topic: str, now: float) -> bool | None:
        """Whether `topic` exists, or None when it was not checked or the answer expired."""
        entry = self._entries.get(topic)
        if entry is None:
            return None
        exists, until = entry
        if now >= until:
            del self._entries[topic]
            return None
        return exists

    def record(self, found: Mapping[str, bool], now: float, ttl: float | None = None) -> None:
        """Keep the answers of a check made at `now`, for `ttl` (default `self.ttl`)."""
        until = now + (self.ttl if ttl is None else ttl)
        for topic, exists in found.items():
            self._entries.pop(topic, None)
            self._entries[topic] = (exists, until)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class ReplyRouter:
    """Where each request's answer goes: the policy, the existence checks and their cache
    together, counting what they refuse and what they check (`stream.ops.metrics`).
    Without a `directory` allowed topics are taken to exist (tests without Kafka)."""

    def __init__(
        self,
        policy: ReplyPolicy,
        directory: TopicDirectory | None,
        metrics: Metrics,
        *,
        check_seconds: float,
        cache_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.policy = policy
        self._directory = directory
        self._metrics = metrics
        self._check_seconds = check_seconds
        self._clock = clock
        self.topics = ReplyTopics(cache_seconds)

    def route(self, reply_to: str | None, now: float) -> Route:
        if reply_to is None or reply_to == self.policy.default_topic:
            return "answer"
        refusal = self.policy.refusal(reply_to)
        if refusal is not None:
            return refusal
        if self._directory is None:
            return "answer"
        known = self.topics.known(reply_to, now)
        if known is None:
            return "check"
        return "answer" if known else "missing_topic"

    async def look_up(self, names: Collection[str]) -> dict[str, bool]:
        """Which of `names` exist, asked of the cluster within the bound; a check that
        fails or times out counts them as missing, and is tried again soon."""
        assert self._directory is not None
        counts = self._metrics.reply_topic_checks
        try:
            found = await within(self._directory.existing(names), self._check_seconds)
        except Exception as exc:  # TimeoutError, or the cluster did not answer
            log.warning("checking %d reply topics failed: %s", len(names), type(exc).__name__)
            counts.labels("unconfirmed").inc(len(names))
            result = dict.fromkeys(names, False)
            self.topics.record(result, self._clock(), min(self.topics.ttl, UNCONFIRMED_SECONDS))
            return result
        result = {name: name in found for name in names}
        counts.labels("found").inc(sum(result.values()))
        counts.labels("missing").inc(len(result) - sum(result.values()))
        self.topics.record(result, self._clock())
        return result

    def refused(self, cause: ReplyRefusal, topic: str) -> tuple[Rejection, str]:
        """The reason and detail of the error answer to a refused `topic`, counted."""
        self._metrics.reply_to_refused.labels(cause).inc()
        where = f"; answered on {self.policy.default_topic!r}"
        if cause == "missing_topic":
            return "unknown_reply_to", f"reply topic {topic!r} does not exist{where}"
        if cause == "internal_topic":
            return "forbidden_reply_to", f"reply_to {topic!r} is an internal topic{where}"
        return "forbidden_reply_to", f"reply_to {topic!r} is not an allowed reply topic{where}"
