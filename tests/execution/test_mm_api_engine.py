"""The MM link wired into a running engine (bot/engine/wiring.py `_mm_link`; docs/reference/mm.md):
a paper engine on the wall clock fed signed MQTT odds (tests/operator/conftest.py) with `mm:`
pointing at the local MM server. The MM's open order at the signal's book rejects the signal
EXPOSURE_BOOKMAKER; an MM emergency halts with its source named and alerts on MQTT; the
`state/KILL` file reaches MM as one cancel-all."""

from __future__ import annotations

import uuid
from pathlib import Path

from bot.sim.mm_server import LocalMmServer
from tests.bus.conftest import Broker, Recorder, wait_for
from tests.operator.conftest import INSTANCE, engine_settings, odds, publish_odds, running

KEY = str(uuid.UUID(int=77))


async def test_engine_counts_mm_exposure_halts_on_mm_emergency_and_cancels_mm_on_kill(
        broker: Broker, tmp_path: Path) -> None:
    mm = LocalMmServer(api_key=KEY)
    await mm.start()
    mm.set_open_orders([{"orderId": 9, "fixtureId": "id1", "exchange": "pinnacle", "orderStatus": "PLACED",
                         "orderStake": 100.0, "matchedStake": 0.0}])
    settings = engine_settings(
        broker, tmp_path / "state",
        risk={"max_exposure_bookmaker": 100, "emergency_resume": "operator"},
        mm={"enabled": True, "api_key": KEY, "base_url": mm.base_url, "ws_url": mm.ws_url,
            "combined_exposure": True, "cancel_all_on_kill": True, "poll_interval_seconds": 1,
            "ws_reconnect_initial_seconds": 0.05, "ws_reconnect_max_seconds": 0.2})
    try:
        async with Recorder(broker, f"t/{INSTANCE}/alert") as alerts, running(settings, tmp_path) as engine:
            assert [r["path"] for r in mm.requests][:2] == ["/api/v1/positions", "/api/v1/orders/open"]
            await publish_odds(broker, odds("Team A"))  # the template strategy signals 5 at pinnacle
            await wait_for(lambda: engine.stats.rejected == 1, what="the signal decided")
            assert dict(engine.stats.by_reason) == {"EXPOSURE_BOOKMAKER": 1} and engine.ledger.orders() == []

            mm.set_emergency(True, "Manual trigger")
            control = engine.risk.control
            await wait_for(lambda: control.state.value == "HALTED", what="the MM emergency halts")
            assert control.record.reason == "venue emergency: MM: Manual trigger"
            await wait_for(lambda: any(m.json()["data"].get("alert") == "emergency_on"
                                       and m.json()["data"].get("source") == "mm" for m in alerts.messages),
                           what="the MM emergency alert on MQTT")

            (tmp_path / "state" / "KILL").touch()
            await wait_for(lambda: len(mm.cancel_all_calls) == 1, what="MM cancel-all on the kill file")
            assert mm.open_orders == []
    finally:
        await mm.stop()
    assert mm.connections == 0  # the engine's stop closed the stream
