"""The engine on a real Mosquitto: odds published on the odds topic reach a strategy and produce
an order; a signed halt stops new orders before its reply is sent; a badly signed command is
refused while trading continues; resume restores trading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from pydantic import SecretStr

from bot.bus.cli import send_command
from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from tests.bus.conftest import ODDS_KEY, TOKEN, Broker, Recorder, hmac_properties, wait_for

INSTANCE = "e2e"


def _odds(home: str, price: float) -> bytes:
    return orjson.dumps({"v": 1, "source": "test-scraper", "bookmaker": "pinnacle", "sport": "NFL",
                         "home": home, "away": "Visitors", "start_time": "2030-01-01T18:00:00Z",
                         "market": "moneyline", "outcome": "home", "price": price,
                         "feed_time": datetime.now(UTC).isoformat()})


async def _publish_signed(client: aiomqtt.Client, payload: bytes) -> None:
    await client.publish("t/odds/in", payload, qos=1, properties=hmac_properties(ODDS_KEY, payload))


async def test_engine_trades_mqtt_odds_and_obeys_signed_commands(broker: Broker, tmp_path: Path) -> None:
    mqtt: dict[str, Any] = {"enabled": True, "host": broker.host, "port": broker.port, "prefix": "t",
                            "reconnect_min_s": 0.05, "reconnect_max_s": 0.4, "heartbeat_s": 0.5,
                            "command_token": TOKEN, "feed": {"enabled": True, "signing_key": ODDS_KEY}}
    settings = load_settings(None, mode="paper", instance=INSTANCE, state_dir=tmp_path / "state",
                             mqtt=mqtt, logging={"json_file": False, "progress": False},
                             strategies=[{"name": "tmpl", "path": "template", "params": {"min_price": 1.5, "stake": 5}}])
    engine = await build_engine(settings, config_dir=tmp_path)
    run = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: engine.bus is not None and engine.bus.connected, what="bus connected")
        orders = lambda: engine.ledger.orders()
        async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as scraper, \
                Recorder(broker, f"t/{INSTANCE}/#") as events:
            await asyncio.sleep(0.3)  # the feed's subscription is set up by its own connection
            await _publish_signed(scraper, _odds("Team A", 2.1))
            await wait_for(lambda: len(orders()) == 1, what="an order from MQTT odds")
            assert orders()[0].selection.startswith("NFL|Team A vs Visitors|2030-01-01T18:00Z|moneyline/game|home")
            for kind in ("signal", "decision", "order", "fill"):
                await wait_for(lambda k=kind: bool(events.on(f"t/{INSTANCE}/{k}")), what=f"a {kind} event")
            fill = events.on(f"t/{INSTANCE}/fill")[0].json()
            assert fill["kind"] == "fill" and fill["data"]["fill"]["request_uuid"] == orders()[0].request_uuid

            forged = settings.mqtt.model_copy(update={"command_token": SecretStr("wrong-key")})
            refused = await send_command(forged, INSTANCE, "halt", {"reason": "forged"}, timeout_s=5)
            assert refused["ok"] is False and "hmac" in str(refused).lower()
            await _publish_signed(scraper, _odds("Team B", 2.2))
            await wait_for(lambda: len(orders()) == 2, what="trading continues after a refused command")

            halted = await send_command(settings.mqtt, INSTANCE, "halt", {"reason": "operator"}, timeout_s=5)
            assert halted["ok"] is True
            assert engine.risk.control.state.value == "HALTED"  # in effect before the reply was sent
            await wait_for(lambda: any(m.json()["data"]["risk"].get("state") == "HALTED"
                                       for m in events.on(f"t/{INSTANCE}/state")), what="HALTED on the state topic")
            await _publish_signed(scraper, _odds("Team C", 2.3))
            await wait_for(lambda: engine.stats.rejected >= 1, what="a decision while halted")
            assert engine.stats.by_reason.get("TRADING_HALTED") == 1 and len(orders()) == 2

            resumed = await send_command(settings.mqtt, INSTANCE, "resume", {}, timeout_s=5)
            assert resumed["ok"] is True
            await _publish_signed(scraper, _odds("Team D", 2.4))
            await wait_for(lambda: len(orders()) == 3, what="an order after resume")
    finally:
        engine.request_stop("test over")
        await asyncio.wait_for(run, timeout=10)
