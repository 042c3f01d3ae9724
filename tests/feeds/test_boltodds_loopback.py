"""The real BoltOdds frames served by the local protocol server over a real loopback
WebSocket into BoltOddsFeed -> OddsBook: handshake, filters, REST discovery, reconnects."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Self

import orjson
import pytest
from pydantic import SecretStr

from bot.clock import WallClock
from bot.feeds.boltodds import BoltOddsFeed
from bot.feeds.boltodds_rest import BoltOddsRest, unknown_filters
from bot.feeds.config import BoltOddsConfig
from bot.market.book import OddsBook
from bot.sim.bolt_server import BoltServer, load_frames
from bot.types import FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsUpdate, Selection

from .conftest import BOLT_SAMPLES, unbatched

KEY = "test-key"
VIKINGS = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 9, 9, 0, 15, tzinfo=UTC))
VIKINGS_ML = Selection(VIKINGS, MarketKey("moneyline"), "away")
TARGU_UNDER = Selection(
    FixtureKey("Challenger Targu Mures", "Jack Loge", "Imanol Lopez Morillo", datetime(2025, 9, 8, 9, 20, tzinfo=UTC)),
    MarketKey("total sets", "game", Decimal("2.5")),
    "under",
)


def config(server: BoltServer, **kw: object) -> BoltOddsConfig:
    base: dict[str, object] = {
        "url": server.url, "rest_url": server.rest_url, "api_key": SecretStr(KEY),
        "reconnect_initial_seconds": 0.01, "reconnect_max_seconds": 0.05, "check_filters": False,
    }
    return BoltOddsConfig(**{**base, **kw})


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait (a safety limit, not a timing assertion) until `predicate` holds."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.005)


class Harness:
    """Runs a feed into a book and keeps every event."""

    def __init__(self, feed: BoltOddsFeed) -> None:
        self.feed, self.book = feed, OddsBook(WallClock())
        self.events: list[FeedEvent] = []
        self.stale_seen_during_gap: list[bool] = []

    async def emit(self, event: FeedEvent) -> None:
        self.events.extend(unbatched([event]))
        self.book.apply(event)
        if isinstance(event, FeedStatus) and event.stale:
            q = self.book.quote(VIKINGS_ML, "draftkings")
            self.stale_seen_during_gap.append(q is not None and q.stale and not q.usable)

    def __enter__(self) -> Self:
        self.task = asyncio.get_running_loop().create_task(self.feed.run(self.emit))
        return self

    def __exit__(self, *exc: object) -> None:
        self.task.cancel()


async def test_real_frames_over_loopback_into_the_book() -> None:
    frames = load_frames(BOLT_SAMPLES)
    async with BoltServer(frames, api_key=KEY, ping_interval=None) as server:
        with Harness(BoltOddsFeed(config(server, sportsbooks=["draftkings", "bodog", "bovada", "neobet"]),
                                  WallClock())) as h:
            await until(lambda: server.finished.is_set() and h.book.quote(TARGU_UNDER, "bovada") is not None,
                        "all frames")
            q = h.book.quote(VIKINGS_ML, "draftkings")
            assert q is not None and q.american == -122 and round(q.price or 0, 4) == 1.8197 and q.usable
            # The real line_update with "odds": null suspends the selection (both books).
            for book in ("bodog", "bovada"):
                under = h.book.quote(TARGU_UNDER, book)
                assert under is not None and under.suspended and not under.usable
            assert server.subscriptions == [{"sportsbooks": ["draftkings", "bodog", "bovada", "neobet"]}]
            assert h.feed.stats.bad_total == 0 and h.feed.stats["updates"] == 1910


async def test_filters_are_applied_by_the_server() -> None:
    async with BoltServer(load_frames(BOLT_SAMPLES), ping_interval=None) as server:
        with Harness(BoltOddsFeed(config(server, sports=["NFL"], markets=["Moneyline"]), WallClock())) as h:
            await until(lambda: server.finished.is_set() and len(h.book) >= 6, "moneylines")
            await asyncio.sleep(0.05)
            updates = [e for e in h.events if isinstance(e, OddsUpdate)]
            assert {u.selection.fixture.sport for u in updates} == {"NFL"}
            assert {u.selection.market for u in updates} == {MarketKey("moneyline")}
            assert len(updates) == 6  # two per NFL game


async def test_rest_discovery_warns_about_unknown_filter_names() -> None:
    info = orjson.loads((BOLT_SAMPLES.parent / "info_snapshot.json").read_bytes())
    async with BoltServer(load_frames(BOLT_SAMPLES), api_key=KEY, info=info, ping_interval=None) as server:
        cfg = config(server, sports=["NFL", "NFLL"], sportsbooks=["draftkings", "draftking"],
                     markets=["Moneyline", "Total"], games=["Chicago Bears vs Minnesota Vikings, 2025-09-08, 08",
                                                           "Bears vs Vikings"])
        async with BoltOddsRest(cfg) as rest:
            assert len((await rest.get_info())["sportsbooks"]) == 22
            games = await rest.get_games(["NFL"])
            assert games["Chicago Bears vs Minnesota Vikings, 2025-09-08, 08"]["when"] == "2025-09-08, 08:15 PM"
            assert "Total Points" in (await rest.get_markets(["NFL"], ["draftkings"]))["draftkings"]["NFL"]
            problems = await unknown_filters(cfg, rest)
        assert problems == [
            "sports: 'NFLL' is not offered (get_info)",
            "sportsbooks: 'draftking' is not offered (get_info)",
            "markets: 'Total' is not offered (get_markets)",
            "games: 'Bears vs Vikings' is not listed (get_games)",
        ]
        bad_key = BoltOddsConfig(**{**cfg.model_dump(), "api_key": SecretStr("wrong")})
        async with BoltOddsRest(bad_key) as rest:
            with pytest.raises(Exception, match="HTTP 401"):
                await rest.get_info()


@pytest.mark.parametrize("markets_answer", [["Moneyline", "Total Points"], {"draftkings": ["Moneyline"]}, "oops"])
async def test_an_unexpected_discovery_shape_is_one_warning_and_the_feed_streams_on(
    markets_answer: object, warnings: list[str]
) -> None:
    async with BoltServer(load_frames(BOLT_SAMPLES), api_key=KEY, ping_interval=None,
                          answers={"get_markets": markets_answer}) as server:
        cfg = config(server, sportsbooks=["draftkings"], markets=["Moneyline"], check_filters=True)
        async with BoltOddsRest(cfg) as rest:
            with pytest.raises(Exception, match="get_markets: unexpected answer shape"):
                await unknown_filters(cfg, rest)
        with Harness(BoltOddsFeed(cfg, WallClock())) as h:
            await until(lambda: server.finished.is_set() and h.book.quote(VIKINGS_ML, "draftkings") is not None,
                        "the frames after the failed check")
    assert [w for w in warnings if "could not check the filters" in w and "get_markets" in w]


async def test_reconnect_marks_stale_resubscribes_and_refreshes_without_duplicates() -> None:
    frames = load_frames(BOLT_SAMPLES)  # 3 initial_state, then 6 tennis updates in time order
    async with BoltServer(frames, api_key=KEY, ping_interval=None, drop_after=[4]) as server:
        filters = {"sportsbooks": ["draftkings", "bodog", "bovada", "neobet"]}
        with Harness(BoltOddsFeed(config(server, **filters), WallClock())) as h:
            await until(lambda: server.finished.is_set() and h.feed.stats["frames"] >= 2 + 4 + 5 + 4,
                        "the stream after the reconnect")
            await asyncio.sleep(0.05)
            # Reconnected and resubscribed with the same filters.
            assert server.connections == 2 and h.feed.subscriptions == 2
            assert server.subscriptions == [filters, filters]
            # The drop marked the book stale: the Vikings price was not usable in the gap.
            assert h.stale_seen_during_gap == [True]
            # The snapshot after the resubscription refreshed it.
            q = h.book.quote(VIKINGS_ML, "draftkings")
            assert q is not None and q.usable and q.american == -122
            # No update applied twice: every streamed frame's updates arrived exactly once.
            streamed = [orjson.loads(f) for f in frames]
            expected = Counter({datetime.fromisoformat(f["timestamp"]): len(f["data"]["outcomes"]) for f in streamed})
            got = Counter(e.feed_time for e in h.events if isinstance(e, OddsUpdate))
            assert {t: got[t] for t in expected} == dict(expected)
            # ... and the only other updates are the snapshot's (one initial_state per game).
            snapshot = sum(n for t, n in got.items() if t not in expected)
            assert snapshot == 1784 + 97 + 6 + 1


async def test_dead_connection_is_detected_and_replaced() -> None:
    async with BoltServer([], ping_interval=None) as server:
        with Harness(BoltOddsFeed(config(server, dead_after_seconds=0.2), WallClock())) as h:
            await until(lambda: server.connections >= 2, "a second connection")
            lost = [e for e in h.events if isinstance(e, FeedStatus)]
            assert lost and lost[0].stale and not lost[0].connected and "no frame" in lost[0].detail
            assert h.feed.stats["reconnects"] >= 1


async def test_pings_keep_a_quiet_connection_alive_and_confirm_prices() -> None:
    async with BoltServer(load_frames(BOLT_SAMPLES)[:1], ping_interval=0.02) as server:
        with Harness(BoltOddsFeed(config(server, dead_after_seconds=0.5), WallClock())) as h:
            await until(lambda: h.feed.stats["pings"] >= 3, "three pings")
            assert server.connections == 1 and h.feed.stats["reconnects"] == 0
            alive = [e for e in h.events if isinstance(e, FeedStatus)]
            assert all(e.connected and not e.stale for e in alive)


async def test_bad_frames_over_the_wire_are_counted_and_the_feed_keeps_running() -> None:
    real = load_frames(BOLT_SAMPLES)
    bad_odds = orjson.loads(real[-1])
    key = next(iter(bad_odds["data"]["outcomes"]))
    bad_odds["data"]["outcomes"][key]["odds"] = "abc"
    junk = ["{not json", '{"action": "mystery"}', '{"action": "line_update"}', real[0],
            orjson.dumps(bad_odds).decode(), '{"action": "error", "message": "overloaded"}']
    async with BoltServer(junk + real[1:], ping_interval=None) as server:
        cfg = config(server, max_frame_bytes=100_000)  # the Vikings initial_state is ~600 kB
        with Harness(BoltOddsFeed(cfg, WallClock())) as h:
            await until(lambda: server.finished.is_set() and h.book.quote(TARGU_UNDER, "bovada") is not None,
                        "the good frames after the junk")
            s = h.feed.stats
            assert (s["malformed_json"], s["unknown_action"], s["missing_field"]) == (1, 1, 1)
            assert (s["oversized"], s["bad_outcome"], s["server_error"]) == (1, 1, 1)
            assert s["reconnects"] == 0 and server.connections == 1
            # Everything else got through, the good outcomes of the bad-odds frame included.
            assert s["updates"] == (1910 - 1784) + (len(bad_odds["data"]["outcomes"]) - 1)
