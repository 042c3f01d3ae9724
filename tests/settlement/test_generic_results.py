"""The generic results CSV (docs/reference/odds-csv.md, "Results file") through the one loader:
real Premier League scores grade 1x2 markets as football-data.co.uk's own full-time result says,
a void, postponed or abandoned fixture voids every bet on it, and a bad row is refused by file and
line. The `settlement` section reads these files and validates its `unresolved` policy."""

from __future__ import annotations

import csv
import gzip
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config.errors import ConfigError
from bot.config.settings import SettlementConfig, load_settings
from bot.sim.results import FixtureResult, Results, grade, lay_status, load_results
from bot.sim.settlement import configured_results
from bot.types import FixtureKey, MarketKey, Selection
from bot.types import SettlementStatus as S

TESTS_DATA = Path(__file__).parents[1] / "data"
RESULTS = TESTS_DATA / "results" / "epl_2023-24_results.csv"
FOOTBALL_DATA = TESTS_DATA / "football_data" / "top5_2023-24_closing_1x2.csv.gz"
HEADER = "sport,home,away,start_time,home_score,away_score,status\n"


def _1x2(fixture: FixtureKey, outcome: str, period: str = "game") -> Selection:
    return Selection(fixture, MarketKey("1x2", period), outcome)


def _key(result: FixtureResult) -> FixtureKey:
    return FixtureKey(result.sport, result.home, result.away, result.start_time)


def test_the_generic_file_is_read_plain_and_gzipped(tmp_path: Path) -> None:
    results = load_results(RESULTS)
    assert len(results) == 12
    assert results[0] == FixtureResult("EPL", "Burnley", "Man City", datetime(2023, 8, 11, 19, 0, tzinfo=UTC), 0, 3)
    abandoned = results[10]
    assert (abandoned.home, abandoned.status, abandoned.home_score, abandoned.away_score) == (
        "Luton", "abandoned", None, None)
    gz = tmp_path / "results.csv.gz"
    with RESULTS.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert load_results(gz) == results


def test_1x2_grades_agree_with_football_data_full_time_results() -> None:
    """Every final row graded home / draw / away: exactly the outcome football-data.co.uk's FTR
    (H, D, A) names WINS, the other two LOSE; a 1x2 market is graded in regular time ("reg")
    as in the full game."""
    with gzip.open(FOOTBALL_DATA, "rt", newline="") as f:
        ftr = {(r["HomeTeam"], r["AwayTeam"], r["Date"]): r["FTR"] for r in csv.DictReader(f) if r["Div"] == "E0"}
    checked = set()
    for result in load_results(RESULTS):
        played = ftr.get((result.home, result.away, f"{result.start_time:%d/%m/%Y}"))
        if result.status != "final" or played is None:
            continue
        expected = {"H": "home", "D": "draw", "A": "away"}[played]
        for period in ("game", "reg"):
            grades = {o: grade(_1x2(_key(result), o, period), result) for o in ("home", "draw", "away")}
            assert grades == {o: S.WON if o == expected else S.LOST for o in grades}, (result, played)
        checked.add(expected)
    assert checked == {"home", "draw", "away"}  # the extract has all three results


def test_1x2_on_named_real_matches() -> None:
    results = Results(load_results(RESULTS))
    chelsea = FixtureKey("EPL", "Chelsea", "Liverpool", datetime(2023, 8, 13, 15, 30, tzinfo=UTC))
    burnley = FixtureKey("EPL", "Burnley", "Man City", datetime(2023, 8, 11, 19, 0, tzinfo=UTC))
    found_chelsea, found_burnley = results.find(chelsea), results.find(burnley)
    assert found_chelsea is not None and found_burnley is not None
    assert grade(_1x2(chelsea, "draw"), found_chelsea) is S.WON  # 1-1
    assert grade(_1x2(chelsea, "home"), found_chelsea) is S.LOST
    assert grade(_1x2(burnley, "away"), found_burnley) is S.WON  # 0-3
    assert lay_status(S.WON) is S.LOST
    assert grade(_1x2(burnley, "over"), found_burnley) is None  # not a 1x2 outcome: ungradable
    assert results.gradable(_1x2(burnley, "away")) and not results.gradable(_1x2(burnley, "over"))


def test_abandoned_match_voids_every_bet_and_its_replay_grades() -> None:
    results = Results(load_results(RESULTS))
    abandoned = FixtureKey("EPL", "Luton", "Bournemouth", datetime(2023, 12, 16, 15, 0, tzinfo=UTC))
    replay = FixtureKey("EPL", "Luton", "Bournemouth", datetime(2024, 4, 6, 14, 0, tzinfo=UTC))
    first, second = results.find(abandoned), results.find(replay)
    assert first is not None and second is not None and first != second
    for selection in (_1x2(abandoned, "home"), _1x2(abandoned, "draw"),
                      Selection(abandoned, MarketKey("total", "game", Decimal("2.5")), "over"),
                      Selection(abandoned, MarketKey("corners", "1h"), "over")):
        assert grade(selection, first) is S.VOID
    assert lay_status(S.VOID) is S.VOID
    assert grade(_1x2(replay, "home"), second) is S.WON  # 2-1


