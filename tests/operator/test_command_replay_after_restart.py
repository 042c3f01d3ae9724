"""A signed `resume` captured on the wire and replayed after the bot restarted must not undo the
operator's halt (docs/mqtt.md, "Commands"): the nonce memory lives in the ledger (state key
`mqtt_nonces`), so the new engine on the same ledger refuses it. Real paper engine, Mosquitto."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bot.bus.auth import NONCE_STATE_KEY, build_command
from bot.bus.cli import send_command
from tests.bus.conftest import TOKEN, Broker, Recorder, wait_for
from tests.operator.conftest import INSTANCE, engine_settings, running


async def _send(client: aiomqtt.Client, rec: Recorder, command: str, payload: bytes, signature: str) -> dict[str, Any]:
    """Publish a captured (payload, signature) as an operator would; the reply body."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = f"t/{INSTANCE}/reply/op/{uuid.uuid4().hex}"
    props.CorrelationData = corr = uuid.uuid4().bytes
    props.UserProperty = ("hmac", signature)
    await client.publish(f"t/{INSTANCE}/cmd/{command}", payload, qos=1, properties=props)
    mine = lambda: [m for m in rec.messages if getattr(m.properties, "CorrelationData", None) == corr]
    await wait_for(lambda: bool(mine()), what=f"reply to {command}")
    return orjson.loads(mine()[0].payload)


async def test_a_captured_resume_replayed_after_a_restart_is_refused(broker: Broker, tmp_path: Path) -> None:
    settings = engine_settings(broker, tmp_path / "state")
    captured = build_command(TOKEN, command="resume", instance=INSTANCE)
    client = aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    async with client, Recorder(broker, f"t/{INSTANCE}/reply/#") as rec:
        async with running(settings, tmp_path) as engine:
            assert (await send_command(settings.mqtt, INSTANCE, "halt", {"reason": "first"}, timeout_s=5))["ok"]
            assert (await _send(client, rec, "resume", *captured))["ok"] is True  # the capture is a real resume
            assert engine.risk.control.state.value == "ACTIVE"
            halted = await send_command(settings.mqtt, INSTANCE, "halt", {"reason": "operator"}, timeout_s=5)
            assert halted["ok"] is True and engine.risk.control.state.value == "HALTED"

        async with running(settings, tmp_path) as engine:  # restart: a new bus and engine, same ledger
            assert engine.risk.control.state.value == "HALTED"
            replay = await _send(client, rec, "resume", *captured)
            assert replay["ok"] is False and replay["error"] == "replayed nonce"
            assert engine.risk.control.state.value == "HALTED"  # the operator's halt stands
            stored = engine.ledger.get_state(NONCE_STATE_KEY)
            assert stored is not None and orjson.loads(captured[0])["nonce"] in stored["nonces"]
            # a freshly signed resume still works
            assert (await send_command(settings.mqtt, INSTANCE, "resume", {}, timeout_s=5))["ok"] is True
            assert engine.risk.control.state.value == "ACTIVE"
