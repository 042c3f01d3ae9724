"""Operator commands over MQTT v5 request/response, authenticated by HMAC + timestamp + nonce."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bot.bus.auth import build_command
from bot.bus.bus import MqttBus
from bot.clock import WallClock
from bot.ledger.store import Ledger
from tests.bus.conftest import TOKEN, Broker, Received, Recorder, bus_config, wait_for


class RecordingController:
    """A Controller (bot.bus.commands) that keeps a trading state and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.state = "ACTIVE"

    async def halt(self, reason: str) -> None:
        self.calls.append(("halt", reason))
        self.state = "HALTED"

    async def resume(self) -> None:
        self.calls.append(("resume",))
        self.state = "ACTIVE"

    async def cancel_all(self) -> int:
        self.calls.append(("cancel_all",))
        return 3

    async def reload_params(self, strategy: str, params: dict) -> None:
        if strategy != "value":
            raise KeyError(f"no strategy {strategy!r}")
        self.calls.append(("reload", strategy, params))

    def status(self) -> dict:
        return {"state": self.state}


class Operator:
    """Sends commands with a response topic and correlation data, collects the replies."""

    def __init__(self, client: aiomqtt.Client, rec: Recorder) -> None:
        self.client = client
        self.rec = rec
        self.response_topic = f"t/bot1/reply/op/{uuid.uuid4().hex}"  # the caller's reply prefix

    async def send(self, command: str, payload: bytes, signature: str | None, *,
                   response: bool = True, retain: bool = False, reply_to: str | None = None) -> dict[str, Any] | None:
        props = Properties(PacketTypes.PUBLISH)
        corr = uuid.uuid4().bytes
        if response:
            props.ResponseTopic = reply_to or self.response_topic
            props.CorrelationData = corr
        if signature is not None:
            props.UserProperty = ("hmac", signature)
        await self.client.publish(f"t/bot1/cmd/{command}", payload, qos=1, retain=retain, properties=props)
        if not response:
            return None
        def mine(m: Received) -> bool:
            return getattr(m.properties, "CorrelationData", None) == corr

        await wait_for(lambda: any(mine(m) for m in self.rec.messages), what=f"reply to {command}")
        return next(m.json() for m in self.rec.messages if mine(m))

    async def signed(self, command: str, args: dict | None = None, *, key: str = TOKEN,
                     **kw: Any) -> dict[str, Any] | None:
        payload, sig = build_command(key, command=command, instance="bot1", args=args, **kw)
        return await self.send(command, payload, sig)


@pytest.fixture
async def setup(broker: Broker) -> AsyncIterator[tuple[MqttBus, RecordingController, Operator]]:
    bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock())
    ctl = RecordingController()
    await bus.start(ctl)
    await wait_for(lambda: bus.connected, what="bus connected")
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, "t/bot1/reply/#", "t/bot1/cmd/+/reply") as rec:
        yield bus, ctl, Operator(client, rec)
    await bus.stop()


