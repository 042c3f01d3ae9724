"""The Odds API change-log reader on a real extract of the NFL 2025 season (three week-2 games,
tests/data/history/oddsapi/README.md) and on damaged copies of it."""

from __future__ import annotations

import csv
import gzip
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.feeds.history.base import HistoryError, detect
from bot.feeds.history.feed import HistoryFeed
from bot.feeds.history.oddsapi_changes import OddsApiChangesReader
from bot.feeds.oddsapi_decode import OddsApiDiffer
from bot.types import FeedEvent, OddsBatch, Selection

FOLDER = Path(__file__).resolve().parents[2] / "data" / "history" / "oddsapi"
LOG = FOLDER / "nfl_odds_changes_week2.csv.gz"
TIMES = FOLDER / "nfl_odds_changes_week2_snapshot_times.txt"

Row = dict[str, str]
Board = dict[tuple[str, Selection], int]  # (bookmaker, selection) -> American odds


def rows_of(path: Path = LOG) -> list[Row]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def listed() -> list[str]:
    return TIMES.read_text().split()


def write_log(path: Path, rows: list[Row]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(gzip.compress(text.getvalue().encode()))
    return path


def apply(board: Board, batch: OddsBatch) -> None:
    for clear in batch.cleared:
        for key in [k for k in board if k[1].fixture == clear.fixture]:
            del board[key]
    for u in batch.updates:
        if u.suspended:
            board.pop((u.bookmaker, u.selection), None)
        else:
            assert u.american is not None
            board[(u.bookmaker, u.selection)] = u.american


def forward_fill(rows: list[Row], times: list[str]) -> Iterator[tuple[str, dict[tuple[str, str, str, str], Row],
                                                                      dict[str, Row]]]:
    """(time, the live row of every (event_id, book, market, outcome), each event's first row) at
    each of `times`: a plain replay of the rows, as /work/shared/data/README.md describes."""
    state: dict[tuple[str, str, str, str], Row] = {}
    first: dict[str, Row] = {}
    pending = iter(rows)
    row = next(pending, None)
    for t in times:
        while row is not None and row["observed_utc"] <= t:
            key = (row["event_id"], row["book"], row["market"], row["outcome"])
            if row["change"] == "removed":
                state.pop(key, None)
            else:
                state[key] = row
            first.setdefault(row["event_id"], row)
            row = next(pending, None)
        yield t, state, first


def boards(batches: Iterator[OddsBatch]) -> Iterator[tuple[datetime, Board]]:
    board: Board = {}
    for batch in batches:
        apply(board, batch)
        yield batch.received_at, board


def test_every_board_is_the_forward_fill_of_the_rows() -> None:
    """Names computed here from the rows alone: sport NFL, the fixture of the event's first row
    (these games stay on the board until their last quote goes), spread keyed by the home
    team's point (the away row's negated)."""
    ours = boards(OddsApiChangesReader(LOG).batches())
    compared = 0
    for t, state, first in forward_fill(rows_of(), listed()):
        at, board = next(ours)
        assert at == datetime.fromisoformat(t)
        expected = {}
        for (event, book, market, outcome), r in state.items():
            f = first[event]
            side = {f["home_team"]: "home", f["away_team"]: "away"}.get(outcome, outcome.lower())
            point = float(r["point"]) if r["point"] else None
            if market == "spreads" and side == "away" and point is not None:
                point = -point
            expected[(book, f["home_team"], f["away_team"], f["commence_time"], market, point, side)] = int(
                r["price_american"])
        got = {(book, s.fixture.home, s.fixture.away, f"{s.fixture.start_time:%Y-%m-%dT%H:%M:%SZ}",
                {"moneyline": "h2h", "spread": "spreads", "total": "totals"}[s.market.type],
                None if s.market.line is None else float(s.market.line), s.outcome): price
               for (book, s), price in board.items()}
        assert got == expected, t
        assert all(s.fixture.sport == "NFL" for _, s in board)
        compared += bool(expected)
    assert compared > 20
    assert next(ours, None) is None


def differ_boards(rows: list[Row], times: list[str], sport: str = "NFL") -> Iterator[tuple[datetime, Board]]:
    """The boards OddsApiDiffer builds from The Odds API events rebuilt from the forward fill."""
    differ, board = OddsApiDiffer(), {}
    latest: dict[str, Row] = {}
    for t, state, _ in forward_fill(rows, times):
        for r in state.values():
            latest[r["event_id"]] = r
        tree: dict[str, dict[str, dict[str, list[Row]]]] = {}
        for (event, book, market, _), r in state.items():
            tree.setdefault(event, {}).setdefault(book, {}).setdefault(market, []).append(r)
        events = [{
            "id": event, "sport_title": sport, "commence_time": latest[event]["commence_time"],
            "home_team": latest[event]["home_team"], "away_team": latest[event]["away_team"],
            "bookmakers": [{"key": book, "markets": [
                {"key": market, "outcomes": [
                    {"name": r["outcome"], "price": int(r["price_american"]),
                     **({"point": float(r["point"])} if r["point"] else {})} for r in outcomes]}
                for market, outcomes in markets.items()]} for book, markets in books.items()],
        } for event, books in tree.items()]
        at = datetime.fromisoformat(t)
        for batch in differ.snapshot(events, at):
            assert isinstance(batch, OddsBatch)
            apply(board, batch)
        yield at, board


def test_names_and_boards_equal_the_differs_on_the_same_snapshots() -> None:
    """The same data as The Odds API responses, through OddsApiDiffer: the same selections
    (fixtures keep the first commence_time, lines moved withdraw the old key) at every snapshot."""
    rows = rows_of()
    starts: dict[str, set[str]] = {}
    for r in rows:
        starts.setdefault(r["event_id"], set()).add(r["commence_time"])
    assert max(len(s) for s in starts.values()) > 1  # the API moved some games' commence_time
    ours = boards(OddsApiChangesReader(LOG).batches())
    for at, theirs in differ_boards(rows, listed()):
        assert next(ours) == (at, theirs)


def test_a_draw_makes_the_h2h_a_1x2_as_the_differ_names_it(tmp_path: Path) -> None:
    """A soccer-like log (the real rows of one book, with a Draw added, then removed): 1x2
    while the Draw is quoted, moneyline before and after, as OddsApiDiffer names the snapshots."""
    rows = [r for r in rows_of() if r["book"] == "draftkings" and r["market"] == "h2h"]
    times = sorted({r["observed_utc"] for r in rows})
    home = next(r for r in rows if r["outcome"] == r["home_team"])
    on, off = times[len(times) // 3], times[2 * len(times) // 3]
    draw = [dict(home, observed_utc=on, change="new", outcome="Draw", price_american="+900"),
            dict(home, observed_utc=off, change="removed", outcome="Draw", price_american="")]
    rows = sorted(rows + draw, key=lambda r: r["observed_utc"])
    path = write_log(tmp_path / "soccer.csv.gz", rows)
    (tmp_path / "soccer_snapshot_times.txt").write_text("\n".join(times))
    batches = list(OddsApiChangesReader(path, sport="EPL").batches())
    # a batch never withdraws a quote and then prices it again: a price change under the new
    # type is a plain update, not the same selection withdrawn and re-quoted
    for batch in batches:
        withdrawn: set[tuple[str, Selection]] = set()
        for u in batch.updates:
            assert u.suspended or (u.bookmaker, u.selection) not in withdrawn
            if u.suspended:
                withdrawn.add((u.bookmaker, u.selection))
    ours = boards(iter(batches))
    types = set()
    for at, theirs in differ_boards(rows, times, sport="EPL"):
        assert next(ours) == (at, theirs)
        types |= {(at < datetime.fromisoformat(on) or at >= datetime.fromisoformat(off), s.market.type)
                  for _, s in theirs if s.fixture.home == home["home_team"]}
    assert types == {(True, "moneyline"), (False, "1x2")}


def test_a_quote_keeps_one_selection_object_while_its_fixture_is_on_the_board() -> None:
    """The book groups a batch's updates by the identity of their keys and finds a quote's
    books by it (bot/market/book.py, apply_batch): every update of one selection carries the
    same object, and the same market of a fixture shares one MarketKey."""
    objects: dict[Selection, set[int]] = {}
    markets: dict[tuple[object, object], set[int]] = {}
    batches = list(OddsApiChangesReader(LOG).batches())  # held: the ids stay those objects'
    for batch in batches:
        for u in batch.updates:
            objects.setdefault(u.selection, set()).add(id(u.selection))
            markets.setdefault((u.selection.fixture, u.selection.market), set()).add(id(u.selection.market))
    assert len(objects) > 50
    assert all(len(ids) == 1 for ids in objects.values())
    assert all(len(ids) == 1 for ids in markets.values())


def test_snapshots_are_complete_batches_and_a_no_change_snapshot_is_empty() -> None:
    reader = OddsApiChangesReader(LOG)
    batches = list(reader.batches())
    row_times = {r["observed_utc"] for r in rows_of()}
    assert [f"{b.received_at:%Y-%m-%dT%H:%M:%SZ}" for b in batches] == listed()
    assert all(b.complete and b.source == "oddsapi" and not b.cleared for b in batches)
    quiet = [b for b in batches if f"{b.received_at:%Y-%m-%dT%H:%M:%SZ}" not in row_times]
    assert quiet and all(b.updates == () for b in quiet)
    assert all(b.updates for b in batches if b not in quiet)
    assert all(u.received_at == u.feed_time == b.received_at for b in batches for u in b.updates)
    assert reader.stats["snapshots"] == len(listed()) and reader.stats.bad_total == 0
    assert reader.progress == (LOG.stat().st_size, LOG.stat().st_size)


def test_removed_withdraws_the_quote_and_a_moved_point_withdraws_the_old_line() -> None:
    rows = rows_of()
    removed = next(r for r in rows if r["change"] == "removed" and r["market"] == "totals")
    batches = {f"{b.received_at:%Y-%m-%dT%H:%M:%SZ}": b for b in OddsApiChangesReader(LOG).batches()}
    withdrawn = [u for u in batches[removed["observed_utc"]].updates
                 if u.bookmaker == removed["book"] and u.selection.outcome == removed["outcome"].lower()
                 and u.feed_ids == {"oddsapi_event_id": removed["event_id"]}]
    assert [(u.price, u.american, u.suspended) for u in withdrawn] == [(None, None, True)]
    last: dict[tuple[str, str, str, str], str] = {}
    for r in rows:  # the first spread whose point moved
        key = (r["event_id"], r["book"], r["market"], r["outcome"])
        if r["market"] == "spreads" and r["change"] == "update" and last.get(key) not in (None, r["point"]):
            break
        last[key] = r["point"]
    mine = [u for u in batches[r["observed_utc"]].updates if u.bookmaker == r["book"]
            and u.feed_ids["oddsapi_event_id"] == r["event_id"] and u.selection.market.type == "spread"]
    assert any(u.suspended for u in mine) and any(not u.suspended for u in mine)


def test_without_the_snapshot_list_batches_follow_the_rows_and_a_warning_says_so(
        tmp_path: Path, warnings: list[str]) -> None:
    alone = shutil.copy(LOG, tmp_path / "nfl.csv.gz")
    batches = list(OddsApiChangesReader(Path(alone)).batches())
    assert [f"{b.received_at:%Y-%m-%dT%H:%M:%SZ}" for b in batches] == sorted({r["observed_utc"] for r in rows_of()})
    assert any("no snapshot times file (nfl_snapshot_times.txt)" in w for w in warnings)


def test_rows_at_an_unlisted_time_are_emitted_at_their_time_and_counted(tmp_path: Path) -> None:
    rows = rows_of()
    dropped = rows[len(rows) // 2]["observed_utc"]
    times = tmp_path / "times.txt"
    times.write_text("\n".join(t for t in listed() if t != dropped) + "\nnot a time\n")
    reader = OddsApiChangesReader(LOG, snapshot_times=times)
    at = [f"{b.received_at:%Y-%m-%dT%H:%M:%SZ}" for b in reader.batches()]
    assert at == listed()
    assert reader.stats["unlisted_snapshot"] == sum(r["observed_utc"] == dropped for r in rows)
    assert reader.stats["bad_snapshot_time"] == 1


def test_bad_rows_are_skipped_counted_and_good_rows_kept(tmp_path: Path, warnings: list[str]) -> None:
    """Bad copies of real rows put into the log change nothing else: the batches equal the
    clean log's."""
    rows = rows_of()
    spread = next(r for r in rows if r["market"] == "spreads" and r["change"] == "update")
    i = rows.index(spread)
    bad = [
        dict(spread, price_american="abc"),  # bad_price
        dict(spread, price_american="+50"),  # bad_price
        dict(spread, price_american="1e400"),  # bad_price
        dict(spread, market="player_props"),  # unknown_market
        dict(spread, point="inf"),  # bad_line
        dict(spread, point=""),  # bad_line
        dict(spread, outcome="Over"),  # bad_outcome
        dict(spread, commence_time="soon"),  # bad_time
        dict(spread, change="moved"),  # bad_change
        dict(spread, book=""),  # missing_cell
        dict(spread, observed_utc="yesterday"),  # bad_time
        dict(spread, observed_utc=rows[0]["observed_utc"]),  # time_order
        dict(spread, change="removed", outcome="Under", market="totals", event_id="nope"),  # unknown_removal
    ]
    path = write_log(tmp_path / "bad.csv.gz", rows[:i] + bad + rows[i:])
    shutil.copy(TIMES, tmp_path / "bad_snapshot_times.txt")
    reader = OddsApiChangesReader(path)
    assert list(reader.batches()) == list(OddsApiChangesReader(LOG).batches())
    assert {k: v for k, v in reader.stats.items() if k not in ("snapshots", "updates")} == {
        "bad_price": 3, "unknown_market": 1, "bad_line": 2, "bad_outcome": 1, "bad_time": 2, "bad_change": 1,
        "missing_cell": 1, "time_order": 1, "unknown_removal": 1}
    assert any(f"{path}: line {i + 2}, column price_american:" in w for w in warnings)
    assert any(f"{path}: line {i + 13}, column observed_utc:" in w and "time_order" in w for w in warnings)


def test_a_short_row_is_a_missing_cell(tmp_path: Path) -> None:
    text = gzip.decompress(LOG.read_bytes()).decode().splitlines()
    text.insert(5, ",".join(text[5].split(",")[:4]))
    path = tmp_path / "short.csv.gz"
    path.write_bytes(gzip.compress("\n".join(text).encode()))
    reader = OddsApiChangesReader(path, snapshot_times=TIMES)
    assert list(reader.batches()) == list(OddsApiChangesReader(LOG).batches())
    assert reader.stats["missing_cell"] == 1


def test_a_wrong_header_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    text = gzip.decompress(LOG.read_bytes()).decode().replace("price_american", "odds", 1)
    path = tmp_path / "renamed.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(HistoryError) as caught:
        next(OddsApiChangesReader(path).batches())
    assert str(caught.value).startswith(f"{path}: line 1: missing column(s) price_american; expected observed_utc")
    assert "\n" not in str(caught.value)


CLEAN = list(OddsApiChangesReader(LOG).batches())


@settings(max_examples=12, deadline=None)
@given(fraction=st.floats(0.05, 0.98))
def test_a_truncated_gzip_yields_the_boards_before_the_damage_then_names_the_line(fraction: float) -> None:
    data = LOG.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        cut = Path(folder) / "cut.csv.gz"
        cut.write_bytes(data[: int(len(data) * fraction)])
        got: list[OddsBatch] = []
        with pytest.raises(HistoryError) as caught:
            got.extend(OddsApiChangesReader(cut, snapshot_times=TIMES).batches())
    match = re.fullmatch(rf"{re.escape(str(cut))}: line (\d+): the file is damaged .*", str(caught.value))
    assert match is not None, caught.value
    assert got == CLEAN[: len(got)] and len(got) < len(CLEAN)
    rows = rows_of()
    done = sum(r["observed_utc"] <= f"{got[-1].received_at:%Y-%m-%dT%H:%M:%SZ}" for r in rows) if got else 0
    assert done + 1 < int(match[1]) <= len(rows) + 2  # the boards yielded end before the line named


async def test_detect_and_the_history_feed_replay_the_log_on_event_time() -> None:
    assert detect(LOG) == "oddsapi_changes"
    clock = ReplayClock()
    seen: list[FeedEvent] = []
    progress: list[tuple[int, int]] = []

    async def emit(event: FeedEvent) -> None:
        assert isinstance(event, OddsBatch) and clock.now() == event.received_at
        seen.append(event)

    feed = HistoryFeed([OddsApiChangesReader(LOG)], clock, progress=lambda d, t: progress.append((d, t)))
    await feed.run(emit)
    assert seen == CLEAN
    assert progress[-1] == (LOG.stat().st_size, LOG.stat().st_size)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
