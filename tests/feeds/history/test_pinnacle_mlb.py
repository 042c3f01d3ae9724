"""Pinnacle MLB 2016 reader on a real extract (tests/data/history/mlb/README.md): one board per
line change, in time order across games, equal to an independent reading of the CSV; moved
lines withdrawn; every fixture settles against the results loader; bad input counted."""

from __future__ import annotations

import csv
import gzip
import itertools
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.feeds.history.base import HistoryError, detect
from bot.feeds.history.pinnacle_mlb import PinnacleMlbReader
from bot.market.odds import american_to_decimal
from bot.sim.results import Results, load_results
from bot.types import OddsBatch

DATA = Path(__file__).resolve().parents[2] / "data" / "history" / "mlb"
LINES = DATA / "mlb2016_pinnacle_lines.csv"
GAMES = DATA / "mlb2016_games.csv"

Quote = frozenset[tuple[str, str, int]]  # (market, outcome, American odds)
Board = tuple[datetime, str | None, Quote]  # time, fixture (None: a row quoting nothing), quote


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _games() -> dict[str, dict[str, str]]:
    with GAMES.open(newline="") as f:
        return {row["GameID"]: row for row in csv.DictReader(f)}


def _expected() -> list[Board]:
    """Each row's quote, read straight from the CSV and sorted by time (stable). The run line's
    SpreadTeam1 is the away side's handicap, so the home handicap is its negation."""
    games = _games()
    out = []
    with LINES.open(newline="") as f:
        for row in csv.DictReader(f):
            game = games[row["GameID"]]
            quote = set()
            if row["MoneyUS1"]:
                quote |= {("moneyline/game", "away", int(row["MoneyUS1"])), ("moneyline/game", "home", int(row["MoneyUS2"]))}
            if row["SpreadTeam1"]:
                home_line = -Decimal(row["SpreadTeam1"])
                market = f"spread/game@{home_line}"
                quote |= {(market, "away", int(row["SpreadUS1"])), (market, "home", int(row["SpreadUS2"]))}
            if row["TotalPoints"]:
                market = f"total/game@{Decimal(row['TotalPoints']).normalize()}"
                quote |= {(market, "over", int(row["TotalUSOver"])), (market, "under", int(row["TotalUSUnder"]))}
            fixture = f"MLB|{game['HomeTeam']} vs {game['AwayTeam']}|{_utc(game['EventDateTimeUTC']):%Y-%m-%dT%H:%MZ}"
            out.append((_utc(row["EnteredDateTimeUTC"]), fixture if quote else None, frozenset(quote)))
    return sorted(out, key=lambda t: t[0])


def _read(path: Path = LINES, games: Path | None = None) -> tuple[PinnacleMlbReader, list[OddsBatch]]:
    reader = PinnacleMlbReader(path, games=games)
    return reader, list(reader.batches())


def _quoted(batch: OddsBatch) -> Board:
    live = [u for u in batch.updates if not u.suspended]
    fixtures = {str(u.selection.fixture) for u in live}
    assert len(fixtures) <= 1  # one row, one game
    for u in live:
        assert u.american is not None and u.price == pytest.approx(american_to_decimal(u.american))
    return batch.received_at, fixtures.pop() if fixtures else None, frozenset(
        (str(u.selection.market), u.selection.outcome, u.american) for u in live if u.american is not None)


def test_one_board_per_row_equal_to_an_independent_reading() -> None:
    reader, batches = _read()
    assert [_quoted(b) for b in batches] == _expected()
    assert all(b.source == "pinnacle" and not b.complete for b in batches)
    assert all(u.bookmaker == "pinnacle" and u.received_at == u.feed_time == b.received_at
               for b in batches for u in b.updates)
    assert reader.progress == (297, 297) and reader.stats["frames"] == 297


def test_rows_are_sorted_by_time_across_games() -> None:
    _, batches = _read()
    times = [b.received_at for b in batches]
    assert times == sorted(times)
    order = [b.updates[0].feed_ids["pinnacle_game_id"] for b in batches if b.updates]
    # the file is ordered by game; on the time line the doubleheader's games interleave
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches > 5


def test_the_run_line_is_the_home_handicap() -> None:
    # ARI201604050: Arizona (home) -210 favourite; its first run-line row quotes SpreadTeam1 1.5
    # (Colorado, away, +1.5 at -117) and Arizona at +108: the home side's line is -1.5
    _, batches = _read()
    first = next(b for b in batches if any(u.selection.market.type == "spread" and "Arizona" in str(u.selection.fixture)
                                           for u in b.updates))
    spread = {(u.selection.outcome, u.selection.market.line, u.american) for u in first.updates
              if u.selection.market.type == "spread"}
    assert spread == {("home", Decimal("-1.5"), 108), ("away", Decimal("-1.5"), -117)}
    moneyline = {u.selection.outcome: u.american for u in first.updates if u.selection.market.type == "moneyline"}
    assert moneyline == {"home": -210, "away": 192}


def test_a_moved_line_is_withdrawn() -> None:
    _, batches = _read()
    by_time = {b.received_at: b for b in batches if any("White Sox" in str(u.selection.fixture) for u in b.updates)}
    total_moved = by_time[datetime(2016, 5, 5, 19, 24, 19, tzinfo=UTC)]
    suspended = {(str(u.selection.market), u.selection.outcome) for u in total_moved.updates if u.suspended}
    assert suspended == {("total/game@9", "over"), ("total/game@9", "under")}
    flipped = by_time[datetime(2016, 5, 5, 19, 24, 36, tzinfo=UTC)]  # Boston -1.5 -> +1.5
    suspended = {(str(u.selection.market), u.selection.outcome) for u in flipped.updates if u.suspended}
    assert suspended == {("spread/game@1.5", "home"), ("spread/game@1.5", "away")}
    assert {str(u.selection.market) for u in flipped.updates if not u.suspended} >= {"spread/game@-1.5"}
    unchanged = by_time[datetime(2016, 5, 5, 20, 35, 12, tzinfo=UTC)]
    assert not any(u.suspended for u in unchanged.updates)


