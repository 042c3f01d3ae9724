"""Config of the MQTT bus (`mqtt:` in config.yaml). Disabled unless `enabled: true`.

Topics and payloads are documented in docs/mqtt.md. Secrets (`password`, `command_token`,
`feed.signing_key`) are `SecretStr` and never logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.config.base import Section


class MqttTlsConfig(Section):
    """TLS towards the broker. `insecure` skips certificate and hostname checks: tests only."""

    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _cert_needs_key(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class MqttFeedConfig(Section):
    """The normalised odds topic (docs/mqtt.md, "Odds in"). `{prefix}` is replaced by
    `mqtt.prefix`; with `share_group` set the feed subscribes `$share/{group}/{topic}` so the
    processes of one group split the messages between them (MQTT v5 shared subscription).

    Odds must be signed unless `require_signature: false`: the hex HMAC-SHA256 of the payload
    under `signing_key` in the MQTT v5 user property `hmac` (bot/bus/auth.py), and every item's
    `feed_time` within `max_age_s` of the wall clock. An enabled feed that requires signatures
    needs a `signing_key` (a config error otherwise). Turning signatures off leaves the odds
    topic to the broker's ACL alone (docs/mqtt.md, "Security")."""

    enabled: bool = Field(False, description="take odds from the bus (needs mqtt.enabled)")
    topic: str = "{prefix}/odds/in"
    share_group: str | None = None
    name: str = Field("mqtt", min_length=1, description="OddsUpdate.source / FeedStatus.source")
    qos: int = Field(1, ge=0, le=2)
    require_signature: bool = Field(
        True, description="refuse odds without a valid `hmac` user property (false: trust the broker ACL)"
    )
    signing_key: SecretStr | None = Field(
        None, validate_default=True,
        description="shared secret of the odds HMAC-SHA256 (not the command_token: scrapers must not command)",
    )
    max_age_s: float = Field(
        60.0, gt=0, description="signed odds: each item's feed_time must be within this of the wall clock"
    )

    @field_validator("signing_key")
    @classmethod
    def _signed_needs_key(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if key is None and info.data.get("enabled") and info.data.get("require_signature", True):
            raise PydanticCustomError(
                "missing",
                "required while the feed is enabled and require_signature is true (or set "
                "require_signature: false and restrict the odds topic with a broker ACL, docs/mqtt.md)",
            )
        return key


class MqttConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    prefix: str = "betbot"
    command_token: SecretStr | None = Field(
        None,
        description="shared secret of the command HMAC-SHA256; without it every command is refused",
    )
    client_id: str | None = Field(None, description="default: {prefix}-{instance}-<role>-<random>")
    tls: MqttTlsConfig = MqttTlsConfig()
    keepalive_s: int = Field(30, ge=5)
    timeout_s: float = Field(10.0, gt=0, description="connect / publish acknowledgement timeout")
    qos: int = Field(1, ge=0, le=2, description="QoS of published events")
    queue_size: int = Field(10_000, ge=1, description="bounded queue of droppable events")
    critical_backlog_warn: int = Field(
        10_000, ge=1, description="log loudly when this many critical events wait unsent"
    )
    heartbeat_s: float = Field(10.0, ge=0, description="0 disables the bus heartbeat")
    reconnect_min_s: float = Field(0.5, gt=0, description="first backoff step (jittered)")
    reconnect_max_s: float = Field(30.0, gt=0, description="backoff ceiling")
    command_max_age_s: float = Field(
        30.0, gt=0, description="commands older or newer than this (wall clock) are refused"
    )
    feed: MqttFeedConfig = MqttFeedConfig()
