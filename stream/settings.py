"""Every setting of the service, read once from the environment (prefix `CS_`).

The README lists them; `creative-select settings` prints the effective values with
secrets masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class SecretStr:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_NO_SECRET = SecretStr("")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    """Service settings; each field `x` is read from `CS_X`."""

    app_id: str = "creative-selection"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = _NO_SECRET
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretStr = _NO_SECRET
    redis_tls: bool = False
    redis_tls_cafile: str = ""
    cooldown_store: str = "redis"
    redis_timeout_seconds: float = 0.25  # every Redis call, connecting included
    cooldown_memory_contacts: int = 100_000  # contacts in the in-process cooldown record
    degraded_ready: bool = True  # /health answers 200 in degraded mode (deploy/README.md)
    redis_key_prefix: str = ""
    topic_prefix: str = ""
    partitions: int = 4
    state_dir: str = "./.state"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    select_batch: int = 500
    select_within_ms: float = 2.0
    stats_batch: int = 2000
    stats_within_ms: float = 50.0
    dedup_ttl_seconds: int = 14 * 86400
    profile_retention_days: float = 180.0  # a contact's profile expires after this silence
    max_message_bytes: int = 65536
    max_revenue: float = 1_000_000.0
    max_future_seconds: float = 86400.0
    log_level: str = "info"
    group_instance_id: str = ""
    session_timeout_seconds: float = 60.0
    table_standby_replicas: int = 0  # other workers that follow each table partition
    # A table recovery that received nothing from a changelog partition with records left
    # for this long has that partition sought back and resumed (0: never).
    recovery_stall_seconds: float = 30.0
    pushgateway_url: str = ""  # the daily job pushes its metrics here when set
    # Where a request's reply_to may point besides the responses topic (after topic_prefix;
    # stream/handlers/reply_to.py); internal topics never, whatever these say.
    reply_topic_prefix: str = "selection-replies."
    reply_topic_pattern: str = ""  # a regex a reply topic may match in full; "" none
    reply_topic_check_seconds: float = 1.0  # bound on the check that a reply topic exists
    reply_topic_cache_seconds: float = 60.0  # how long that check's answer is kept
    # Whose sends and clicks the send-time learner folds into slot counts: every
    # account's, only those whose catalog has a send_time block, or none.
    sendtime_learning: str = "all"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"CS_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.kafka_security_protocol not in protocols:
            raise SettingsError(
                f"CS_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(protocols)}; "
                f"got {self.kafka_security_protocol!r}"
            )
        if self.sendtime_learning not in ("all", "declared", "off"):
            raise SettingsError("CS_SENDTIME_LEARNING must be all, declared or off")
        if self.cooldown_store not in ("redis", "memory"):
            raise SettingsError("CS_COOLDOWN_STORE must be redis or memory")
        if not 0.0 < self.redis_timeout_seconds <= 30.0:
            raise SettingsError("CS_REDIS_TIMEOUT_SECONDS must be above 0 and at most 30")
        if self.cooldown_memory_contacts < 0:
            raise SettingsError("CS_COOLDOWN_MEMORY_CONTACTS must be >= 0")
        if self.partitions < 1:
            raise SettingsError("CS_PARTITIONS must be >= 1")
        if not 0.0 < self.profile_retention_days <= 3650.0:
            raise SettingsError("CS_PROFILE_RETENTION_DAYS must be above 0 and at most 3650")
        if self.select_batch < 1 or self.stats_batch < 1:
            raise SettingsError("CS_SELECT_BATCH and CS_STATS_BATCH must be >= 1")
        if not 6.0 <= self.session_timeout_seconds <= 300.0:
            raise SettingsError("CS_SESSION_TIMEOUT_SECONDS must be between 6 and 300")
        if self.recovery_stall_seconds != 0.0 and not 5.0 <= self.recovery_stall_seconds <= 3600:
            raise SettingsError("CS_RECOVERY_STALL_SECONDS must be 0 (off) or 5 to 3600")
        if not 0 <= self.table_standby_replicas <= 3:
            raise SettingsError("CS_TABLE_STANDBY_REPLICAS must be between 0 and 3")
        self._validate_reply_topics()

    def _validate_reply_topics(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{0,200}", self.reply_topic_prefix):
            raise SettingsError(
                "CS_REPLY_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-'"
            )
        if self.reply_topic_prefix and self.topic(self.reply_topic_prefix).startswith(self.app_id):
            raise SettingsError(
                "CS_TOPIC_PREFIX + CS_REPLY_TOPIC_PREFIX must not start with CS_APP_ID: "
                "topics named after the app id are Faust's internal topics"
            )
        try:
            re.compile(self.reply_topic_pattern)
        except re.error as exc:
            raise SettingsError(f"CS_REPLY_TOPIC_PATTERN is not a regex: {exc}") from None
        if not 0.0 < self.reply_topic_check_seconds <= 30.0:
            raise SettingsError("CS_REPLY_TOPIC_CHECK_SECONDS must be above 0 and at most 30")
        if self.reply_topic_cache_seconds < 0.0:
            raise SettingsError("CS_REPLY_TOPIC_CACHE_SECONDS must be >= 0")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def describe(self) -> dict[str, str]:
        """Effective values for display; secrets stay masked."""
        return {f"CS_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}


def _parse(name: str, kind: Any, raw: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "SecretStr":
            return SecretStr(raw)
    except ValueError:
        raise SettingsError(f"CS_{name.upper()}: cannot read {raw!r} as {kind}") from None
    return raw
