"""Participants by role (docs/reference/oddspapi.md §1: participant 1 is not always the home team, and
a spread's handicap is stated from participant 1's side): outcomes "1"/"2" and handicap sides follow
the role, and the instrument mapper resolves a selection a strategy builds on its own to the ids
the feed sent (bot/feeds/oddspapi_decode.py, bot/market/mapping.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.feeds.base import FeedStats
from bot.feeds.oddspapi_decode import OddsPapiDecoder
from bot.market.mapping import InstrumentMapper
from bot.sim.oddspapi_server import load_dataset
from bot.types import FixtureKey, Instrument, MarketKey, OddsBatch, OddsUpdate, Selection

DATA = Path(__file__).parents[1] / "data" / "oddspapi"
SOCCER = "id1000002361061419"
NFL = "id1400003162011811"
NOW = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)


def snapshot(p1_away_sports: tuple[int, ...] = (14,), change: Any = None) -> tuple[OddsPapiDecoder, OddsBatch]:
    markets, fixtures = load_dataset(DATA)
    fixtures = copy.deepcopy(fixtures)
    if change is not None:
        change(fixtures)
    decoder = OddsPapiDecoder(FeedStats("oddspapi"), p1_away_sports=p1_away_sports)
    decoder.load_markets(markets)
    return decoder, decoder.snapshot(fixtures, [], NOW)


def by_ids(batch: OddsBatch, fixture: str, book: str = "pinnacle") -> dict[int, OddsUpdate]:
    return {u.instrument.outcome_id: u for u in batch.updates
            if u.instrument is not None and u.instrument.fixture_id == fixture and u.bookmaker == book}


def test_participant_1_away_maps_outcomes_and_handicap_sides_by_role() -> None:
    _, batch = snapshot()
    nfl = by_ids(batch, NFL)
    fixture = nfl[141].selection.fixture
    # participant 1 = Washington Commanders, the visitor: home is participant 2
    assert (fixture.sport, fixture.home, fixture.away) == ("NFL", "Miami Dolphins", "Washington Commanders")
    assert fixture.start_time == datetime(2025, 11, 16, 14, 30, tzinfo=UTC)
    assert (str(nfl[141].selection.market), nfl[141].selection.outcome) == ("moneyline/reg", "away")
    assert (str(nfl[142].selection.market), nfl[142].selection.outcome) == ("moneyline/reg", "home")
    # handicap +2.5 is participant 1's (Washington): the home line is -2.5, both sides on one market
    assert (nfl[14100].selection.market, nfl[14100].selection.outcome) == (MarketKey("spread", "game", Decimal("-2.5")),
                                                                        "away")
    assert (nfl[14101].selection.market, nfl[14101].selection.outcome) == (MarketKey("spread", "game", Decimal("-2.5")),
                                                                        "home")
    assert nfl[14100].price == 1.95 and nfl[14101].price == 1.91
    assert (nfl[14102].selection.market, nfl[14102].selection.outcome) == (MarketKey("total", "game", Decimal("47.5")),
                                                                        "over")

    soccer = by_ids(batch, SOCCER)  # participant 1 = AS Roma, at home
    assert (soccer[101].selection.fixture.home, soccer[101].selection.outcome) == ("AS Roma", "home")
    assert (str(soccer[102].selection.market), soccer[102].selection.outcome) == ("1x2/game", "draw")
    assert soccer[103].selection.outcome == "away"
    assert (soccer[1068].selection.market, soccer[1068].selection.outcome) == (
        MarketKey("spread", "game", Decimal("-0.5")), "home")


def test_the_role_comes_from_the_config_not_from_the_order_of_names() -> None:
    _, batch = snapshot(p1_away_sports=())  # told participant 1 is at home in American football too
    nfl = by_ids(batch, NFL)
    assert nfl[141].selection.fixture.home == "Washington Commanders"
    assert (nfl[14100].selection.market.line, nfl[14100].selection.outcome) == (Decimal("2.5"), "home")
    # the ids do not move with the names
    assert nfl[14100].instrument == Instrument(NFL, 14100, 0)


async def test_mapper_resolves_a_strategys_own_selection_to_the_feeds_ids() -> None:
    _, batch = snapshot()
    mapper = InstrumentMapper()  # no mapping file, no catalogue, no fixture lookup
    fixture = FixtureKey("NFL", "Miami Dolphins", "Washington Commanders", datetime(2025, 11, 16, 14, 30, tzinfo=UTC))
    away_spread = Selection(fixture, MarketKey("spread", "game", Decimal("-2.5")), "away")
    assert await mapper.resolve(away_spread) is None  # unmapped until the feed has sent it
    mapper.learn(batch.updates)
    assert await mapper.resolve(away_spread) == Instrument(NFL, 14100, 0)
    home_spread = Selection(fixture, MarketKey("spread", "game", Decimal("-2.5")), "home")
    assert await mapper.resolve(home_spread) == Instrument(NFL, 14101, 0)
    assert await mapper.resolve(Selection(fixture, MarketKey("moneyline", "reg"), "away")) == Instrument(NFL, 141, 0)


def test_rotated_or_stale_bookmakers_are_withdrawn_not_read() -> None:
    def flag(fixtures: list[dict[str, Any]]) -> None:
        nfl = next(f for f in fixtures if f["fixtureId"] == NFL)
        nfl["bookmakers"]["sharpbet"]["participantsRotated"] = True
        nfl["bookmakers"]["betcris"]["staleOdds"] = True

    decoder, batch = snapshot(change=flag)
    assert all(u.suspended and u.price is None for u in by_ids(batch, NFL, "sharpbet").values())
    assert all(u.suspended for u in by_ids(batch, NFL, "betcris").values())
    assert not any(u.suspended for u in by_ids(batch, NFL, "pinnacle").values())
    assert decoder.stats["rotated_books"] == 1 and decoder.stats["stale_books"] == 1
    assert decoder.stats.bad_total == 0
