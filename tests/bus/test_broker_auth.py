"""Broker credentials and TLS from the config: a TLS listener with a password file."""

from __future__ import annotations

from pydantic import SecretStr

from bot.bus.bus import MqttBus
from bot.bus.config import MqttTlsConfig
from bot.clock import WallClock
from tests.bus.conftest import Broker, bus_config, wait_for


async def test_bus_connects_over_tls_with_the_configured_credentials(auth_broker: Broker) -> None:
    tls = MqttTlsConfig(enabled=True, ca_file=auth_broker.cert)
    bus = MqttBus(bus_config(auth_broker, username="bot", password=SecretStr("s3cret-pass"), tls=tls, heartbeat_s=0),
                  instance="bot1", clock=WallClock())
    await bus.start()
    bus.publish("alert", {"hello": 1})
    await wait_for(lambda: bus.health()["published"] == 1, what="alert published over TLS")
    await bus.stop()


async def test_wrong_password_or_untrusted_certificate_never_connects(auth_broker: Broker) -> None:
    wrong_password = bus_config(auth_broker, username="bot", password=SecretStr("guess"),
                                tls=MqttTlsConfig(enabled=True, ca_file=auth_broker.cert))
    untrusted = bus_config(auth_broker, username="bot", password=SecretStr("s3cret-pass"),
                           tls=MqttTlsConfig(enabled=True))  # system CAs do not know the cert
    buses = [MqttBus(c, instance="bot1", clock=WallClock()) for c in (wrong_password, untrusted)]
    for bus in buses:
        await bus.start()
    await wait_for(lambda: all(b.health()["connect_failures"] >= 2 for b in buses), what="retries")
    for bus in buses:
        assert bus.health()["connected"] is False and bus.health()["reconnects"] == 0
        await bus.stop(flush_timeout_s=0)