async def test_halt_and_resume_call_the_controller_and_answer_on_the_response_topic(setup) -> None:
    bus, ctl, op = setup
    reply = await op.signed("halt", {"reason": "phone says stop"})
    assert ctl.calls == [("halt", "phone says stop")]
    # the controller ran before the reply left: the reply already reports HALTED
    assert reply["ok"] is True and reply["result"] == {"state": "HALTED"} and reply["error"] is None
    assert reply["cmd"] == "halt" and reply["v"] == 1
    reply = await op.signed("resume")
    assert ctl.calls[-1] == ("resume",) and reply["result"] == {"state": "ACTIVE"}
    assert (await op.signed("status"))["result"] == {"state": "ACTIVE"}
    assert (await op.signed("cancel-all"))["result"] == {"cancelled": 3}
    reply = await op.signed("reload", {"strategy": "value", "params": {"min_edge": 0.02}})
    assert reply["ok"] and ctl.calls[-1] == ("reload", "value", {"min_edge": 0.02})
    assert bus.health()["commands_accepted"] == 5 and bus.health()["commands_refused"] == 0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: (build_command("wrong-key", command="halt", instance="bot1")), "bad hmac"),
        (lambda: (build_command(TOKEN, command="halt", instance="bot1")[0], None), "missing hmac"),
        (lambda: (build_command(TOKEN, command="resume", instance="bot1")), "does not match topic"),
        (lambda: (build_command(TOKEN, command="halt", instance="bot2")), "signed instance"),
        (lambda: (build_command(TOKEN, command="halt", instance="bot1", ts=time.time() - 120)), "stale timestamp"),
        (lambda: (build_command(TOKEN, command="halt", instance="bot1", nonce="short")), "nonce"),
        (lambda: (build_command(TOKEN, command="halt", instance="bot1", args={"reason": 5})), "args.reason"),
    ],
)
async def test_bad_commands_are_refused_with_the_reason_and_the_controller_is_not_called(
    setup, make, reason: str
) -> None:
    bus, ctl, op = setup
    payload, sig = make()
    reply = await op.send("halt", payload, sig)
    assert reply["ok"] is False and reason in reply["error"]
    assert ctl.calls == [] and ctl.state == "ACTIVE"
    assert bus.health()["commands_refused"] == 1


async def test_a_replayed_command_is_refused(setup) -> None:
    _, ctl, op = setup
    payload, sig = build_command(TOKEN, command="halt", instance="bot1")
    assert (await op.send("halt", payload, sig))["ok"] is True
    again = await op.send("halt", payload, sig)
    assert again["ok"] is False and again["error"] == "replayed nonce"
    assert ctl.calls == [("halt", "mqtt operator command")]


async def test_unknown_command_refused_and_reply_falls_back_to_the_reply_topic(setup) -> None:
    _, ctl, op = setup
    payload, sig = build_command(TOKEN, command="explode", instance="bot1")
    await op.send("explode", payload, sig, response=False)
    await wait_for(lambda: bool(op.rec.on("t/bot1/cmd/explode/reply")), what="fallback reply")
    body = op.rec.on("t/bot1/cmd/explode/reply")[0].json()
    assert body["ok"] is False and "unknown command" in body["error"] and ctl.calls == []


async def test_controller_failure_is_answered_and_the_bus_keeps_serving(setup) -> None:
    _, ctl, op = setup
    reply = await op.signed("reload", {"strategy": "nope", "params": {}})
    assert reply["ok"] is False and "no strategy" in reply["error"]
    assert (await op.signed("halt"))["ok"] is True and ctl.state == "HALTED"


async def test_a_command_left_retained_on_the_broker_is_never_run(broker: Broker) -> None:
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, "t/bot1/reply/#") as rec:
        op = Operator(client, rec)
        payload, sig = build_command(TOKEN, command="halt", instance="bot1")
        await op.send("halt", payload, sig, response=False, retain=True)
        bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock())
        ctl = RecordingController()
        await bus.start(ctl)  # subscribing delivers the retained halt (retain flag set)
        await wait_for(lambda: bus.connected, what="bus subscribed")
        assert (await op.signed("status"))["result"] == {"state": "ACTIVE"}  # handled after it
        await bus.stop()
    assert ctl.calls == [] and bus.health()["commands_refused"] == 0


async def test_without_a_configured_key_every_command_is_refused(broker: Broker) -> None:
    bus = MqttBus(bus_config(broker, heartbeat_s=0, command_token=None), instance="bot1", clock=WallClock())
    ctl = RecordingController()
    await bus.start(ctl)
    await wait_for(lambda: bus.connected, what="bus connected")
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, "t/bot1/reply/#") as rec:
        reply = await Operator(client, rec).signed("halt")
    await bus.stop()
    assert reply["ok"] is False and "command_token is not configured" in reply["error"]
    assert ctl.calls == []


