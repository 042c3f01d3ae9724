"""Config of the MQTT bus (`mqtt:` in config.yaml). Disabled unless `enabled: true`."""

from __future__ import annotations

from pydantic import SecretStr

from bot.configbase import Section


class MqttConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    prefix: str = "betbot"
    command_token: SecretStr | None = None
