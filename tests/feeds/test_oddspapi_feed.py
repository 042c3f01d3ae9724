"""The OddsPapi v5 feed against the local OddsPapi server on loopback (bot/feeds/oddspapi.py,
bot/sim/oddspapi_server.py; docs/reference/oddspapi.md §5-§6): the REST snapshot is one complete
batch in ABP's own ids; WebSocket odds frames follow; a dropped socket is reconnected with a new
snapshot and a new login carrying the same filters and the resume point; malformed frames are
dropped and counted; rate limits are waited out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from bot.clock import WallClock
from bot.feeds.config import OddsPapiConfig
from bot.feeds.oddspapi import OddsPapiFeed
from bot.sim.oddspapi_server import LocalOddsPapiServer, load_dataset
from bot.types import FeedEvent, FeedStatus, OddsBatch

DATA = Path(__file__).parents[1] / "data" / "oddspapi"
SOCCER = "id1000002361061419"
NFL = "id1400003162011811"
BOOKS = ("pinnacle", "sharpbet", "betcris")
TIMEOUT = 10.0


@dataclass
class Running:
    server: LocalOddsPapiServer
    feed: OddsPapiFeed
    task: asyncio.Task[None]
    events: list[FeedEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def emit(self, event: FeedEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, predicate: Callable[[FeedEvent], bool], after: int = 0) -> tuple[int, FeedEvent]:
        """The first event from index `after` on that matches, waiting for it (never a fixed sleep)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for index in range(after, len(self.events)):
                    if predicate(self.events[index]):
                        return index, self.events[index]
                after = len(self.events)
                self.changed.clear()
                if self.task.done():
                    self.task.result()
                await self.changed.wait()


def feed_config(server: LocalOddsPapiServer, base_url: str, **changes: Any) -> OddsPapiConfig:
    values: dict[str, Any] = {
        "base_url": base_url, "ws_url": server.ws_url, "api_key": SecretStr(server.api_key),
        "sport_ids": (10, 14), "bookmakers": BOOKS, "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2, "login_timeout_seconds": 5.0,
    }
    return OddsPapiConfig(**(values | changes))


def make_server(**options: Any) -> LocalOddsPapiServer:
    markets, fixtures = load_dataset(DATA)
    return LocalOddsPapiServer(markets, fixtures, rebase=datetime.now(UTC) + timedelta(hours=2), **options)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    server = make_server()
    base_url = await server.start()
    feed = OddsPapiFeed(feed_config(server, base_url), WallClock())
    holder: dict[str, Running] = {}

    async def emit(event: FeedEvent) -> None:
        await holder["r"].emit(event)

    task = asyncio.create_task(feed.run(emit))
    holder["r"] = run = Running(server, feed, task)
    try:
        yield run
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()


def is_snapshot(event: FeedEvent) -> bool:
    return isinstance(event, OddsBatch) and event.complete


def odds_entry(fixture: str, book: str, outcome: int, price: float, **extra: Any) -> dict[str, dict[str, Any]]:
    return {f"{fixture}:{book}:{outcome}:0": {"bookmaker": book, "outcomeId": outcome, "playerId": 0,
                                             "price": price, "active": True, "marketActive": True, **extra}}


async def test_snapshot_is_one_complete_batch_in_abp_ids(running: Running) -> None:
    _, batch = await running.wait_for(is_snapshot)
    assert isinstance(batch, OddsBatch)
    # 3 books x (7 soccer + 6 NFL outcomes), every one with the ids ABP orders name
    assert len(batch.updates) == 39
    ids = {(u.instrument.fixture_id, u.instrument.outcome_id, u.instrument.player_id, u.bookmaker)
           for u in batch.updates if u.instrument is not None}
    assert len(ids) == 39
    assert (SOCCER, 103, 0, "betcris") in ids and (NFL, 14100, 0, "betcris") in ids
    away_soccer = next(u for u in batch.updates if u.instrument and u.instrument.outcome_id == 103
                       and u.bookmaker == "betcris")
    assert away_soccer.price == 7.6 and not away_soccer.suspended
    assert str(away_soccer.selection.market) == "1x2/game" and away_soccer.selection.outcome == "away"
    assert away_soccer.selection.fixture.sport == "Serie A"
    # the documented REST flow: catalogue, fixtures, then odds per fixture with <= 5 books and the key
    paths = [p for p, _ in running.server.requests]
    assert paths[:3] == ["/en/markets", "/en/markets", "/en/fixtures"]
    odds_queries = [q for p, q in running.server.requests if p == "/en/fixtures/odds"]
    assert sorted(q["fixtureId"] for q in odds_queries) == sorted([SOCCER, NFL])
    assert all(q["bookmakers"] == "pinnacle,sharpbet,betcris" for q in odds_queries)


async def test_ws_odds_frame_is_one_batch_and_withdrawals_are_suspended(running: Running) -> None:
    await running.server.wait_logins(1)
    start, _ = await running.wait_for(is_snapshot)
    update = odds_entry(SOCCER, "betcris", 103, 7.8) | odds_entry(SOCCER, "betcris", 101, 1.47, active=False)
    running.server.publish(SOCCER, {"betcris": update})
    _, batch = await running.wait_for(lambda e: isinstance(e, OddsBatch) and not e.complete, after=start + 1)
    assert isinstance(batch, OddsBatch)
    by_outcome = {u.instrument.outcome_id: u for u in batch.updates if u.instrument}
    assert by_outcome[103].price == 7.8 and by_outcome[103].selection.outcome == "away"
    assert by_outcome[101].suspended and by_outcome[101].price is None


