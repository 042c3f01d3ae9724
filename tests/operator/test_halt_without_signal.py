"""A halt cancels the pending orders within a second even when no signal ever comes again
(docs/architecture.md, "Risk"): the engine's `control_watch` job (every 0.5 s, wall clock in a
paper run) turns a `state/KILL` file into a halt and adopts a halt `bot risk halt` wrote to the
ledger from another process. Real paper engine, real Mosquitto, the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.bus.conftest import Broker
from tests.operator.conftest import cancelled_at, engine_settings, pending_order, running

LIMIT_S = 1.5  # "within one second", with room for a loaded test machine


async def test_a_kill_file_cancels_pending_orders_within_a_second_without_market_activity(
    broker: Broker, tmp_path: Path
) -> None:
    settings = engine_settings(broker, tmp_path / "state")
    async with running(settings, tmp_path) as engine:
        uuid = await pending_order(engine, broker)
        events = engine.stats.events
        start = datetime.now(UTC)
        (tmp_path / "state" / "KILL").touch()
        elapsed = (await cancelled_at(engine, uuid) - start).total_seconds()
        assert engine.stats.events == events  # no feed event helped
        assert engine.risk.control.state.value == "HALTED"
        assert "kill switch file" in engine.risk.control.record.reason
    print(f"KILL file -> order cancelled in {elapsed:.3f} s")
    assert elapsed < LIMIT_S


async def test_bot_risk_halt_from_the_cli_cancels_pending_orders_within_a_second(broker: Broker, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    settings = engine_settings(broker, state_dir)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(state_dir)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    async with running(settings, tmp_path) as engine:
        uuid = await pending_order(engine, broker)
        events = engine.stats.events
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "risk", "halt", "--reason", "operator via CLI", "-c", str(config),
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(cli.communicate(), timeout=60)
        assert cli.returncode == 0, err.decode()
        assert "HALTED" in out.decode()
        cancelled = await cancelled_at(engine, uuid)
        assert engine.stats.events == events
        record = engine.risk.control.record
        assert record.state.value == "HALTED" and record.reason == "operator via CLI"
        # from the moment the CLI wrote the halt (stamped by its wall clock) to the cancellation
        elapsed = (cancelled - datetime.fromisoformat(record.since)).total_seconds()
    print(f"bot risk halt -> order cancelled in {elapsed:.3f} s")
    assert elapsed < LIMIT_S