@pytest.mark.parametrize("status", ["void", "postponed", "abandoned", "POSTPONED"])
def test_every_non_final_status_voids(tmp_path: Path, status: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(HEADER + f"EPL,A,B,2024-01-01T15:00:00+00:00,,,{status}\n")
    [result] = load_results(path)
    fixture = _key(result)
    assert result.status == status.lower()
    assert grade(_1x2(fixture, "away"), result) is S.VOID


def test_unplayed_rows_are_skipped_and_fixture_ids_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("fixture_id," + HEADER + "f1,EPL,A,B,2024-01-01T15:00:00Z,2.0,0,\n"  # empty status: final
                                             "f2,EPL,C,D,2024-01-01T15:00:00Z,,,\n")  # not played yet
    assert load_results(path) == [
        FixtureResult("EPL", "A", "B", datetime(2024, 1, 1, 15, 0, tzinfo=UTC), 2, 0, "final", "f1")]


def test_a_row_with_only_a_fixture_id_joins_through_the_odds_file_ids(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("fixture_id,home_score,away_score,status\nf9,1,1,final\n")
    key = FixtureKey("EPL", "A", "B", datetime(2024, 1, 1, 15, 0, tzinfo=UTC))
    [result] = load_results(path, {"f9": key})
    assert (_key(result), result.fixture_id, result.home_score) == (key, "f9", 1)
    with pytest.raises(ValueError, match=r"r\.csv: line 2: needs sport, home, away, start_time; fixture_id 'f9'"):
        load_results(path)


@pytest.mark.parametrize(("row", "message"), [
    ("EPL,A,B,2024-01-01T15:00:00Z,1,0,cancelled", r"line 3: status 'cancelled' is not one of final, void"),
    ("EPL,A,B,2024-01-01 15:00,1,0,final", r"line 3: start_time '2024-01-01 15:00' has no time zone"),
    ("EPL,A,B,01/01/2024,1,0,final", r"line 3: start_time '01/01/2024' is not ISO 8601"),
    ("EPL,A,B,2024-01-01T15:00:00Z,one,0,final", r"line 3: scores 'one'-'0' are not numbers"),
    (",A,B,2024-01-01T15:00:00Z,1,0,final", r"line 3: needs sport, home, away, start_time$"),
])
def test_a_bad_row_is_refused_by_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "EPL,C,D,2024-01-01T15:00:00Z,0,0,final\n" + row + "\n")
    with pytest.raises(ValueError, match=r"bad\.csv: " + message):
        load_results(path)


def test_settlement_results_list_is_read_with_the_older_fields(tmp_path: Path) -> None:
    (tmp_path / "extra.csv").write_text(HEADER + "NFL,Chicago Bears,Minnesota Vikings,2025-11-16T18:00:00Z,17,19,final\n")
    cfg = SettlementConfig(results=[RESULTS, Path("extra.csv")],
                           nfl_results=Path(__file__).parents[2] / "bot" / "data" / "nfl_results_2025-11-16.csv")
    results = configured_results(cfg, tmp_path)
    assert results is not None and len(results) == 12 + 1 + 28
    bears = results.find(FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings",
                                    datetime(2025, 11, 16, 18, 0, tzinfo=UTC)))
    assert bears is not None and (bears.home_score, bears.away_score) == (17, 19)
    with pytest.raises(ValueError, match=r"^settlement\.results\[1\]: .*missing\.csv"):
        configured_results(SettlementConfig(results=[RESULTS, Path("missing.csv")]), tmp_path)


def test_configured_but_empty_results_are_a_source_and_none_configured_is_not(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text(HEADER)
    results = configured_results(SettlementConfig(results=[Path("empty.csv")]), tmp_path)
    assert results is not None and len(results) == 0  # bets: "fixture not found in results"
    assert configured_results(SettlementConfig(), tmp_path) is None  # bets: "no results source"


def test_results_paths_in_a_config_file_are_relative_to_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("settlement:\n  results: [data/r.csv.gz]\n  unresolved: void_after_hours\n"
                      "  void_after_hours: 48\n")
    settlement = load_settings(config).settlement
    assert settlement.results == [tmp_path / "data" / "r.csv.gz"]
    assert (settlement.unresolved, settlement.void_after_hours) == ("void_after_hours", 48)
    assert load_settings().settlement.unresolved == "hold"  # the default changes nothing


@pytest.mark.parametrize(("settlement", "line"), [
    ({"unresolved": "void_after_hours"},
     "config error: settlement.void_after_hours: required when settlement.unresolved is void_after_hours"),
    ({"unresolved": "void_after_hours", "void_after_hours": 0},
     "config error: settlement.void_after_hours: Input should be greater than 0 (got 0)"),
    ({"void_after_hours": 24},
     "config error: settlement.void_after_hours: only used with settlement.unresolved: void_after_hours"),
    ({"unresolved": "void"},
     "config error: settlement.unresolved: Input should be 'hold' or 'void_after_hours' (got 'void')"),
])
def test_a_bad_unresolved_policy_is_one_line_naming_the_field(settlement: dict, line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(settlement=settlement)
    assert len(caught.value.lines) == 1
    assert caught.value.lines[0].startswith(line)
