"""Pinnacle MLB 2016 games file as results (bot/sim/results.py MLB_GAMES): read by the same
loader as the other formats, kickoffs in UTC, real games graded on moneyline, run line and total."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.sim.results import FixtureResult, Results, grade, load_results
from bot.types import FixtureKey, MarketKey, Selection, SettlementStatus

S = SettlementStatus
GAMES = Path(__file__).resolve().parents[1] / "data" / "history" / "mlb" / "mlb2016_games.csv"
# ARI201604050: Colorado Rockies 10 @ Arizona Diamondbacks 5, 2016-04-05T01:40:00Z (corrected)
ARIZONA = FixtureKey("MLB", "Arizona Diamondbacks", "Colorado Rockies", datetime(2016, 4, 5, 1, 40, tzinfo=UTC))


def test_games_file_is_read_with_utc_kickoffs_and_final_scores() -> None:
    results = load_results(GAMES)
    assert len(results) == 5
    assert results[0] == FixtureResult("MLB", "Arizona Diamondbacks", "Colorado Rockies",
                                       datetime(2016, 4, 5, 1, 40, tzinfo=UTC), 5, 10)
    # the doubleheader: two results of the same teams, each found by its own kickoff
    index = Results(results)
    late = FixtureKey("MLB", "Baltimore Orioles", "Oakland Athletics", datetime(2016, 5, 7, 23, 5, tzinfo=UTC))
    found = index.find(late)
    assert found is not None and (found.home_score, found.away_score) == (5, 2)


@pytest.mark.parametrize(("market", "outcome", "status"), [
    (MarketKey("moneyline"), "home", S.LOST),
    (MarketKey("moneyline"), "away", S.WON),
    (MarketKey("spread", line=Decimal("-1.5")), "home", S.LOST),  # 5 - 10 - 1.5 < 0
    (MarketKey("spread", line=Decimal("-1.5")), "away", S.WON),
    (MarketKey("spread", line=Decimal("1.5")), "home", S.LOST),  # even +1.5 does not cover a 5-run loss
    (MarketKey("total", line=Decimal("7.5")), "over", S.WON),  # 15 runs
    (MarketKey("total", line=Decimal("7.5")), "under", S.LOST),
    (MarketKey("total", line=Decimal(15)), "over", S.PUSH),
])
def test_a_known_game_is_graded(market: MarketKey, outcome: str, status: S) -> None:
    result = Results(load_results(GAMES)).find(ARIZONA)
    assert result is not None
    assert grade(Selection(ARIZONA, market, outcome), result) is status