def test_rows_after_the_start_are_kept_and_counted() -> None:
    games = _games()
    with LINES.open(newline="") as f:
        after = sum(r["EnteredDateTimeUTC"] >= games[r["GameID"]]["EventDateTimeUTC"] for r in csv.DictReader(f))
    reader, batches = _read()
    assert after >= 1
    assert reader.stats["after_start"] == after
    assert sum(b.received_at >= b.updates[0].selection.fixture.start_time for b in batches if b.updates) == after


def test_every_fixture_is_found_by_the_results_loader() -> None:
    _, batches = _read()
    results = Results(load_results(GAMES))
    fixtures = {u.selection.fixture for b in batches for u in b.updates}
    assert len(fixtures) == 5  # the doubleheader is two fixtures
    for fixture in fixtures:
        found = results.find(fixture)
        assert found is not None and found.start_time == fixture.start_time and found.sport == "MLB"


def test_the_games_file_is_needed(tmp_path: Path) -> None:
    lines = tmp_path / "lines.csv.gz"
    lines.write_bytes(gzip.compress(LINES.read_bytes()))
    with pytest.raises(HistoryError, match=r"lines\.csv\.gz: needs the games file mlb2016_games\.csv") as caught:
        next(PinnacleMlbReader(lines).batches())
    assert "\n" not in str(caught.value)
    _, batches = _read(lines, games=GAMES)  # the option, from another folder
    assert len(batches) == 297


def test_a_wrong_header_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mlb2016_pinnacle_lines.csv"
    path.write_text(LINES.read_text().replace("MoneyUS2", "MoneyHome", 1))
    shutil.copy(GAMES, tmp_path / "mlb2016_games.csv")
    with pytest.raises(HistoryError) as caught:
        next(PinnacleMlbReader(path).batches())
    message = str(caught.value)
    assert "\n" not in message and f"{path}: line 1, column MoneyUS2: missing" in message


def test_bad_rows_are_skipped_and_counted(tmp_path: Path, warnings: list[str]) -> None:
    lines = LINES.read_text().splitlines(keepends=True)
    # line 3 (ARI201604050 at 2016-04-03T02:47:26Z): moneyline away +201 -> "+abc"
    assert lines[2].startswith("ARI201604050,2016-04-03T02:47:26Z,,,,201,")
    lines[2] = lines[2].replace(",201,", ",abc,")
    lines[3] = lines[3].replace("2016-04-03T17:46:57Z", "yesterday")  # line 4: bad time
    lines[4] = "XXX201699990" + lines[4][len("ARI201604050"):]  # line 5: a game the games file lacks
    path = tmp_path / "mlb2016_pinnacle_lines.csv"
    path.write_text("".join(lines))
    shutil.copy(GAMES, tmp_path / "mlb2016_games.csv")
    reader, batches = _read(path)
    assert (reader.stats["bad_outcome"], reader.stats["bad_time"], reader.stats["unknown_fixture"]) == (1, 1, 1)
    assert len(batches) == 297 - 2
    assert any("mlb2016_pinnacle_lines.csv: line 3, column MoneyUS1" in w for w in warnings)
    bad = next(b for b in batches if b.received_at == datetime(2016, 4, 3, 2, 47, 26, tzinfo=UTC))
    # the row's moneyline is unreadable: left out of its quote, so the earlier one is withdrawn
    assert {(u.selection.market.type, u.suspended) for u in bad.updates} == {("moneyline", True), ("total", False)}


def test_a_truncated_gzip_ends_with_an_error_after_the_boards_read(tmp_path: Path) -> None:
    whole = gzip.compress(LINES.read_bytes())
    path = tmp_path / "mlb2016_pinnacle_lines.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    shutil.copy(GAMES, tmp_path / "mlb2016_games.csv")
    got: list[OddsBatch] = []
    with pytest.raises(HistoryError, match=r"lines\.csv\.gz: line \d+: file ends or breaks here"):
        got.extend(PinnacleMlbReader(path).batches())
    assert 0 < len(got) < 297


def test_detect_and_sniff_pick_the_format() -> None:
    assert detect(LINES) == "pinnacle_mlb"
    assert detect(GAMES) is None
    assert PinnacleMlbReader.sniff(["GameID", "EnteredDateTimeUTC", "SpreadTeam1", "MoneyUS1", "MoneyUS2"])
    assert not PinnacleMlbReader.sniff(["Div", "Date", "HomeTeam", "AwayTeam", "PSCH"])


def test_a_row_at_the_start_counts_as_after_it(tmp_path: Path) -> None:
    path = tmp_path / "mlb2016_pinnacle_lines.csv"
    path.write_text(LINES.read_text().replace("PHI201608300,2016-08-30T23:04:46Z", "PHI201608300,2016-08-30T23:05:00Z"))
    shutil.copy(GAMES, tmp_path / "mlb2016_games.csv")
    before, _ = _read()
    at_start, _ = _read(path)
    assert at_start.stats["after_start"] == before.stats["after_start"] + 1
