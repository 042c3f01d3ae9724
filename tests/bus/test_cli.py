"""`bot mqtt send` against a running bus on a real broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.bus.bus import MqttBus
from bot.bus.cli import app
from bot.clock import WallClock
from tests.bus.conftest import TOKEN, Broker, bus_config, wait_for
from tests.bus.test_commands import RecordingController


def _config_file(tmp_path: Path, broker: Broker, token: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"instance: bot1\nmqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {broker.port}\n"
        f"  prefix: t\n  command_token: {token}\n"
    )
    return path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("BOT_INSTANCE", "BOT_MQTT__PORT", "BOT_MQTT__PREFIX", "BOT_MQTT__COMMAND_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


async def test_send_halts_the_bot_and_prints_the_reply(broker: Broker, tmp_path: Path, runner: CliRunner) -> None:
    bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock())
    ctl = RecordingController()
    await bus.start(ctl)
    await wait_for(lambda: bus.connected, what="bus connected")
    good = _config_file(tmp_path, broker, TOKEN)
    result = await asyncio.to_thread(runner.invoke, app, ["send", "halt", "--reason", "cli test", "-c", str(good)])
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.output and '"HALTED"' in result.output
    assert ctl.calls == [("halt", "cli test")]

    bad = tmp_path / "bad"
    bad.mkdir()
    result = await asyncio.to_thread(runner.invoke, app, ["send", "resume", "-c", str(_config_file(bad, broker, "nope"))])
    await bus.stop()
    assert result.exit_code == 1 and "bad hmac" in result.output
    assert ctl.calls == [("halt", "cli test")]


def test_send_without_a_reply_exits_3(broker: Broker, tmp_path: Path, runner: CliRunner) -> None:
    config = _config_file(tmp_path, broker, TOKEN)
    result = runner.invoke(app, ["send", "status", "-c", str(config), "--timeout", "0.3"])
    assert result.exit_code == 3 and "no reply" in result.output


def test_send_rejects_unknown_commands_and_bad_args(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["send", "explode"]).exit_code == 2
    assert runner.invoke(app, ["send", "halt", "--args", "[1]"]).exit_code == 2


async def test_watch_prints_the_instance_messages(broker: Broker, tmp_path: Path, runner: CliRunner) -> None:
    bus = MqttBus(bus_config(broker, heartbeat_s=0), instance="bot1", clock=WallClock())
    await bus.start()
    bus.publish("state", {"state": "REDUCING"})
    await wait_for(lambda: bus.health()["published"] == 1, what="state published")
    config = _config_file(tmp_path, broker, TOKEN)
    result = await asyncio.to_thread(runner.invoke, app, ["watch", "-c", str(config), "--count", "2"])
    await bus.stop()
    assert result.exit_code == 0, result.output
    assert "t/bot1/status" in result.output and "t/bot1/state" in result.output and "REDUCING" in result.output
