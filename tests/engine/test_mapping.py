"""Instrument mapping: the shipped mapping file, the ABP /markets catalogue, fail-closed cases."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.market.mapping import InstrumentMapper, MappingFile
from bot.types import FixtureKey, Instrument, MarketKey, Selection

MAPPING = Path(__file__).parents[1] / "data" / "mapping_nfl_2025-11-16.yaml"
# The Odds API moved this kickoff from 18:00 to the real 18:02 during the day.
BILLS = FixtureKey("NFL", "Buffalo Bills", "Tampa Bay Buccaneers", datetime(2025, 11, 16, 18, 2, tzinfo=UTC))


async def test_mapping_file_resolves_fixture_and_outcome() -> None:
    mapper = InstrumentMapper(MappingFile.load(MAPPING))
    home_ml = await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "home"))
    away_ml = await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "away"))
    assert home_ml == Instrument("id1400003190000003", 14100, 0)
    assert away_ml == Instrument("id1400003190000003", 14101, 0)
    spread = await mapper.resolve(Selection(BILLS, MarketKey("spread", "game", Decimal("-5.5")), "home"))
    assert spread is not None and spread.fixture_id == "id1400003190000003"
    assert spread.outcome_id not in (14100, 14101)


async def test_unknown_fixture_line_or_outcome_is_unmapped() -> None:
    mapper = InstrumentMapper(MappingFile.load(MAPPING))
    other = FixtureKey("NFL", "Tampa Bay Buccaneers", "Buffalo Bills", BILLS.start_time)  # home/away swapped
    assert await mapper.resolve(Selection(other, MarketKey("moneyline"), "home")) is None
    assert await mapper.resolve(Selection(BILLS, MarketKey("spread", "game", Decimal("-99.5")), "home")) is None
    assert await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "draw")) is None
    weeks_later = FixtureKey("NFL", BILLS.home, BILLS.away, datetime(2025, 12, 20, tzinfo=UTC))
    assert await mapper.resolve(Selection(weeks_later, MarketKey("moneyline"), "home")) is None


async def test_catalogue_lookup_by_type_period_handicap_and_name() -> None:
    calls: list[int] = []

    async def markets(sport_id: int) -> list[dict[str, Any]]:
        calls.append(sport_id)
        return [
            {"marketId": 141, "marketType": "moneyline", "period": "result", "handicap": 0, "playerProp": False,
             "oddsTypes": [{"outcomeId": 141, "outcomeName": "1"}, {"outcomeId": 142, "outcomeName": "2"}]},
            {"marketId": 14500, "marketType": "spreads", "period": "result", "handicap": -5.5, "playerProp": False,
             "oddsTypes": [{"outcomeId": 14500, "outcomeName": "1"}, {"outcomeId": 14501, "outcomeName": "2"}]},
            # two markets claiming the same key: ambiguous, must not be used
            {"marketId": 14600, "marketType": "totals", "period": "result", "handicap": 40.5, "playerProp": False,
             "oddsTypes": [{"outcomeId": 14600, "outcomeName": "Over"}]},
            {"marketId": 14700, "marketType": "totals", "period": "result", "handicap": 40.5, "playerProp": False,
             "oddsTypes": [{"outcomeId": 14700, "outcomeName": "Over"}]},
        ]

    mapping = MappingFile.model_validate({
        "fixtures": [{"sport": "NFL", "home": BILLS.home, "away": BILLS.away,
                      "start_time": "2025-11-16T18:00:00Z", "fixture_id": "idX"}],
        "catalogue": {"sport_ids": {"NFL": 14}},
    })
    mapper = InstrumentMapper(mapping, markets_fetch=markets)
    assert await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "away")) == Instrument("idX", 142)
    assert await mapper.resolve(Selection(BILLS, MarketKey("spread", "game", Decimal("-5.5")), "away")) == Instrument("idX", 14501)
    assert await mapper.resolve(Selection(BILLS, MarketKey("total", "game", Decimal("40.5")), "over")) is None
    assert calls == [14]  # the catalogue is loaded once per sport


def test_invalid_mapping_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("fixtures:\n  - {sport: NFL, home: A, away: B, start_time: soon, fixture_id: x}\n")
    with pytest.raises(ValueError, match=r"fixtures\.0\.start_time"):
        MappingFile.load(bad)


async def test_a_failed_lookup_is_not_cached_and_the_next_signal_maps() -> None:
    calls: list[FixtureKey] = []

    async def flaky(fixture: FixtureKey) -> tuple[str, bool] | None:
        calls.append(fixture)
        if len(calls) == 1:
            raise ConnectionError("OddsPapi unreachable")
        return ("id1400003190000003", False)

    mapping = MappingFile.model_validate({"outcomes": [
        {"sport": "NFL", "market": "moneyline", "outcome": "home", "outcome_id": 14100}]})
    mapper = InstrumentMapper(mapping, fixture_lookup=flaky)
    home = Selection(BILLS, MarketKey("moneyline"), "home")
    assert await mapper.resolve(home) is None  # unknown for now: rejected UNMAPPED, not remembered
    assert await mapper.resolve(home) == Instrument("id1400003190000003", 14100, 0)
    assert await mapper.resolve(home) == Instrument("id1400003190000003", 14100, 0) and len(calls) == 2  # cached


async def test_a_rotated_fixture_from_the_lookup_swaps_the_catalogue_outcome() -> None:
    async def rotated(fixture: FixtureKey) -> tuple[str, bool] | None:
        return ("id1400003190000003", True)  # participant 1 is our away team

    async def markets(sport_id: int) -> list[dict[str, Any]]:
        return [{"marketType": "moneyline", "period": "result", "handicap": 0,
                 "oddsTypes": [{"outcomeId": 141, "outcomeName": "1"}, {"outcomeId": 142, "outcomeName": "2"}]}]

    mapping = MappingFile.model_validate({"catalogue": {"sport_ids": {"NFL": 14},
                                                        "market_types": {"moneyline": ["moneyline", "result"]}}})
    mapper = InstrumentMapper(mapping, markets_fetch=markets, fixture_lookup=rotated)
    home = await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "home"))
    away = await mapper.resolve(Selection(BILLS, MarketKey("moneyline"), "away"))
    assert (home, away) == (Instrument("id1400003190000003", 142, 0), Instrument("id1400003190000003", 141, 0))
