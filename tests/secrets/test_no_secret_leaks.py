"""No configured secret leaves the bot in any form (docs/architecture.md, "Invariants > Secrets
never leave"): distinct fake keys in every SecretStr of Settings, a short paper run (logging set up
as `bot run` does) on a password-protected Mosquitto with a BoltOdds and a The Odds API feed
pointed at closed ports, a user strategy that logs the keys in `bind` extras, in URLs (`?key=`,
URL-encoded, `quote_plus`) and in an exception it raises, the bus publishing an event that holds
them, the ledger's event log given them and a library logging one through the standard library.
Then the console output, `state/logs/bot.jsonl`,
every MQTT payload seen on the broker and the ledger's files are searched for each key in every
encoding: no hit, while the masked lines themselves are there."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiomqtt
import orjson
import pytest
from loguru import logger

from bot.bus.feed import MqttFeed
from bot.config import secrets
from bot.config.secrets import MASK
from bot.config.settings import load_settings
from bot.engine.logs import setup_logging
from bot.engine.wiring import build_engine
from tests.bus.conftest import Broker, hmac_properties, wait_for

KEYS = {
    "abp.api_key": "abp-Alpha/1+1=2 key&x",
    "feeds.boltodds.api_key": "bolt-Bravo?2 key/y+z",
    "feeds.oddsapi.api_key": "odds-Charlie&3=key w",
    "mapping.oddspapi_api_key": "papi-Delta 4/key+%",
    "mqtt.password": "mqtt-Echo+5 pass/w=rd",
    "mqtt.command_token": "cmd-Foxtrot=6 token&",
    "mqtt.feed.signing_key": "sign-Golf/7 key?&",
}
INSTANCE = "leak"

STRATEGY = '''
from typing import Any
from urllib.parse import quote, quote_plus

from bot.strategy import Strategy, StrategyParams


class Leaky(Strategy):
    """Logs the keys it is given every way a careless strategy might, then raises with them."""

    class Params(StrategyParams):
        keys: list[str] = []

    def on_odds(self, *, update: Any, **kwargs: Any) -> list:
        for key in self.params.keys:
            self.ctx.log.bind(api_key=key, request={"headers": {"x-api-key": key}, "tries": [key, 1]}).info(
                "calling upstream with extras")
            self.ctx.log.info("GET wss://spro.example/api?key={}&sport=nfl", quote(key, safe=""))
            self.ctx.log.info("GET https://odds.example/v4?apiKey={}", quote_plus(key))
            self.ctx.log.warning("encoded forms {} | {} | {}", quote(key), quote_plus(key), quote(key, safe=""))
        raise RuntimeError("upstream refused the key " + " and ".join(self.params.keys))
'''


def _forms(key: str) -> set[str]:
    """Every spelling of `key` that must not appear anywhere."""
    return {key, quote(key), quote(key, safe=""), quote_plus(key), quote_plus(key, safe="/"),
            orjson.dumps(key).decode()[1:-1]}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def restore_logging() -> Iterator[None]:
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers
    logger.remove()
    logger.configure(patcher=lambda record: None, extra={})
    logger.add(sys.stderr)
    secrets.forget_all()


async def test_no_secret_reaches_console_json_log_mqtt_or_ledger(tmp_path: Path, capfd, restore_logging) -> None:
    broker = Broker(tmp_path, users={"bot": KEYS["mqtt.password"]})
    broker.start()
    try:
        await _run(broker, tmp_path, capfd)
    finally:
        broker.kill()


async def _run(broker: Broker, tmp_path: Path, capfd: Any) -> None:
    dead = f"127.0.0.1:{_closed_port()}"
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "leaky.py").write_text(STRATEGY)
    settings = load_settings(
        None, mode="paper", instance=INSTANCE, state_dir=tmp_path / "state", strategy_dirs=[tmp_path / "strategies"],
        abp={"api_key": KEYS["abp.api_key"]},
        feeds={"boltodds": {"api_key": KEYS["feeds.boltodds.api_key"], "url": f"ws://{dead}/api",
                            "rest_url": f"http://{dead}/api", "reconnect_initial_seconds": 0.05,
                            "reconnect_max_seconds": 0.2},
               "oddsapi": {"api_key": KEYS["feeds.oddsapi.api_key"], "base_url": f"http://{dead}",
                           "poll_seconds": 0.2, "timeout_seconds": 1}},
        mapping={"oddspapi_api_key": KEYS["mapping.oddspapi_api_key"], "oddspapi_base_url": f"http://{dead}/en"},
        mqtt={"enabled": True, "host": broker.host, "port": broker.port, "prefix": "t", "username": "bot",
              "password": KEYS["mqtt.password"], "command_token": KEYS["mqtt.command_token"],
              "reconnect_min_s": 0.05, "reconnect_max_s": 0.4, "heartbeat_s": 0.2,
              "feed": {"enabled": True, "signing_key": KEYS["mqtt.feed.signing_key"]}},
        logging={"level": "DEBUG", "json_file": True, "progress": False},
        execution={"test_orders": True, "expiry_seconds": 3600},
        strategies=[{"name": "leaky", "path": "leaky.py:Leaky", "params": {"keys": list(KEYS.values())}}],
    )
    log_path = setup_logging(settings)  # as `bot run` does, before the engine is built
    assert log_path is not None
    bolt = KEYS["feeds.boltodds.api_key"]  # a library logging through the standard library
    logging.getLogger("websockets.client").warning("connect wss://spro.example/api?key=%s failed: %s",
                                                   quote(bolt, safe=""), bolt)
    seen: list[bytes] = []
    async with aiomqtt.Client(broker.host, broker.port, username="bot", password=KEYS["mqtt.password"],
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("#", qos=1)
        collector = asyncio.create_task(_collect(client, seen))
        engine = await build_engine(settings, config_dir=tmp_path)
        run = asyncio.create_task(engine.run())
        try:
            feed = next(f for f in engine.feeds if isinstance(f, MqttFeed))
            await wait_for(lambda: engine.bus is not None and engine.bus.connected and feed.stats["sessions"] >= 1,
                           what="bus and feed connected")
            payload = orjson.dumps({"bookmaker": "pinnacle", "sport": "NFL", "home": "Team A", "away": "Visitors",
                                    "start_time": "2030-01-01T18:00:00Z", "market": "moneyline", "outcome": "home",
                                    "price": 2.1, "feed_time": datetime.now(UTC).isoformat()})
            await client.publish("t/odds/in", payload, qos=1,
                                 properties=hmac_properties(KEYS["mqtt.feed.signing_key"], payload))
            await wait_for(lambda: engine.stats.events >= 1 and feed.stats["updates"] >= 1, what="the odds handled")
            # the bus publishes an event that holds every key; the ledger's event log is given them
            leaky = {"alert": "test", "keys": list(KEYS.values()),
                     "urls": [f"https://x.example/?key={quote(k, safe='')}&apiKey={quote_plus(k)}" for k in KEYS.values()]}
            assert engine.bus is not None
            engine.bus.publish("alert", leaky)
            engine.ledger.append_event("test.leak", {**leaky, "raw": " ".join(KEYS.values()).encode()})
            await wait_for(lambda: any(b'"alert":"test"' in m for m in seen), what="the alert on the broker")
            await wait_for(lambda: any(b'"kind":"heartbeat"' in m for m in seen), what="a heartbeat")
            # the failing feeds have tried their URLs by now
            await wait_for(lambda: "boltodds: connection failed" in log_path.read_text()
                           and "oddsapi: poll failed" in log_path.read_text(), what="the feeds' failures logged")
        finally:
            engine.request_stop("test over")
            await asyncio.wait_for(run, timeout=15)
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
    await logger.complete()

    console = capfd.readouterr().err  # the console sink writes to stderr
    json_log = log_path.read_text()
    ledger = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("bot.db*"))
    mqtt = b"\n".join(seen)
    texts = {"console": console.encode(), "bot.jsonl": json_log.encode(), "mqtt": mqtt, "ledger": ledger}
    hits = [(name, where, form) for name, key in KEYS.items() for form in sorted(_forms(key))
            for where, data in texts.items() if form.encode() in data]
    assert hits == []
    # ... and not because nothing was written: the lines are there, masked
    assert "calling upstream with extras" in json_log and f'"api_key": "{MASK}"' in json_log
    assert "RuntimeError: upstream refused the key" in json_log and "Traceback" in json_log
    assert f"?key={MASK}&sport=nfl" in json_log and f"?apiKey={MASK}" in json_log
    assert f"connect wss://spro.example/api?key={MASK} failed: {MASK}" in json_log
    assert "calling upstream with extras" in console and "RuntimeError: upstream refused the key" in console
    assert b'"alert":"test"' in mqtt and MASK.encode() in mqtt
    assert b"test.leak" in ledger and MASK.encode() in ledger


async def _collect(client: aiomqtt.Client, seen: list[bytes]) -> None:
    async for message in client.messages:
        seen.append(bytes(message.payload))
