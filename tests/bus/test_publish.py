"""Events reach the documented topics with valid payloads; retained state/heartbeat; status."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal

import jsonschema

from bot.bus.bus import MqttBus
from bot.bus.topics import EVENT_KINDS
from bot.clock import ReplayClock, WallClock
from bot.types import BetStatus, Fill, FixtureKey, MarketKey, Selection, Side, Signal
from tests.bus.conftest import Broker, Recorder, bus_config, wait_for

ENVELOPE = {
    "type": "object",
    "required": ["v", "kind", "instance", "seq", "at", "data"],
    "properties": {
        "v": {"const": 1},
        "kind": {"enum": sorted(EVENT_KINDS)},
        "instance": {"const": "bot1"},
        "seq": {"type": "integer", "minimum": 1},
        "at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "data": {"type": "object"},
    },
    "additionalProperties": False,
}
T0 = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
SELECTION = Selection(FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", T0),
                      MarketKey("spread", "game", Decimal("-3.5")), "home")


def _signal() -> Signal:
    return Signal("sig-1", "value", SELECTION, Side.BACK, Decimal("10.00"), 2.05, 2.0, ("pinnacle",), T0)


async def test_every_event_kind_arrives_on_its_topic_with_a_valid_envelope(broker: Broker) -> None:
    clock = ReplayClock(T0)
    bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=clock)
    async with Recorder(broker, "t/bot1/#") as rec:
        await bus.start()
        for kind in sorted(EVENT_KINDS):
            bus.publish(kind, {"n": kind})
        bus.publish_event(_signal())
        bus.publish_event(Fill(7, "req-1", "pinnacle", Decimal("9.50"), 2.04, BetStatus.PLACED, T0))
        bus.publish_event(Fill(7, "req-1", "pinnacle", Decimal("9.50"), 2.04, BetStatus.CANCELLED, T0, new_bet=False))
        await wait_for(lambda: len([m for m in rec.messages if m.topic != "t/bot1/status"]) >= 12,
                       what="12 events")
        await bus.stop()

    for kind in EVENT_KINDS:
        got = [m.json() for m in rec.on(f"t/bot1/{kind}")]
        assert got, kind
        for body in got:
            jsonschema.validate(body, ENVELOPE)
            assert body["kind"] == kind and body["at"] == "2025-11-16T18:00:00Z"
    signal = next(m.json()["data"] for m in rec.on("t/bot1/signal") if "signal" in m.json()["data"])["signal"]
    assert signal["selection"]["key"] == SELECTION.key
    assert signal["stake"] == "10.00" and signal["side"] == "back" and signal["selection"]["market"]["line"] == "-3.5"
    fill = next(m.json()["data"] for m in rec.on("t/bot1/fill") if "fill" in m.json()["data"])["fill"]
    assert fill == {"bet_id": 7, "request_uuid": "req-1", "bookmaker": "pinnacle", "stake": "9.50",
                    "price": 2.04, "status": "PLACED", "at": "2025-11-16T18:00:00Z", "order_id": None,
                    "new_bet": True}
    # the bet's later status change goes to `bet`, not to `fill`
    bets = [m.json()["data"]["bet"] for m in rec.on("t/bot1/bet") if "bet" in m.json()["data"]]
    assert [(b["bet_id"], b["status"], b["new_bet"]) for b in bets] == [(7, "CANCELLED", False)]
    assert [f["status"] for f in (m.json()["data"].get("fill") for m in rec.on("t/bot1/fill")) if f] == ["PLACED"]
    seqs = [m.json()["seq"] for m in rec.messages if m.topic.rsplit("/", 1)[-1] in EVENT_KINDS]
    assert len(set(seqs)) == len(seqs) == 12
    statuses = [m.json()["status"] for m in rec.on("t/bot1/status")]
    assert statuses == ["online", "offline"]  # offline on a clean stop too


async def test_state_and_heartbeat_are_retained_for_late_subscribers(broker: Broker) -> None:
    bus = MqttBus(bus_config(broker, heartbeat_s=0.1), instance="bot1", clock=WallClock())
    await bus.start()
    bus.publish("state", {"state": "HALTED", "reason": "loss limit"})
    bus.publish("signal", {"not": "retained"})
    await wait_for(lambda: bus.health()["published"] >= 4, what="publishes")
    await bus.stop()
    async with Recorder(broker, "t/bot1/#") as late:
        await wait_for(lambda: len(late.messages) >= 3, what="retained messages")
        await asyncio.sleep(0.1)  # nothing else is retained
    assert {m.topic for m in late.messages} == {"t/bot1/state", "t/bot1/heartbeat", "t/bot1/status"}
    assert all(m.retain for m in late.messages)
    assert late.on("t/bot1/state")[0].json()["data"] == {"state": "HALTED", "reason": "loss limit"}
    beat = late.on("t/bot1/heartbeat")[0].json()["data"]["bus"]
    assert beat["connected"] is True and beat["reconnects"] == 0 and beat["dropped_total"] == 0
    assert late.on("t/bot1/status")[0].json()["status"] == "offline"


async def test_last_will_marks_a_killed_instance_offline(broker: Broker, tmp_path) -> None:
    script = tmp_path / "bus_proc.py"
    script.write_text(
        "import asyncio\n"
        "from bot.bus.bus import MqttBus\nfrom bot.bus.config import MqttConfig\nfrom bot.clock import WallClock\n"
        "async def main():\n"
        f"    bus = MqttBus(MqttConfig(enabled=True, host='127.0.0.1', port={broker.port}, prefix='t'),"
        " instance='doomed', clock=WallClock())\n"
        "    await bus.start()\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    async with Recorder(broker, "t/doomed/status") as rec:
        proc = await asyncio.create_subprocess_exec(sys.executable, str(script))
        try:
            await wait_for(lambda: any(m.json()["status"] == "online" for m in rec.messages), what="online")
        finally:
            proc.kill()  # SIGKILL: no DISCONNECT packet, so the broker sends the will
            await proc.wait()
        await wait_for(lambda: rec.messages[-1].json()["status"] == "offline", what="last will")
    assert [m.json()["status"] for m in rec.messages] == ["online", "offline"]


async def test_full_queue_drops_heartbeats_but_never_fills(broker: Broker) -> None:
    broker.kill()  # nothing can leave while the queue fills
    bus = MqttBus(bus_config(broker, queue_size=5, heartbeat_s=0), instance="bot1", clock=WallClock())
    for i in range(20):
        bus.publish("heartbeat", {"i": i})
    for i in range(30):
        bus.publish("fill", {"i": i})
    health = bus.health()
    assert health["dropped"] == {"heartbeat": 15} and health["queue_depth"] == 35
    assert health["critical_backlog"] == 30
    broker.start()
    async with Recorder(broker, "t/bot1/+") as rec:
        await bus.start()
        await wait_for(lambda: len(rec.on("t/bot1/fill")) == 30, what="30 fills")
        await wait_for(lambda: len(rec.on("t/bot1/heartbeat")) == 5, what="5 heartbeats")
        await bus.stop()
    assert [m.json()["data"]["i"] for m in rec.on("t/bot1/fill")] == list(range(30))
    assert [m.json()["data"]["i"] for m in rec.on("t/bot1/heartbeat")] == [15, 16, 17, 18, 19]


async def test_invalid_kind_is_refused_without_raising(broker: Broker) -> None:
    bus = MqttBus(bus_config(broker), instance="bot1", clock=WallClock())
    bus.publish("a/b", {})
    bus.publish("+", {})
    assert bus.health()["invalid"] == 2 and bus.health()["queue_depth"] == 0
