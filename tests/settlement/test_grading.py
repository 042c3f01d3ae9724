"""Grading bets from final scores, on the bundled real NFL results and by invariants."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.sim.results import FixtureResult, Results, grade, lay_status, load_results
from bot.types import FixtureKey, MarketKey, Selection
from bot.types import SettlementStatus as S

DATA = Path(__file__).parents[2] / "bot" / "data"
KICKOFF = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)


def _sel(fixture: FixtureKey, type_: str, outcome: str, line: str | None = None) -> Selection:
    return Selection(fixture, MarketKey(type_, "game", None if line is None else Decimal(line)), outcome)


def _grade_both(
    home: int, away: int, market: str, outcomes: tuple[str, str], line: Decimal
) -> tuple[S | None, S | None]:
    """Grades of a market's two outcomes at `line` for a home-away score."""
    fixture = FixtureKey("NFL", "A", "B", KICKOFF)
    result = FixtureResult("NFL", "A", "B", KICKOFF, home, away)
    first, second = (grade(_sel(fixture, market, o, str(line)), result) for o in outcomes)
    return first, second


def test_real_nfl_results_grade_bills_buccaneers() -> None:
    results = Results(load_results(DATA / "nfl_results_2025-11-16.csv"))
    # The Odds API moved commence_time to the real kickoff (18:02): still the same game.
    fixture = FixtureKey("NFL", "Buffalo Bills", "Tampa Bay Buccaneers", datetime(2025, 11, 16, 18, 2, tzinfo=UTC))
    result = results.find(fixture)
    assert result is not None and (result.home_score, result.away_score) == (44, 32)
    assert grade(_sel(fixture, "moneyline", "home"), result) is S.WON
    assert grade(_sel(fixture, "moneyline", "away"), result) is S.LOST
    assert grade(_sel(fixture, "spread", "home", "-5.5"), result) is S.WON  # 44-32 = 12 > 5.5
    assert grade(_sel(fixture, "spread", "away", "-12"), result) is S.PUSH
    assert grade(_sel(fixture, "total", "over", "76.5"), result) is S.LOST  # total 76
    assert grade(_sel(fixture, "total", "under", "76.5"), result) is S.WON
    assert grade(_sel(fixture, "total", "over", "76"), result) is S.PUSH
    assert len(results) == 28


def test_quarter_lines_split_into_half_results() -> None:
    fixture = FixtureKey("E0", "Arsenal", "Chelsea", KICKOFF)
    one_nil = FixtureResult("E0", "Arsenal", "Chelsea", KICKOFF, 1, 0)
    assert grade(_sel(fixture, "spread", "home", "-1.25"), one_nil) is S.HALF_LOST
    assert grade(_sel(fixture, "spread", "home", "-0.75"), one_nil) is S.HALF_WON
    assert grade(_sel(fixture, "spread", "away", "-0.75"), one_nil) is S.HALF_LOST  # away gets +0.75
    assert grade(_sel(fixture, "total", "over", "1.25"), one_nil) is S.HALF_LOST
    assert grade(_sel(fixture, "total", "under", "0.75"), one_nil) is S.HALF_LOST
    draw = FixtureResult("E0", "Arsenal", "Chelsea", KICKOFF, 2, 2)
    assert grade(_sel(fixture, "1x2", "draw"), draw) is S.WON
    assert grade(_sel(fixture, "moneyline", "home"), draw) is S.PUSH


def test_unknown_fixture_and_ungradable_markets() -> None:
    results = Results([FixtureResult("NFL", "A", "B", KICKOFF, 10, 7)])
    assert results.find(FixtureKey("NFL", "B", "A", KICKOFF)) is None  # home/away matter
    assert results.find(FixtureKey("NFL", "A", "B", datetime(2025, 12, 16, tzinfo=UTC))) is None
    fixture = FixtureKey("NFL", "A", "B", KICKOFF)
    result = results.find(fixture)
    assert result is not None
    assert grade(Selection(fixture, MarketKey("moneyline", "1h"), "home"), result) is None
    assert grade(_sel(fixture, "player_points", "Someone over", "20.5"), result) is None


quarter_lines = st.integers(-40, 40).map(lambda q: Decimal(q) / 4)
scores = st.integers(0, 60)


@given(home=scores, away=scores, line=quarter_lines)
def test_spread_sides_mirror_each_other(home: int, away: int, line: Decimal) -> None:
    home_status, away_status = _grade_both(home, away, "spread", ("home", "away"), line)
    assert home_status is not None and away_status == lay_status(home_status)


@given(home=scores, away=scores, line=quarter_lines.map(abs))
def test_total_over_under_mirror_and_match_arithmetic(home: int, away: int, line: Decimal) -> None:
    over, under = _grade_both(home, away, "total", ("over", "under"), line)
    assert over is not None and under == lay_status(over)
    if line % 1 == Decimal("0.5"):
        assert over is (S.WON if home + away > line else S.LOST)
