"""The broker is killed and restarted on the same port mid-run: publishing carries on, the bus
reconnects, and what was raised meanwhile arrives afterwards."""

from __future__ import annotations

import asyncio

from bot.bus.bus import MqttBus
from bot.clock import WallClock
from tests.bus.conftest import Broker, Recorder, bus_config, wait_for


async def test_alerts_raised_while_the_broker_is_down_arrive_after_reconnect(broker: Broker) -> None:
    bus = MqttBus(bus_config(broker), instance="bot1", clock=WallClock())
    await bus.start()
    async with Recorder(broker, "t/bot1/alert") as rec:
        bus.publish("alert", {"n": 0})
        await wait_for(lambda: len(rec.messages) == 1, what="first alert")

    broker.kill()
    await wait_for(lambda: not bus.connected, what="bus notices the drop")
    ticks = 0
    for n in range(1, 6):  # the trading loop keeps running and publishing
        bus.publish("alert", {"n": n})
        bus.publish("signal", {"n": n})
        await asyncio.sleep(0.1)
        ticks += 1
    assert ticks == 5 and bus.health()["critical_backlog"] == 5
    assert bus.health()["connect_failures"] >= 1  # it kept trying, with backoff

    broker.start()  # same port
    async with Recorder(broker, "t/bot1/alert", "t/bot1/signal") as rec:
        await wait_for(lambda: bus.connected, what="reconnect")
        await wait_for(lambda: len(rec.on("t/bot1/alert")) == 5, what="5 alerts after reconnect")
        await wait_for(lambda: len(rec.on("t/bot1/signal")) == 5, what="5 signals")
    assert [m.json()["data"]["n"] for m in rec.on("t/bot1/alert")] == [1, 2, 3, 4, 5]
    health = bus.health()
    assert health["reconnects"] == 1 and health["queue_depth"] == 0 and health["dropped_total"] == 0
    await bus.stop()
