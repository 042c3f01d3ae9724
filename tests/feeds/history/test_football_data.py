"""football-data.co.uk reader on a real extract (tests/data/history/football_data/README.md):
boards equal an independent reading of the CSV, board times follow the documented rule, every
fixture settles against the results loader, bad input is skipped and counted."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.feeds.history.base import HistoryError, detect
from bot.feeds.history.football_data import FootballDataReader, opening_time
from bot.sim.results import Results, load_results
from bot.types import MarketKey, OddsBatch

EXTRACT = Path(__file__).resolve().parents[2] / "data" / "history" / "football_data" / "top5_extract.csv"
UK = ZoneInfo("Europe/London")

# bookmaker -> (opening prefix, closing prefix), per market family, as football-data.co.uk names them
PREFIX_1X2 = {"bet365": ("B365", "B365C"), "bwin": ("BW", "BWC"), "interwetten": ("IW", "IWC"),
              "pinnacle": ("PS", "PSC"), "williamhill": ("WH", "WHC"), "vcbet": ("VC", "VCC")}
PREFIX_OU_AH = {"bet365": ("B365", "B365C"), "pinnacle": ("P", "PC")}

Board = dict[tuple[str, str, str], float]  # (bookmaker, market, outcome) -> decimal price


def _rows(path: Path = EXTRACT) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _kickoff(row: dict[str, str]) -> datetime:
    local = datetime.strptime(f"{row['Date']} {row['Time'] or '15:00'}", "%d/%m/%Y %H:%M")
    return local.replace(tzinfo=UK).astimezone(UTC)


def _expected_opening(kickoff: datetime) -> datetime:
    """Walk back from the kickoff's UK date to the collection day (Friday for Fri-Mon games,
    Tuesday for Tue-Thu ones), 15:00 UK, capped at kickoff - 1 h."""
    day = kickoff.astimezone(UK).date()
    target = 4 if day.weekday() in (4, 5, 6, 0) else 1
    while day.weekday() != target:
        day -= timedelta(days=1)
    return min(datetime.combine(day, time(15), UK).astimezone(UTC), kickoff - timedelta(hours=1))


def _expected_board(row: dict[str, str], closing: bool) -> Board:
    """The board read straight from the row: a market is quoted when all its cells are set and
    every price is a plausible decimal price."""
    k = 1 if closing else 0
    markets: list[tuple[str, str, dict[str, str]]] = []
    for book, prefixes in PREFIX_1X2.items():
        p = prefixes[k]
        markets.append((book, "1x2/game", {"home": f"{p}H", "draw": f"{p}D", "away": f"{p}A"}))
    ah_line = row["AHCh" if closing else "AHh"]
    for book, prefixes in PREFIX_OU_AH.items():
        p = prefixes[k]
        markets.append((book, "total/game@2.5", {"over": f"{p}>2.5", "under": f"{p}<2.5"}))
        if ah_line:
            line = Decimal(ah_line).normalize() + 0
            markets.append((book, f"spread/game@{line}", {"home": f"{p}AHH", "away": f"{p}AHA"}))
    board: Board = {}
    for book, market, cells in markets:
        texts = {o: row[c] for o, c in cells.items()}
        if all(texts.values()) and all(1.0001 <= float(t) <= 10001 for t in texts.values()):
            board.update({(book, market, o): float(t) for o, t in texts.items()})
    return board


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read(path: Path = EXTRACT) -> tuple[FootballDataReader, list[OddsBatch]]:
    reader = FootballDataReader(path)
    return reader, list(reader.batches())


def _boards(batches: list[OddsBatch]) -> dict[tuple[datetime, str], Board]:
    """(board time, fixture) -> its quoted prices (withdrawals left out)."""
    out: dict[tuple[datetime, str], Board] = {}
    for batch in batches:
        for u in batch.updates:
            assert u.received_at == u.feed_time == batch.received_at
            if not u.suspended:
                assert u.price is not None
                board = out.setdefault((batch.received_at, str(u.selection.fixture)), {})
                board[(u.bookmaker, str(u.selection.market), u.selection.outcome)] = u.price
    return out


def _fixture(row: dict[str, str]) -> str:
    return f"{row['Div']}|{row['HomeTeam']} vs {row['AwayTeam']}|{_kickoff(row):%Y-%m-%dT%H:%MZ}"


def test_boards_equal_an_independent_reading_of_the_csv() -> None:
    reader, batches = _read()
    expected: dict[tuple[datetime, str], Board] = {}
    for row in _rows():
        kickoff = _kickoff(row)
        expected[(_expected_opening(kickoff), _fixture(row))] = _expected_board(row, closing=False)
        expected[(kickoff - timedelta(minutes=5), _fixture(row))] = _expected_board(row, closing=True)
    assert _boards(batches) == expected
    assert reader.stats["updates"] == sum(len(b.updates) for b in batches)
    assert reader.progress == (80, 80)


def test_boards_are_in_time_order_and_equal_times_merged() -> None:
    _, batches = _read()
    times = [b.received_at for b in batches]
    assert times == sorted(set(times))  # strictly increasing: one batch per time
    assert all(b.source == "football_data" and not b.complete for b in batches)
    # the four E0 matches of 27/10/2019 open on the same Friday afternoon: one batch
    friday = datetime(2019, 10, 25, 14, tzinfo=UTC)  # 15:00 BST
    merged = next(b for b in batches if b.received_at == friday)
    assert len({u.selection.fixture for u in merged.updates}) == 4


@pytest.mark.parametrize(("match", "opening", "closing"), [
    # Sunday after the clocks went back: the Friday was BST, the Sunday GMT
    ("Newcastle vs Wolves", datetime(2019, 10, 25, 14, 0, tzinfo=UTC), datetime(2019, 10, 27, 13, 55, tzinfo=UTC)),
    ("Newcastle vs Man City", datetime(2021, 12, 17, 15, 0, tzinfo=UTC), datetime(2021, 12, 19, 13, 55, tzinfo=UTC)),
    # Friday 14:00 kickoff: Friday 15:00 is too late, capped at kickoff - 1 h
    ("Lazio vs Crotone", datetime(2021, 3, 12, 13, 0, tzinfo=UTC), datetime(2021, 3, 12, 13, 55, tzinfo=UTC)),
    # Thursday game: the Tuesday before
    ("Everton vs Newcastle", datetime(2023, 12, 5, 15, 0, tzinfo=UTC), datetime(2023, 12, 7, 19, 25, tzinfo=UTC)),
    # Monday game (BST): the Friday before
    ("Lille vs Lyon", datetime(2024, 5, 3, 14, 0, tzinfo=UTC), datetime(2024, 5, 6, 18, 55, tzinfo=UTC)),
])
def test_board_times_follow_the_documented_rule(match: str, opening: datetime, closing: datetime) -> None:
    _, batches = _read()
    times = sorted({b.received_at for b in batches for u in b.updates if match in str(u.selection.fixture)})
    assert times == [opening, closing]


@given(st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)))
def test_opening_is_a_collection_afternoon_before_kickoff(kickoff: datetime) -> None:
    opened = opening_time(kickoff)
    assert opened <= kickoff - timedelta(hours=1)
    assert kickoff - opened < timedelta(days=4)  # Monday night back to Friday 15:00 is the longest
    local = opened.astimezone(UK)
    if opened < kickoff - timedelta(hours=1):
        assert (local.hour, local.minute) == (15, 0)
        weekend = kickoff.astimezone(UK).weekday() in (4, 5, 6, 0)
        assert local.weekday() == (4 if weekend else 1)


def test_quarter_line_asian_handicap_is_kept_and_a_moved_line_withdrawn() -> None:
    _, batches = _read()
    koln = [(b.received_at, u) for b in batches for u in b.updates if "FC Koln vs Heidenheim" in str(u.selection.fixture)]
    spreads = {(u.bookmaker, u.selection.market.line, u.selection.outcome, u.suspended) for _, u in koln
               if u.selection.market.type == "spread"}
    quarter, half = Decimal("-0.25"), Decimal("-0.5")
    for book in ("bet365", "pinnacle"):
        for side in ("home", "away"):
            assert {(book, quarter, side, False), (book, half, side, False), (book, quarter, side, True)} <= spreads
    closing = max(t for t, _ in koln)
    assert all(t == closing for t, u in koln if u.suspended)  # the opening line withdrawn at the close
    assert MarketKey("spread", "game", quarter) in {u.selection.market for _, u in koln}
    assert not any(u.bookmaker == "interwetten" for _, u in koln)  # empty cells: no quote


def test_every_fixture_is_found_by_the_results_loader() -> None:
    _, batches = _read()
    results = Results(load_results(EXTRACT))
    fixtures = {u.selection.fixture for b in batches for u in b.updates}
    assert len(fixtures) == 40
    for fixture in fixtures:
        found = results.find(fixture)
        assert found is not None and found.start_time == fixture.start_time and found.sport == fixture.sport


def test_a_real_zero_price_skips_that_market_only(warnings: list[str]) -> None:
    reader, batches = _read()
    closing = datetime(2021, 12, 19, 13, 55, tzinfo=UTC)
    board = _boards(batches)[(closing, "E0|Newcastle vs Man City|2021-12-19T14:00Z")]
    assert ("bet365", "total/game@2.5", "over") not in board  # B365C>2.5 and B365C<2.5 are 0.0
    assert board[("pinnacle", "total/game@2.5", "over")] == 1.39
    assert board[("bet365", "1x2/game", "away")] == 1.11
    assert reader.stats["bad_outcome"] == 2
    assert any("top5_extract.csv: line 12, column B365C>2.5" in w for w in warnings)


def test_bad_rows_are_skipped_and_counted_and_the_rest_kept(tmp_path: Path, warnings: list[str]) -> None:
    rows = _rows()
    rows[0]["PSH"] = "abc"  # line 2
    rows[1]["HomeTeam"] = ""  # line 3
    rows[2]["Date"] = "31/02/2024"  # line 4
    path = _write(tmp_path / "E0.csv", rows)
    reader, batches = _read(path)
    assert (reader.stats["bad_outcome"], reader.stats["missing_field"], reader.stats["bad_time"]) == (3, 1, 1)
    assert any("E0.csv: line 2, column PSH" in w for w in warnings)
    assert any("E0.csv: line 3, column HomeTeam" in w for w in warnings)
    assert any("E0.csv: line 4, column Date" in w for w in warnings)
    fixtures = {u.selection.fixture for b in batches for u in b.updates}
    assert len(fixtures) == 38
    opening = _boards(batches)[(_expected_opening(_kickoff(rows[0])), _fixture(rows[0]))]
    assert not {("pinnacle", "1x2/game", o) for o in ("home", "draw", "away")} & set(opening)  # PSH bad: all skipped
    assert ("bet365", "1x2/game", "home") in opening


def test_a_blank_time_kicks_off_at_15_uk_as_the_results_loader_reads_it(tmp_path: Path) -> None:
    rows = _rows()
    rows[3]["Time"] = ""
    path = _write(tmp_path / "E0.csv", rows)
    _, batches = _read(path)
    fixtures = {u.selection.fixture for b in batches for u in b.updates}
    blank = next(f for f in fixtures if f.home == rows[3]["HomeTeam"] and f.away == rows[3]["AwayTeam"])
    assert blank.start_time == datetime(2023, 12, 19, 15, 0, tzinfo=UTC)  # 15:00 GMT, not the 17:30 written
    results = Results(load_results(path))
    assert all((r := results.find(f)) is not None and r.start_time == f.start_time for f in fixtures)


def test_a_wrong_header_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(EXTRACT.read_text().replace(",HomeTeam,", ",Home,", 1))
    with pytest.raises(HistoryError) as caught:
        next(FootballDataReader(path).batches())
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "line 1, column HomeTeam" in message


def test_a_truncated_gzip_ends_with_an_error_after_the_boards_read(tmp_path: Path) -> None:
    whole = gzip.compress(EXTRACT.read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    reader = FootballDataReader(path)
    got: list[OddsBatch] = []
    with pytest.raises(HistoryError, match=r"cut\.csv\.gz: line \d+: file ends or breaks here"):
        got.extend(reader.batches())
    assert got and len({u.selection.fixture for b in got for u in b.updates}) < 40


def test_detect_and_sniff_pick_the_format(tmp_path: Path) -> None:
    assert detect(EXTRACT) == "football_data"
    gz = tmp_path / "E0.csv.gz"
    gz.write_bytes(gzip.compress(EXTRACT.read_bytes()))
    assert detect(gz) == "football_data"
    assert FootballDataReader.sniff(["Div", "Date", "HomeTeam", "AwayTeam", "PSCH", "PSCD", "PSCA"])
    assert not FootballDataReader.sniff(["Div", "Date", "HomeTeam", "AwayTeam", "MaxH", "MaxD", "MaxA"])
    assert not FootballDataReader.sniff(["GameID", "EnteredDateTimeUTC", "MoneyUS1", "MoneyUS2"])
