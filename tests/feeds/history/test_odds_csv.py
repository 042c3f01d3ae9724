"""The generic long odds CSV reader (docs/reference/odds-csv.md) on real and hand-made files
(tests/data/history/odds_csv/README.md)."""

from __future__ import annotations

import gzip
import re
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.feeds.history.base import HistoryError, detect
from bot.feeds.history.odds_csv import OddsCsvReader
from bot.feeds.history.oddsapi_changes import OddsApiChangesReader
from bot.types import FixtureKey, MarketKey, OddsBatch, Selection

DATA = Path(__file__).resolve().parents[2] / "data" / "history"
FILES = DATA / "odds_csv"
KC_PHI = FILES / "kc_phi_week2.csv.gz"
WEEK2 = DATA / "oddsapi" / "nfl_odds_changes_week2.csv.gz"
KC_EVENT = "bbec8d71145954cff67915c9b006bb6e"
BEARS = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 11, 16, 18, tzinfo=UTC))
NOON, LATE = datetime(2025, 11, 16, 12, tzinfo=UTC), datetime(2025, 11, 16, 17, 30, tzinfo=UTC)

Board = dict[tuple[str, Selection], int]


def read(path: Path, **options: object) -> tuple[OddsCsvReader, list[OddsBatch]]:
    reader = OddsCsvReader(path, **options)  # type: ignore[arg-type]
    return reader, list(reader.batches())


def apply(board: Board, batch: OddsBatch) -> None:
    """A quote book reduced to (bookmaker, selection) -> American odds."""
    for u in batch.updates:
        if u.suspended:
            board.pop((u.bookmaker, u.selection), None)
        else:
            assert u.american is not None
            board[(u.bookmaker, u.selection)] = u.american


def quotes(batch: OddsBatch) -> list[tuple[str, str, str, float | None, dict[str, str]]]:
    return [(u.bookmaker, str(u.selection.market), u.selection.outcome, u.price, u.feed_ids) for u in batch.updates]


def test_the_spec_example_reads_as_documented() -> None:
    reader, batches = read(FILES / "example.csv")
    assert [b.received_at for b in batches] == [NOON, LATE]
    assert all(b.source == "odds_csv" and not b.complete for b in batches)
    assert quotes(batches[0]) == [("pinnacle", "moneyline/game", "home", 2.20, {}),
                                  ("pinnacle", "moneyline/game", "away", 1.74, {}),
                                  ("draftkings", "total/game@44.5", "over", 1.91, {})]
    first = batches[0].updates[0]
    assert first.selection.fixture == BEARS and first.american == 120
    assert first.feed_time == first.received_at == NOON
    assert reader.progress == (4, 4) and reader.stats["snapshots"] == 2


def test_bad_rows_are_skipped_counted_and_logged_and_good_rows_kept(warnings: list[str]) -> None:
    reader, batches = read(FILES / "bad_rows.csv")
    bad = {k: v for k, v in reader.stats.items() if k not in ("snapshots", "updates")}
    assert bad == {"bad_time": 2, "bad_price": 3, "unknown_market": 1, "bad_outcome": 1, "bad_line": 2,
                   "missing_cell": 2, "lay_not_supported": 1, "bad_side": 1}
    # rows out of time order are sorted; equal times keep the file's order
    assert [b.received_at for b in batches] == [NOON, LATE]
    assert quotes(batches[0]) == [
        ("pinnacle", "moneyline/game", "home", 2.20, {"fixture_id": "g1"}),
        ("pinnacle", "moneyline/game", "away", 1.74, {"fixture_id": "g1"}),
        ("draftkings", "spread/game@2.5", "away", 1 + 100 / 105, {"fixture_id": "g1"}),
        ("draftkings", "spread/game@2.5", "home", 1 + 100 / 115, {"fixture_id": "g1"}),
        ("draftkings", "total/game@44.5", "over", 1.91, {}),
    ]
    assert quotes(batches[1]) == [("pinnacle", "moneyline/game", "home", 2.10, {"fixture_id": "g1"}),
                                  ("draftkings", "total/game@44.5", "over", None, {"fixture_id": "g1"})]
    withdrawn = batches[1].updates[1]
    assert withdrawn.suspended and withdrawn.american is None
    path = str(FILES / "bad_rows.csv")
    assert any(f"{path}: line 4, column time:" in w for w in warnings)
    assert any(f"{path}: line 7, column price:" in w for w in warnings)
    assert any(f"{path}: line 10, column market:" in w for w in warnings)
    assert any(f"{path}: line 15, column side:" in w and "lay_not_supported" in w for w in warnings)


