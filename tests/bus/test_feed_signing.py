"""Signed odds in (docs/mqtt.md, "Odds in"): with `mqtt.feed.require_signature` (the default) only
a message whose `hmac` user property is the HMAC of its bytes under `mqtt.feed.signing_key`
reaches `emit`; unsigned, forged and malformed signatures are refused whole (counted, logged,
never a traceback), and a signed item without a fresh `feed_time` (a captured message replayed
later) is dropped. Real Mosquitto; each good message is published after the bad ones on the same
connection, so once it arrives the bad ones have been handled (QoS 1 keeps their order)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import orjson
import pytest
from pydantic import SecretStr

from bot.bus.config import MqttConfig, MqttFeedConfig
from bot.bus.feed import MqttFeed
from bot.clock import ReplayClock
from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from bot.types import FeedStatus
from tests.bus.conftest import ODDS_KEY, Broker, Collector, bus_config, hmac_properties, wait_for

NOW = datetime(2025, 11, 16, 17, 0, tzinfo=UTC)


def _odds(bookmaker: str, *, feed_time: datetime | None = NOW) -> dict:
    item = {"bookmaker": bookmaker, "sport": "NFL", "home": "Chicago Bears", "away": "Minnesota Vikings",
            "start_time": "2025-11-16T18:00:00Z", "market": "moneyline", "outcome": "home", "price": 1.91}
    if feed_time is not None:
        item["feed_time"] = feed_time.isoformat()
    return item




def _config(broker: Broker, **feed: object) -> MqttConfig:
    return bus_config(broker, feed=MqttFeedConfig(**{"signing_key": SecretStr(ODDS_KEY), **feed}))


@pytest.fixture
async def publisher(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        yield c


async def _start(feed: MqttFeed, emit: Collector) -> asyncio.Task[None]:
    task = asyncio.create_task(feed.run(emit))
    await wait_for(lambda: any(isinstance(e, FeedStatus) and e.connected for e in emit.events), what="feed subscribed")
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_only_correctly_signed_odds_reach_emit(broker: Broker, publisher, caplog_loguru: list[str]) -> None:
    feed = MqttFeed(_config(broker), ReplayClock(NOW), now=lambda: NOW.timestamp() + 5)
    emit = Collector()
    task = await _start(feed, emit)
    bad = {
        "unsigned": (orjson.dumps(_odds("unsigned")), None),
        "forged": (payload := orjson.dumps(_odds("forged")), hmac_properties("not-the-key", payload)),
        "non-ascii": (payload := orjson.dumps(_odds("non-ascii")), hmac_properties(ODDS_KEY, payload, "é" * 64)),
        "not-hex": (payload := orjson.dumps(_odds("not-hex")), hmac_properties(ODDS_KEY, payload, "z" * 64)),
        "short": (payload := orjson.dumps(_odds("short")), hmac_properties(ODDS_KEY, payload, "ab12")),
        # signed, then altered: the signature covers the exact bytes
        "altered": (orjson.dumps(_odds("altered")), hmac_properties(ODDS_KEY, orjson.dumps(_odds("original")))),
    }
    for payload, props in bad.values():
        await publisher.publish("t/odds/in", payload, qos=1, properties=props)
    good = orjson.dumps([_odds("good-1"), _odds("good-2")])
    await publisher.publish("t/odds/in", good, qos=1, properties=hmac_properties(ODDS_KEY, good))
    await wait_for(lambda: bool(emit.books), what="the signed message")
    await _stop(task)

    assert emit.books == ["good-1", "good-2"]  # nothing of the refused messages reached emit
    assert feed.stats["refused"] == len(bad) and feed.stats["messages"] == len(bad) + 1
    assert feed.stats["malformed"] == 0 and feed.stats["updates"] == 2
    log = "\n".join(caplog_loguru)
    assert "refused (missing hmac" in log  # the first refusal is logged with its reason
    assert "Traceback" not in log and "ERROR" not in log


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(None, "missing hmac"), ("0" * 64, "bad hmac"), ("é" * 64, "not ASCII"), ("xyz" * 21 + "q", "not hexadecimal"),
     ("abcd", "4 characters")],
)
async def test_each_refusal_is_logged_with_its_reason(
    broker: Broker, publisher, caplog_loguru: list[str], signature: str | None, reason: str
) -> None:
    feed = MqttFeed(_config(broker), ReplayClock(NOW), now=lambda: NOW.timestamp())
    emit = Collector()
    task = await _start(feed, emit)
    payload = orjson.dumps(_odds("refused"))
    props = None if signature is None else hmac_properties(ODDS_KEY, payload, signature)
    await publisher.publish("t/odds/in", payload, qos=1, properties=props)
    await wait_for(lambda: feed.stats["refused"] == 1, what="the refusal")
    await _stop(task)
    assert emit.books == []
    assert any("odds on t/odds/in refused" in line and reason in line for line in caplog_loguru), caplog_loguru
    assert not any("Traceback" in line for line in caplog_loguru)


async def test_a_replayed_or_unstamped_signed_item_is_dropped(broker: Broker, publisher) -> None:
    wall = NOW + timedelta(minutes=10)  # a captured message replayed ten minutes later
    feed = MqttFeed(_config(broker, max_age_s=60), ReplayClock(wall), now=lambda: wall.timestamp())
    emit = Collector()
    task = await _start(feed, emit)
    payload = orjson.dumps([_odds("captured", feed_time=NOW), _odds("unstamped", feed_time=None),
                            _odds("fresh", feed_time=wall - timedelta(seconds=2))])
    await publisher.publish("t/odds/in", payload, qos=1, properties=hmac_properties(ODDS_KEY, payload))
    await wait_for(lambda: bool(emit.books), what="the fresh item")
    await _stop(task)
    assert emit.books == ["fresh"]
    assert feed.stats["stale"] == 2 and feed.stats["updates"] == 1 and feed.stats["malformed"] == 0


async def test_without_a_signing_key_every_message_is_refused(broker: Broker, publisher) -> None:
    feed = MqttFeed(bus_config(broker), ReplayClock(NOW), now=lambda: NOW.timestamp())  # require_signature, no key
    emit = Collector()
    task = await _start(feed, emit)
    payload = orjson.dumps(_odds("any"))
    await publisher.publish("t/odds/in", payload, qos=1, properties=hmac_properties(ODDS_KEY, payload))
    await wait_for(lambda: feed.stats["refused"] == 1, what="the refusal")
    await _stop(task)
    assert emit.books == []


def test_an_enabled_feed_needs_a_key_unless_signatures_are_switched_off() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, mqtt={"enabled": True, "feed": {"enabled": True}})
    assert caught.value.lines == [(
        "config error: mqtt.feed.signing_key: required while the feed is enabled and require_signature is true "
        "(or set require_signature: false and restrict the odds topic with a broker ACL, docs/mqtt.md); "
        "fix: add `mqtt.feed.signing_key` to the config file or set BOT_MQTT__FEED__SIGNING_KEY"
    )]
    assert MqttFeedConfig().require_signature is True  # signed by default
    unsigned = load_settings(None, mqtt={"enabled": True, "feed": {"enabled": True, "require_signature": False}})
    assert unsigned.mqtt.feed.signing_key is None
