"""MqttFeed: normalised odds published on the odds topic reach `emit` as OddsUpdate; malformed
payloads are counted; a shared subscription splits messages between group members. The signing
rules (unsigned, badly signed, stale or unstamped odds never reach `emit`) are in
tests/bus/test_feed_signing.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiomqtt
import orjson
import pytest

from bot.bus.config import MqttFeedConfig
from bot.bus.feed import MqttFeed
from bot.clock import ReplayClock
from bot.types import FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection
from tests.bus.conftest import Broker, Collector, bus_config, wait_for

NOW = datetime(2025, 11, 16, 17, 0, tzinfo=UTC)
UNSIGNED = MqttFeedConfig(require_signature=False)  # decoding tests: the broker ACL is the only guard
ODDS = {
    "v": 1, "source": "scraper-1", "bookmaker": "pinnacle", "sport": "NFL",
    "home": "Chicago Bears", "away": "Minnesota Vikings", "start_time": "2025-11-16T18:00:00Z",
    "market": "spread", "period": "game", "line": -3.5, "outcome": "home", "price": 1.91,
    "suspended": False, "feed_time": "2025-11-16T12:59:58-04:00",
}



async def _running(feed: MqttFeed, emit: Collector) -> asyncio.Task[None]:
    task = asyncio.create_task(feed.run(emit))
    await wait_for(lambda: any(isinstance(e, FeedStatus) and e.connected for e in emit.events),
                   what="feed subscribed")
    return task


@pytest.fixture
async def publisher(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        yield c


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_odds_on_the_topic_reach_emit_as_odds_updates(broker: Broker, publisher) -> None:
    feed = MqttFeed(bus_config(broker, feed=UNSIGNED), ReplayClock(NOW))
    emit = Collector()
    task = await _running(feed, emit)
    moneyline = {**ODDS, "market": "moneyline", "line": None, "outcome": "Away", "price": None, "american": 150}
    await publisher.publish("t/odds/in", orjson.dumps(ODDS), qos=1)
    await publisher.publish("t/odds/in", orjson.dumps([moneyline, {**ODDS, "suspended": True, "price": None}]), qos=1)
    await wait_for(lambda: len(emit.updates) == 3, what="3 updates")
    await _stop(task)

    fixture = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 11, 16, 18, tzinfo=UTC))
    spread, ml, suspended = emit.updates
    assert spread == OddsUpdate(
        source="mqtt", bookmaker="pinnacle",
        selection=Selection(fixture, MarketKey("spread", "game", Decimal("-3.5")), "home"),
        price=1.91, american=None, suspended=False,
        feed_time=datetime(2025, 11, 16, 16, 59, 58, tzinfo=UTC), received_at=NOW,
        feed_ids={"origin": "scraper-1"},
    )
    assert ml.selection == Selection(fixture, MarketKey("moneyline"), "away")
    assert ml.price == 2.5 and ml.american == 150
    assert suspended.suspended and suspended.price is None
    assert feed.stats["malformed"] == 0 and feed.stats["updates"] == 3
    # the array message is one step of the book: one batch of its two updates
    assert [len(e.updates) for e in emit.events if isinstance(e, OddsBatch)] == [2]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (orjson.dumps({**ODDS, "price": 0.9}), "price"),
        (orjson.dumps({**ODDS, "line": None}), "needs a line"),
        (orjson.dumps({**ODDS, "outcome": "over"}), "outcome"),
        (orjson.dumps({**ODDS, "start_time": "2025-11-16T18:00:00"}), "start_time"),
        (orjson.dumps({**ODDS, "price": None}), "price or american"),
        (orjson.dumps({**ODDS, "prise": 2.0}), "prise"),
        (orjson.dumps({**ODDS, "v": 2}), "v"),
        (orjson.dumps("a string"), "item 0"),
    ],
)
async def test_malformed_odds_are_counted_and_the_feed_keeps_going(
    broker: Broker, publisher, payload: bytes, problem: str, caplog_loguru: list[str]
) -> None:
    feed = MqttFeed(bus_config(broker, feed=UNSIGNED), ReplayClock(NOW))
    emit = Collector()
    task = await _running(feed, emit)
    await publisher.publish("t/odds/in", payload, qos=1)
    await publisher.publish("t/odds/in", orjson.dumps(ODDS), qos=1)
    await wait_for(lambda: len(emit.updates) == 1, what="the good update after the bad one")
    await _stop(task)
    assert feed.stats["malformed"] == 1 and feed.stats["messages"] == 2
    assert any("malformed odds" in line and problem in line for line in caplog_loguru)


async def test_a_failing_emit_is_counted_not_fatal(broker: Broker, publisher) -> None:
    feed = MqttFeed(bus_config(broker, feed=UNSIGNED), ReplayClock(NOW))
    seen: list[Any] = []

    async def emit(event: FeedEvent) -> None:
        seen.append(event)
        if isinstance(event, OddsUpdate) and len(seen) == 2:
            raise RuntimeError("downstream bug")

    task = asyncio.create_task(feed.run(emit))
    await wait_for(lambda: len(seen) == 1, what="connected status")
    for _ in range(2):
        await publisher.publish("t/odds/in", orjson.dumps(ODDS), qos=1)
    await wait_for(lambda: len(seen) == 3, what="second update")
    await _stop(task)
    assert feed.stats["emit_errors"] == 1


async def test_shared_subscription_delivers_each_message_to_exactly_one_member(broker: Broker, publisher) -> None:
    config = bus_config(broker, feed=MqttFeedConfig(share_group="workers", require_signature=False))
    feeds = [MqttFeed(config, ReplayClock(NOW)) for _ in range(2)]
    emits = [Collector(), Collector()]
    assert feeds[0].subscription == "$share/workers/t/odds/in"
    tasks = [await _running(f, e) for f, e in zip(feeds, emits, strict=True)]
    for i in range(40):
        await publisher.publish("t/odds/in", orjson.dumps({**ODDS, "bookmaker": f"book{i}"}), qos=1)
    await wait_for(lambda: sum(len(e.updates) for e in emits) == 40, what="40 updates")
    await asyncio.sleep(0.1)  # a duplicate would show up now
    await _stop(*tasks)
    books = [[u.bookmaker for u in e.updates] for e in emits]
    assert sorted(books[0] + books[1]) == sorted(f"book{i}" for i in range(40))  # each exactly once
    print(f"shared subscription split: {len(books[0])} + {len(books[1])}")
    assert books[0] and books[1]  # the load is split


async def test_feed_reconnects_and_reports_its_connection_state(broker: Broker) -> None:
    feed = MqttFeed(bus_config(broker, feed=UNSIGNED), ReplayClock(NOW))
    emit = Collector()
    task = await _running(feed, emit)
    broker.kill()
    await wait_for(lambda: any(isinstance(e, FeedStatus) and not e.connected for e in emit.events),
                   what="disconnected status")
    broker.start()
    await wait_for(lambda: feed.stats["sessions"] == 2, what="resubscribed")
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as pub:
        await pub.publish("t/odds/in", orjson.dumps(ODDS), qos=1)
        await wait_for(lambda: len(emit.updates) == 1, what="update after reconnect")
    await _stop(task)
    statuses = [(e.connected, e.stale) for e in emit.events if isinstance(e, FeedStatus)]
    assert statuses == [(True, False), (False, True), (True, False)]
