"""A paper engine on the wall clock whose only feed is signed MQTT odds on a real Mosquitto
(tests/bus/conftest.py): one odds message gives one PENDING order (test orders are stored by the
paper venue, never filled, and expire after an hour), then the market goes quiet, so whatever
happens next happens without a signal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson

from bot.config.settings import Settings, load_settings
from bot.engine.core import Engine
from bot.engine.wiring import build_engine
from tests.bus.conftest import ODDS_KEY, TOKEN, Broker, hmac_properties, wait_for

INSTANCE = "ops"


def engine_settings(broker: Broker, state_dir: Path, **overrides: Any) -> Settings:
    mqtt: dict[str, Any] = {
        "enabled": True, "host": broker.host, "port": broker.port, "prefix": "t",
        "reconnect_min_s": 0.05, "reconnect_max_s": 0.4, "heartbeat_s": 0,
        "command_token": TOKEN, "feed": {"enabled": True, "signing_key": ODDS_KEY},
    }
    values: dict[str, Any] = {
        "mode": "paper", "instance": INSTANCE, "state_dir": state_dir, "mqtt": mqtt,
        "logging": {"json_file": False, "progress": False},
        "execution": {"test_orders": True, "expiry_seconds": 3600},
        "strategies": [{"name": "tmpl", "path": "template", "params": {"min_price": 1.5, "stake": 5}}],
    }
    values.update(overrides)
    return load_settings(None, **values)


def odds(home: str, price: float = 2.1, bookmaker: str = "pinnacle") -> bytes:
    return orjson.dumps({"bookmaker": bookmaker, "sport": "NFL", "home": home, "away": "Visitors",
                         "start_time": "2030-01-01T18:00:00Z", "market": "moneyline", "outcome": "home",
                         "price": price, "feed_time": datetime.now(UTC).isoformat()})


async def publish_odds(broker: Broker, payload: bytes) -> None:
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish("t/odds/in", payload, qos=1, properties=hmac_properties(ODDS_KEY, payload))


@asynccontextmanager
async def running(settings: Settings, config_dir: Path) -> AsyncIterator[Engine]:
    """The engine running, its bus connected and its odds feed subscribed; stopped on exit."""
    engine = await build_engine(settings, config_dir=config_dir)
    task = asyncio.create_task(engine.run())
    try:
        feed = engine.feeds[0]
        await wait_for(lambda: engine.bus is not None and engine.bus.connected
                       and getattr(feed, "stats", {}).get("sessions", 0) >= 1, what="bus and feed connected")
        yield engine
    finally:
        engine.request_stop("test over")
        await asyncio.wait_for(task, timeout=15)


async def pending_order(engine: Engine, broker: Broker, home: str = "Team A") -> str:
    """Publish one signed price and wait for the PENDING order it gives; its requestUuid."""
    await publish_odds(broker, odds(home))
    await wait_for(lambda: [o.status for o in engine.ledger.orders()] == ["PENDING"], what="a pending order")
    return engine.ledger.orders()[0].request_uuid


async def cancelled_at(engine: Engine, request_uuid: str) -> datetime:
    """When the order became CANCELLED in the ledger (its `updated_at`, the engine's wall clock);
    fails when it is not cancelled within 5 s."""
    await wait_for(lambda: engine.ledger.get_order(request_uuid).status == "CANCELLED",  # type: ignore[union-attr]
                   timeout=5, what="the pending order cancelled")
    row = engine.ledger.get_order(request_uuid)
    assert row is not None and row.updated_at is not None
    return row.updated_at.astimezone(UTC)