@pytest.mark.parametrize(("name", "missing"), [
    ("wrong_header.csv", "start_time, price or price_american"),
    ("no_sport.csv", "sport"),
])
def test_a_wrong_header_is_one_line_naming_file_line_and_columns(name: str, missing: str) -> None:
    with pytest.raises(HistoryError) as caught:
        next(OddsCsvReader(FILES / name).batches())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{FILES / name}: line 1: missing column(s) {missing}; expected time, sport")
    assert message.endswith("(docs/reference/odds-csv.md)")


def test_a_real_game_shuffled_gives_the_change_logs_boards() -> None:
    """Chiefs v Eagles, rewritten from the change log as a shuffled generic CSV (half decimal,
    half American prices), holds at every time the board the change-log reader holds."""
    _, batches = read(KC_PHI)
    times = [b.received_at for b in batches]
    assert times == sorted(set(times)) and len(times) > 10
    expected: Board = {}
    log = iter(b for b in OddsApiChangesReader(WEEK2).batches())
    board: Board = {}
    for batch in batches:
        apply(board, batch)
        for change in log:
            apply(expected, OddsBatch(change.source, change.received_at, tuple(
                u for u in change.updates if u.feed_ids["oddsapi_event_id"] == KC_EVENT)))
            if change.received_at == batch.received_at:
                break
        assert board == expected, batch.received_at
    assert {u.feed_ids["fixture_id"] for b in batches for u in b.updates} == {KC_EVENT}
    assert any(u.suspended for b in batches for u in b.updates)  # withdrawals and moved lines


def test_a_truncated_gzip_yields_the_rows_before_the_damage_then_names_the_line(tmp_path: Path) -> None:
    data = KC_PHI.read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    reader = OddsCsvReader(cut)
    got: list[OddsBatch] = []
    with pytest.raises(HistoryError) as caught:
        got.extend(reader.batches())
    match = re.fullmatch(rf"{re.escape(str(cut))}: line (\d+): the file is damaged .*", str(caught.value))
    assert match is not None, caught.value
    line = int(match[1])
    assert 2 < line < 346
    assert sum(len(b.updates) for b in got) == line - 2  # every whole row before the damage


def test_an_undecodable_line_is_one_bad_row(tmp_path: Path) -> None:
    text = (FILES / "example.csv").read_bytes().replace(b"Minnesota Vikings,total", b"Minnesota \xff,total")
    path = tmp_path / "latin.csv"
    path.write_bytes(text)
    reader, batches = read(path)
    assert reader.stats["malformed_row"] == 1
    assert sum(len(b.updates) for b in batches) == 3


def test_detect_names_the_format_and_ignores_other_csv(tmp_path: Path) -> None:
    assert detect(FILES / "example.csv") == "odds_csv"
    assert detect(KC_PHI) == "odds_csv"
    assert detect(FILES / "bad_rows.csv") == "odds_csv"  # the header's case does not matter
    assert detect(FILES / "no_sport.csv") == "odds_csv"  # then the reader names the missing column
    assert detect(FILES / "wrong_header.csv") is None
    results = tmp_path / "results.csv"
    results.write_text("sport,home,away,start_time,home_score,away_score,status\n")
    assert detect(results) is None


_LINES = st.integers(-400, 400).map(lambda q: Decimal(q) / 4)


@settings(max_examples=60, deadline=None)
@given(line=_LINES, market=st.sampled_from(["spread", "total"]), first=st.booleans())
def test_lines_key_by_home_handicap_and_both_rows_share_a_market(line: Decimal, market: str, first: bool) -> None:
    """A spread's home row at x and away row at -x, or a total's over and under at x, land in one
    MarketKey whose line is x, canonical (47, not 47.0; 0, not -0), whatever the rows' order."""
    sides = ("home", "away") if market == "spread" else ("over", "under")
    rows = [f"{NOON:%Y-%m-%dT%H:%MZ},NFL,{BEARS.start_time:%Y-%m-%dT%H:%MZ},Chicago Bears,Minnesota Vikings,"
            f"{market},{line if s != 'away' else -line},{s},pinnacle,1.9" for s in sides]
    text = "time,sport,start_time,home,away,market,line,outcome,bookmaker,price\n" + "\n".join(
        rows if first else rows[::-1]) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
        _, batches = read(path)
    keys = {u.selection.market for u in batches[0].updates}
    assert keys == {MarketKey(market, "game", line)}
    canonical = str(int(line)) if line == line.to_integral_value() else str(line.normalize())
    assert str(keys.pop().line) == canonical
