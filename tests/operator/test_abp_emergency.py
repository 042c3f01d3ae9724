"""An ABP emergency reaches risk end to end (ABP docs, WebSocket > Emergency payload;
docs/architecture.md "Live venue"): a live engine against the local ABP server on loopback, with
one PENDING test order, halts at once when the `emergency` channel goes active, cancels the order,
publishes an MQTT alert, and stays HALTED after the emergency clears until an operator resumes.
Before, the emergency frame was only logged: no halt, no alert, the order stayed pending."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import yaml

from bot.bus.odds_in import decode_item
from bot.sim.abp_server import LocalAbpServer
from tests.bus.conftest import Broker, Recorder, wait_for
from tests.operator.conftest import INSTANCE, cancelled_at, engine_settings, odds, pending_order, running

ABP_KEY = "emergency-key"


def _mapping(path: Path) -> Path:
    update = decode_item(orjson.loads(odds("Team A")), source="t", received_at=datetime.now(UTC))
    path.write_text(yaml.safe_dump({"selections": [
        {"selection": update.selection.key, "fixture_id": "id1400003190000001", "outcome_id": 101}]}))
    return path


async def test_an_abp_emergency_halts_cancels_alerts_and_waits_for_the_operator(broker: Broker, tmp_path: Path) -> None:
    server = LocalAbpServer(api_key=ABP_KEY, bookmakers=["pinnacle"])
    base_url = await server.start()
    abp = {"api_key": ABP_KEY, "base_url": base_url, "ws_url": base_url.replace("http", "ws") + "/ws",
           "requests_per_second": 1000, "emergency_wait_seconds": 0.2}
    settings = engine_settings(broker, tmp_path / "state", mode="live", abp=abp,
                               mapping={"file": str(_mapping(tmp_path / "mapping.yaml")), "use_abp_markets": False})
    try:
        async with Recorder(broker, f"t/{INSTANCE}/alert") as alerts, running(settings, tmp_path) as engine:
            uuid = await pending_order(engine, broker)
            assert [o["requestUuid"] for o in server.venue.all_orders()] == [uuid]
            server.venue.set_emergency(True, "upstream maintenance")
            await cancelled_at(engine, uuid)
            control = engine.risk.control
            assert (control.state.value, control.record.emergency) == ("HALTED", True)
            assert "upstream maintenance" in control.record.reason
            await wait_for(lambda: any(m.json()["data"].get("alert") == "emergency_on" for m in alerts.messages),
                           what="the emergency alert on MQTT")
            server.venue.set_emergency(False, "")
            await wait_for(lambda: not control.record.emergency, what="the emergency cleared in risk")
            await wait_for(lambda: any(m.json()["data"].get("alert") == "emergency_off" for m in alerts.messages),
                           what="the all-clear alert on MQTT")
            assert control.state.value == "HALTED"  # only an operator resumes (risk.emergency_resume)
    finally:
        await server.stop()
