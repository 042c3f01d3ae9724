"""One loader for every results file: the format is told by the header (nflverse games.csv,
football-data.co.uk), and the `settlement` config section reads all its files through it."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config.settings import SettlementConfig
from bot.sim.results import FixtureResult, load_results
from bot.sim.settlement import configured_results
from bot.types import FixtureKey

DATA = Path(__file__).parents[2] / "bot" / "data"
NFL_HEADER = "game_id,season,week,gameday,gametime,away_team,away_score,home_team,home_score\n"
FOOTBALL_DATA = (
    "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR\n"
    "E0,11/08/2023,20:00,Burnley,Man City,0,3,A\n"
    "SP1,12/11/2023,,Real Madrid,Valencia,5.0,1.0,H\n"  # no time: 15:00 UK; "5.0" is 5
    "E0,19/05/2024,16:00,Arsenal,Everton,,,\n"  # not played yet: skipped
)


def test_nflverse_file_is_read_with_team_names_and_eastern_kickoffs() -> None:
    results = load_results(DATA / "nfl_results_2025-11-16.csv")
    assert len(results) == 28
    dolphins = next(r for r in results if r.home == "Miami Dolphins")
    # 09:30 US Eastern (EST in November) is 14:30 UTC; WAS becomes the feeds' full name.
    assert dolphins == FixtureResult("NFL", "Miami Dolphins", "Washington Commanders",
                                     datetime(2025, 11, 16, 14, 30, tzinfo=UTC), 16, 13)


def test_football_data_file_is_read_by_the_same_loader(tmp_path: Path) -> None:
    path = tmp_path / "E0.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(FOOTBALL_DATA)
    assert load_results(path) == [
        FixtureResult("E0", "Burnley", "Man City", datetime(2023, 8, 11, 19, 0, tzinfo=UTC), 0, 3),  # BST
        FixtureResult("SP1", "Real Madrid", "Valencia", datetime(2023, 11, 12, 15, 0, tzinfo=UTC), 5, 1),  # GMT
    ]


def test_team_names_beside_the_results_file_win_over_the_bundled_ones(tmp_path: Path) -> None:
    (tmp_path / "games.csv").write_text(NFL_HEADER + "g1,2025,11,2025-11-16,13:00,TB,32,BUF,44\n"
                                                     "g2,2025,11,2025-11-16,16:25,SEA,21,LA,19\n")
    (tmp_path / "nfl_team_names.csv").write_text("abbr,full_name\nBUF,Bills\n")
    assert [(r.home, r.away) for r in load_results(tmp_path / "games.csv")] == [("Bills", "TB"), ("LA", "SEA")]


def test_a_file_of_no_known_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "odds.csv"
    path.write_text("Div,Date,HomeTeam,AwayTeam,FTR\nE0,11/08/2023,Burnley,Man City,A\n")  # no scores
    with pytest.raises(ValueError, match=r"odds\.csv: not a results file .*nflverse games\.csv, football-data"):
        load_results(path)


def test_config_reads_every_configured_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "E0.csv").write_text(FOOTBALL_DATA)
    cfg = SettlementConfig(nfl_results=DATA / "nfl_results_2025-11-16.csv", football_data_results=Path("E0.csv"))
    results = configured_results(cfg, tmp_path)
    assert results is not None and len(results) == 28 + 2
    kickoff = datetime(2023, 8, 11, 19, 0, tzinfo=UTC)
    found = results.find(FixtureKey("E0", "Burnley", "Man City", kickoff))
    assert found is not None and (found.home_score, found.away_score) == (0, 3)
    assert configured_results(SettlementConfig(), tmp_path) is None


def test_config_error_names_the_field(tmp_path: Path) -> None:
    cfg = SettlementConfig(football_data_results=Path("missing.csv"))
    with pytest.raises(ValueError, match=r"^settlement\.football_data_results: .*missing\.csv"):
        configured_results(cfg, tmp_path)