async def test_reconnect_after_drop_resubscribes_with_a_new_snapshot(running: Running) -> None:
    server = running.server
    await server.wait_logins(1)
    first_snapshot, _ = await running.wait_for(is_snapshot)
    entry = server.publish(NFL, {"betcris": odds_entry(NFL, "betcris", 14100, 2.12)})
    seen, _ = await running.wait_for(lambda e: isinstance(e, OddsBatch) and not e.complete, after=first_snapshot + 1)

    assert server.drop() == 1
    stale, status = await running.wait_for(lambda e: isinstance(e, FeedStatus), after=seen + 1)
    assert isinstance(status, FeedStatus) and status.stale and not status.connected
    await server.wait_logins(2)  # the resubscription, awaited
    again, snapshot = await running.wait_for(is_snapshot, after=stale + 1)
    assert isinstance(snapshot, OddsBatch) and len(snapshot.updates) == 39
    first, second = server.logins
    for key in ("channels", "sportIds", "bookmakers", "receiveType", "lang"):
        assert second[key] == first[key]
    assert first["channels"] == ["odds"] and first["sportIds"] == [10, 14]
    assert second["serverEpoch"] == server.epoch and second["lastSeenId"] == {"odds": entry}
    assert running.feed.stats["reconnects"] == 1 and running.feed.logins == 2
    # the new connection carries new prices
    await server.wait_connections(1)
    server.publish(NFL, {"betcris": odds_entry(NFL, "betcris", 14100, 2.2)})
    _, batch = await running.wait_for(lambda e: isinstance(e, OddsBatch) and not e.complete
                                      and any(u.price == 2.2 for u in e.updates), after=again + 1)
    assert isinstance(batch, OddsBatch)
    assert batch.updates[0].instrument is not None and batch.updates[0].instrument.outcome_id == 14100


async def test_malformed_ws_messages_are_dropped_and_counted(running: Running) -> None:
    server, stats = running.server, running.feed.stats
    await server.wait_logins(1)
    start, _ = await running.wait_for(is_snapshot)
    server.send_raw("{not json")
    server.send_raw("[1, 2]")
    bad_price = {"pinnacle": {"x": {"outcomeId": 101, "playerId": 0, "price": "abc"}}}
    unknown = {"pinnacle": {"y": {"outcomeId": 999999, "playerId": 0, "price": 2.0}}}
    for odds in (bad_price, unknown):
        frame = {"channel": "odds", "type": "UPDATE", "payload": {"fixtureId": SOCCER, "odds": odds}}
        server.send_raw(orjson.dumps(frame).decode())
    server.publish(SOCCER, {"pinnacle": odds_entry(SOCCER, "pinnacle", 102, 4.4)})
    _, batch = await running.wait_for(lambda e: isinstance(e, OddsBatch) and not e.complete, after=start + 1)
    assert isinstance(batch, OddsBatch) and [u.price for u in batch.updates] == [4.4]
    assert stats["malformed_json"] == 1 and stats["unknown_message"] == 1
    assert stats["bad_outcome"] == 1 and stats["unknown_outcome"] == 1
    assert not running.task.done() and stats["reconnects"] == 0 and running.feed.logins == 1


async def test_rate_limit_answers_are_waited_out() -> None:
    server = make_server()
    base_url = await server.start()
    server.faults_429 = 2
    feed = OddsPapiFeed(feed_config(server, base_url), WallClock())
    events: list[FeedEvent] = []

    async def emit(event: FeedEvent) -> None:
        events.append(event)

    try:
        await asyncio.wait_for(feed.snapshot(emit), TIMEOUT)
    finally:
        await feed.rest.aclose()
        await server.stop()
    assert feed.stats["rate_limited"] == 2
    assert len(events) == 1 and isinstance(events[0], OddsBatch) and len(events[0].updates) == 39


async def test_a_fixture_that_leaves_the_board_is_cleared_and_missing_quotes_withdrawn(running: Running) -> None:
    first, _ = await running.wait_for(is_snapshot)
    server = running.server
    await server.wait_logins(1)
    del server.fixtures[NFL]
    del server.fixtures[SOCCER]["odds"]["sharpbet"]
    assert server.drop() == 1
    _, snapshot = await running.wait_for(is_snapshot, after=first + 1)
    assert isinstance(snapshot, OddsBatch)
    assert [c.fixture.away for c in snapshot.cleared if c.fixture] == ["Washington Commanders"]
    withdrawn = [u for u in snapshot.updates if u.suspended]
    assert {u.bookmaker for u in withdrawn} == {"sharpbet"} and len(withdrawn) == 7


async def test_snapshot_required_reloads_and_reconnect_frame_reconnects(running: Running) -> None:
    server = running.server
    await server.wait_logins(1)
    first, _ = await running.wait_for(is_snapshot)
    server.send_raw('{"type": "snapshot_required", "channels": ["odds"]}')
    again, _ = await running.wait_for(is_snapshot, after=first + 1)
    assert running.feed.logins == 1 and running.feed.stats["snapshot_required"] == 1
    server.send_raw('{"type": "reconnect"}')
    await server.wait_logins(2)
    await running.wait_for(is_snapshot, after=again + 1)
    assert running.feed.stats["reconnects"] == 1


def test_config_needs_a_fixture_filter_and_bookmakers() -> None:
    with pytest.raises(ValueError, match="set sport_ids, tournament_ids or fixture_ids"):
        OddsPapiConfig(api_key=SecretStr("k"), bookmakers=("pinnacle",))
    with pytest.raises(ValueError, match="bookmakers"):
        OddsPapiConfig(api_key=SecretStr("k"), sport_ids=(10,), bookmakers=())