@pytest.mark.parametrize(
    "reply_to",
    ["t/bot1/state", "t/bot1/cmd/halt", "t/odds/in", "t/bot2/reply/op/x", "t/bot1/reply", "t/bot1/reply/",
     "t/bot1/reply//x", "elsewhere/reply/op"],
)
async def test_a_reply_topic_outside_the_callers_reply_prefix_is_refused(
    broker: Broker, reply_to: str, caplog_loguru: list[str]
) -> None:
    bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock())
    ctl = RecordingController()
    await bus.start(ctl)
    await wait_for(lambda: bus.connected, what="bus connected")
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, "#") as everything:
        payload, sig = build_command(TOKEN, command="halt", instance="bot1")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_to
        props.CorrelationData = b"corr-1"
        props.UserProperty = ("hmac", sig)
        await client.publish("t/bot1/cmd/halt", payload, qos=1, properties=props)
        await wait_for(lambda: bool(everything.on("t/bot1/cmd/halt/reply")), what="the refusal on the fixed topic")
    await bus.stop()
    refusal = everything.on("t/bot1/cmd/halt/reply")[0]
    assert refusal.json()["ok"] is False and "reply topic" in refusal.json()["error"]
    assert refusal.properties.CorrelationData == b"corr-1"
    # the bot published nothing on the named topic (when it is the command topic: only the request)
    assert [m.payload for m in everything.on(reply_to)] == ([payload] if reply_to == "t/bot1/cmd/halt" else [])
    assert ctl.calls == [] and ctl.state == "ACTIVE"
    assert any("refused: reply topic" in line for line in caplog_loguru)


async def test_a_reply_topic_under_the_callers_prefix_is_answered(setup) -> None:
    _, _, op = setup
    reply = await op.send("status", *build_command(TOKEN, command="status", instance="bot1"),
                          reply_to="t/bot1/reply/alice/phone-1")
    assert reply["ok"] is True and reply["result"] == {"state": "ACTIVE"}
    assert [m.topic for m in op.rec.messages] == ["t/bot1/reply/alice/phone-1"]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [("é" * 64, "malformed hmac: not ASCII"), ("ß", "malformed hmac: not ASCII"),
     ("g" * 64, "malformed hmac: not hexadecimal"), ("abc123", "malformed hmac: 6 characters"),
     ("a" * 65, "malformed hmac: 65 characters"), ("0" * 64, "bad hmac")],
)
async def test_a_malformed_hmac_is_refused_with_a_reason_and_no_traceback(
    setup, caplog_loguru: list[str], signature: str, reason: str
) -> None:
    bus, ctl, op = setup
    payload, _ = build_command(TOKEN, command="halt", instance="bot1")
    reply = await op.send("halt", payload, signature)
    assert reply["ok"] is False and reply["error"].startswith(reason)
    assert ctl.calls == [] and bus.health()["commands_refused"] == 1
    refusals = [line for line in caplog_loguru if "mqtt command halt refused" in line]
    assert len(refusals) == 1 and reason in refusals[0] and refusals[0].startswith("WARNING")
    assert not any("Traceback" in line or line.startswith("ERROR") for line in caplog_loguru)


async def test_a_signed_command_replayed_after_a_bus_restart_is_refused(broker: Broker, tmp_path: Path) -> None:
    """Restart = a new bus on the same ledger; the captured `resume` must not undo the halt."""
    payload, sig = build_command(TOKEN, command="resume", instance="bot1")
    replies: list[dict[str, Any]] = []
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, "t/bot1/reply/#") as rec:
        for _ in range(2):
            ledger = Ledger(tmp_path / "bot.db")
            bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock(), state=ledger)
            ctl = RecordingController()
            await bus.start(ctl)
            await wait_for(lambda b=bus: b.connected, what="bus connected")
            replies.append(await Operator(client, rec).send("resume", payload, sig))
            await bus.stop()
            ledger.close()
    assert replies[0]["ok"] is True
    assert replies[1]["ok"] is False and replies[1]["error"] == "replayed nonce"
    assert ctl.calls == []  # the second controller was never called
