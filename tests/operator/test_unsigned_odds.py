"""Odds in over MQTT are signed by default (docs/mqtt.md, "Odds in"): an anonymous client's
unsigned or forged price places nothing and never even reaches the odds book; the same price
signed with `mqtt.feed.signing_key` does. Real paper engine on a real Mosquitto."""

from __future__ import annotations

from pathlib import Path

import aiomqtt

from bot.bus.feed import MqttFeed
from tests.bus.conftest import Broker, hmac_properties, wait_for
from tests.operator.conftest import engine_settings, odds, publish_odds, running


async def test_unsigned_or_forged_odds_place_nothing_and_never_reach_the_book(broker: Broker, tmp_path: Path) -> None:
    settings = engine_settings(broker, tmp_path / "state")
    async with running(settings, tmp_path) as engine:
        feed = engine.feeds[0]
        assert isinstance(feed, MqttFeed)
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as anonymous:
            unsigned = odds("Anonymous FC")
            await anonymous.publish("t/odds/in", unsigned, qos=1)
            forged = odds("Forged FC")
            await anonymous.publish("t/odds/in", forged, qos=1, properties=hmac_properties("guessed-key", forged))
        await wait_for(lambda: feed.stats["refused"] == 2, what="both refused")
        await publish_odds(broker, odds("Signed FC"))  # after the others: once it is traded they were handled
        await wait_for(lambda: len(engine.ledger.orders()) == 1, what="the order from the signed price")
        assert [f.home for f in engine.book.fixtures()] == ["Signed FC"]
        assert [o.selection.split("|")[1] for o in engine.ledger.orders()] == ["Signed FC vs Visitors"]
        assert engine.stats.odds_updates == 1 and feed.stats["updates"] == 1
