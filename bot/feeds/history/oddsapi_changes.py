"""The Odds API change log (docs/reference/historical-data.md, "The Odds API change log"): a CSV
of every change between successive `/odds` snapshots (`observed_utc`, `change` new | update |
removed, `event_id`, `commence_time`, `home_team`, `away_team`, `book`, `market` h2h | spreads |
totals, `outcome`, `point`, `price_american`, ...), in time order, plus a companion list of the
snapshot times (`<stem>_snapshot_times.txt`).

Each snapshot becomes one complete `OddsBatch` (source "oddsapi"): the board at that time is the
forward-fill of the rows per (event_id, book, market, outcome), and a snapshot vouches for every
quote it does not change, so the batch holds the changes only, and a listed snapshot time with no
change row is an empty complete batch (it confirms the board; a time with no snapshot lets the
quotes age). The names are those `bot.feeds.oddsapi_decode.OddsApiDiffer` gives the same data:
sport = the `sport` option (the file has no sport column; The Odds API's `sport_title`, "NFL"),
h2h -> moneyline (1x2 when the book's h2h has a Draw), spreads -> spread keyed by the HOME
handicap (the away row's point negated), totals -> total; an event keeps the fixture (start
time) it was first seen with while it stays on the board. A changed point moves the quote to
another selection: the old one is withdrawn. `removed` withdraws (price None, suspended).

The file is streamed: one snapshot's rows and the live board are held, never the whole file.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import ClassVar

from loguru import logger

from bot.feeds.base import FeedStats
from bot.feeds.history.base import HistoryError
from bot.feeds.history.odds_csv import CsvFile, RowError, columns, parse_utc, row_time
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_american
from bot.types import BookCleared, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

DOC = "docs/reference/historical-data.md, The Odds API change log"
COLUMNS = ("observed_utc", "change", "event_id", "commence_time", "home_team", "away_team", "book", "market",
           "outcome", "point", "price_american")
_TYPES = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}
_SIDES = {"h2h": frozenset({"home", "away", "draw"}), "spreads": frozenset({"home", "away"}),
          "totals": frozenset({"over", "under"})}
_CACHE_MAX = 65_536  # distinct lines / prices kept parsed (a season has a few thousand)
_NAMED = {"draw": "draw", "over": "over", "under": "under"}  # outcome.lower() -> side, teams aside

Priced = tuple[float, int]  # decimal price, American odds
_Key = tuple[str, str, str, str]  # event_id, book, market, outcome as written
Change = tuple[str, ...]  # one row's cells in the order of COLUMNS, as written
_OBSERVED, _CHANGE, _EVENT, _COMMENCE, _HOME, _AWAY, _BOOK, _MARKET, _OUTCOME, _POINT, _PRICE = range(11)
_NEEDED = range(_POINT)  # the cells that may not be empty (point and price depend on the row)


class OddsApiChangesReader:
    """Reads one change log. Options: `sport` (default "NFL"), `snapshot_times` (default: the
    `<stem>_snapshot_times.txt` beside the file, used when it exists; an explicit path must
    exist), `source` (default "oddsapi", the live feed's name). `progress` is (bytes of the file
    read, file size). Raises HistoryError as `bot.feeds.history.base` says."""

    name: ClassVar[str] = "oddsapi_changes"

    def __init__(self, path: Path, sport: str = "NFL", snapshot_times: Path | None = None,
                 source: str = "oddsapi") -> None:
        self.path, self.sport, self.source = Path(path), sport, source
        self.snapshot_times = snapshot_times
        self.stats = FeedStats(source)
        self._file: CsvFile | None = None
        self._board: dict[_Key, tuple[Selection, Priced]] = {}
        self._fixtures: dict[str, FixtureKey] = {}  # event_id -> fixture, while it has quotes
        self._live: Counter[str] = Counter()  # event_id -> quotes on the board
        self._draws: set[tuple[str, str]] = set()  # (event_id, book) whose h2h has a Draw
        self._lines: dict[str, Decimal | None] = {}
        self._prices: dict[str, Priced] = {}
        # (event_id, type, point as written, side) -> its Selection, one object per key: the
        # book groups updates by the identity of their keys (bot/market/book.py, apply_batch)
        self._selections: dict[tuple[str, str, str, str], Selection] = {}
        self._markets: dict[tuple[str, Decimal | None], MarketKey] = {}
        self._listed: deque[datetime] = deque()  # snapshot times not yet emitted
        self._had_list = False

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        return set(COLUMNS) <= {c.strip().lower() for c in header}

    @property
    def progress(self) -> tuple[int, int]:
        return (self._file.tell(), self._file.size) if self._file is not None else (0, 0)

    def companion(self) -> Path:
        """The default snapshot-times file: `<stem>_snapshot_times.txt` beside the change log."""
        stem = self.path.name.removesuffix(".gz").removesuffix(".csv")
        return self.path.with_name(f"{stem}_snapshot_times.txt")

    def batches(self) -> Iterator[OddsBatch]:
        """One complete batch per snapshot, in time order (module docstring). Raises HistoryError:
        a wrong header or an unreadable explicit snapshot list (before any batch); a damaged gzip
        stream (after every snapshot before the damage)."""
        self._listed = deque(self._snapshot_list())
        self._file = CsvFile(self.path)
        rows = self._file.rows()
        first = next(rows, None)
        expected = f"{', '.join(COLUMNS)} ({DOC})"
        if first is None:
            raise HistoryError(f"{self.path}: line 1: the file is empty; expected a header of {expected}")
        index = columns(self.path, first[1], COLUMNS, expected=expected)
        pick = itemgetter(*(index[c] for c in COLUMNS))
        width = max(index.values()) + 1
        at: datetime | None = None  # the time of the rows in `group`
        text = ""  # ... as written
        group: list[tuple[int, Change]] = []
        for n, row, problem in rows:
            try:
                if problem is not None:
                    raise RowError("malformed_row", "-", problem)
                if len(row) < width:
                    missing = next(c for c in COLUMNS if index[c] >= len(row))
                    raise RowError("missing_cell", missing, f"the row has {len(row)} cells of {width}")
                cells: Change = pick(row)
                if "" in cells[:_POINT]:
                    raise RowError("missing_cell", COLUMNS[next(i for i in _NEEDED if not cells[i])], "empty")
                stamp = cells[_OBSERVED]
                if stamp != text:
                    when = row_time(stamp, "observed_utc")
                    if at is not None and when < at:
                        raise RowError("time_order", "observed_utc", f"{stamp} is before {at:%Y-%m-%dT%H:%M:%SZ}")
                    if when != at:
                        if at is not None:
                            yield from self._snapshots(at, group)
                        at, group = when, []
                    text = stamp
            except RowError as exc:
                self._bad(exc, n, row)
                continue
            group.append((n, cells))
        if at is not None:  # the last snapshot with changes (the file ended cleanly)
            yield from self._snapshots(at, group)
        while self._listed:  # listed snapshots after the last change
            yield self._batch(self._listed.popleft(), [])

    def _snapshots(self, at: datetime, group: list[tuple[int, Change]]) -> Iterator[OddsBatch]:
        """The listed snapshots before `at` (no change: empty), then the one at `at`."""
        while self._listed and self._listed[0] < at:
            yield self._batch(self._listed.popleft(), [])
        if self._listed and self._listed[0] == at:
            self._listed.popleft()
        elif self._had_list:  # rows at a time the list does not have: kept, counted
            for n, row in group:
                self.stats.bad("unlisted_snapshot",
                               f"{self.path}: line {n}, column observed_utc: not a listed snapshot time", row,
                               sparse=True)
        yield self._batch(at, group)

    def _snapshot_list(self) -> list[datetime]:
        """The listed snapshot times, sorted; [] (with a warning) without a companion file."""
        path = self.snapshot_times
        if path is None:
            path = self.companion()
            if not path.exists():
                logger.warning("{}: no snapshot times file ({}): snapshots without a change are unknown, "
                               "so quotes are confirmed only when a change row comes", self.path, path.name)
                return []
        self._had_list = True
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise HistoryError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise HistoryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        times: set[datetime] = set()
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    times.add(parse_utc(line))
                except ValueError as exc:
                    self.stats.bad("bad_snapshot_time", f"{path}: line {n}, column 1: {exc}", line, sparse=True)
        return sorted(times)

    def _bad(self, exc: RowError, n: int, row: Sequence[str]) -> None:
        self.stats.bad(exc.kind, f"{self.path}: line {n}, column {exc.column}: {exc}", row, sparse=True)

    def _batch(self, at: datetime, group: list[tuple[int, Change]]) -> OddsBatch:
        """The complete batch of one snapshot's change rows (none: the board confirmed as is)."""
        updates: list[OddsUpdate] = []
        cleared: list[BookCleared] = []
        drawn: dict[tuple[str, str], bool] = {}  # (event_id, book) -> its h2h has a Draw now
        for n, row in group:
            try:
                self._row(row, at, updates, cleared, drawn)
            except RowError as exc:
                self._bad(exc, n, row)
        for pair, draw in drawn.items():
            if draw != (pair in self._draws):
                self._retype(pair, draw, at, updates)
        self.stats["snapshots"] += 1
        self.stats["updates"] += len(updates)
        return OddsBatch(self.source, at, tuple(updates), tuple(cleared), complete=True)

    def _retype(self, pair: tuple[str, str], draw: bool, at: datetime, updates: list[OddsUpdate]) -> None:
        """A Draw came to (or left) the book's h2h: the differ names a whole snapshot's h2h 1x2
        when it has a Draw, so every quote of it moves to the new type."""
        if draw:
            self._draws.add(pair)
        else:
            self._draws.discard(pair)
        type_ = "1x2" if draw else "moneyline"
        event_id, book = pair
        ids = {"oddsapi_event_id": event_id}
        for key, (selection, priced) in list(self._board.items()):
            if key[:3] == (event_id, book, "h2h") and selection.market.type != type_:
                moved = Selection(selection.fixture, MarketKey(type_, "game", selection.market.line), selection.outcome)
                self._board[key] = (moved, priced)
                updates.append(OddsUpdate(self.source, book, selection, None, None, True, at, at, ids))
                updates.append(OddsUpdate(self.source, book, moved, priced[0], priced[1], False, at, at, ids))

    def _row(self, row: Change, at: datetime, updates: list[OddsUpdate], cleared: list[BookCleared],
             drawn: dict[tuple[str, str], bool]) -> None:
        """Apply one change row to the board, appending its updates and noting in `drawn` a
        Draw applied. Raises RowError (the board unchanged)."""
        change = row[_CHANGE].lower()
        if change not in ("new", "update", "removed"):
            raise RowError("bad_change", "change", f"{change!r} is not new, update or removed")
        market = row[_MARKET]
        if market not in _TYPES:
            raise RowError("unknown_market", "market", f"{market!r} is not h2h, spreads or totals")
        event_id, book, outcome, home, away = row[_EVENT], row[_BOOK], row[_OUTCOME], row[_HOME], row[_AWAY]
        start = row_time(row[_COMMENCE], "commence_time")
        side = "home" if outcome == home else "away" if outcome == away else _NAMED.get(outcome.lower(), "")
        if side not in _SIDES[market]:
            raise RowError("bad_outcome", "outcome", f"{outcome!r} is not an outcome of {market} in {home} vs {away}")
        key = (event_id, book, market, outcome)
        ids = {"oddsapi_event_id": event_id}
        if change == "removed":
            old = self._board.get(key)
            if old is None:
                raise RowError("unknown_removal", "outcome", "removes a quote that is not on the board")
            updates.append(OddsUpdate(self.source, book, old[0], None, None, True, at, at, ids))
            self._drop(key)
            if side == "draw":
                drawn[(event_id, book)] = False
            return
        point = row[_POINT]
        line = self._line(point, market)
        priced = self._price(row[_PRICE])
        fixture = self._fixture(event_id, home, away, start, at, updates, cleared)
        type_ = "1x2" if market == "h2h" and (event_id, book) in self._draws else _TYPES[market]
        selection = self._selection(fixture, event_id, type_, point, line, side)
        old = self._board.get(key)
        if old is None:
            self._live[event_id] += 1
        elif old[0] is not selection and old[0] != selection:  # the point moved: the old line's quote is gone
            updates.append(OddsUpdate(self.source, book, old[0], None, None, True, at, at, ids))
        elif old[1] == priced:
            return
        self._board[key] = (selection, priced)
        updates.append(OddsUpdate(self.source, book, selection, priced[0], priced[1], False, at, at, ids))
        if side == "draw":
            drawn[(event_id, book)] = True

    def _selection(self, fixture: FixtureKey, event_id: str, type_: str, point: str, line: Decimal | None,
                   side: str) -> Selection:
        """The one Selection object of this outcome of the fixture's market at `line`."""
        key = (event_id, type_, point, side)
        selection = self._selections.get(key)
        if selection is not None and selection.fixture is fixture:
            return selection
        if type_ == "spread" and side == "away" and line is not None:
            line = -line + 0  # the key holds the HOME handicap (bot.types.MarketKey)
        market = self._markets.get((type_, line))
        if market is None:
            market = self._markets[(type_, line)] = MarketKey(type_, "game", line)
        if len(self._selections) > _CACHE_MAX:
            self._selections.clear()
        selection = self._selections[key] = Selection(fixture, market, side)
        return selection

    def _fixture(self, event_id: str, home: str, away: str, start: datetime, at: datetime,
                 updates: list[OddsUpdate], cleared: list[BookCleared]) -> FixtureKey:
        """The event's fixture: the one first seen while it stays on the board (The Odds API
        moves commence_time to the real kickoff); new teams under the same id clear the old."""
        fixture = self._fixtures.get(event_id)
        if fixture is not None and (fixture.home, fixture.away) == (home, away):
            return fixture
        if fixture is not None:  # another game under this id: its quotes are gone
            cleared.append(BookCleared(self.source, at, fixture=fixture))
            updates[:] = [u for u in updates if u.selection.fixture != fixture]  # the clear applies first
            for key in [k for k in self._board if k[0] == event_id]:
                self._drop(key)
            self._draws -= {p for p in self._draws if p[0] == event_id}
        fixture = self._fixtures[event_id] = FixtureKey(self.sport, home, away, start)
        return fixture

    def _drop(self, key: _Key) -> None:
        del self._board[key]
        self._live[key[0]] -= 1
        if self._live[key[0]] <= 0:  # off the board: a return is seen afresh, as the differ does
            del self._live[key[0]]
            self._fixtures.pop(key[0], None)

    def _line(self, text: str, market: str) -> Decimal | None:
        if text in self._lines:
            return self._lines[text]
        if not text:
            if market != "h2h":
                raise RowError("bad_line", "point", f"a {market} row needs a point")
            return None
        if len(self._lines) > _CACHE_MAX:
            self._lines.clear()
        try:
            line = self._lines[text] = to_line(text)
        except LineError as exc:
            raise RowError("bad_line", "point", str(exc)) from None
        return line

    def _price(self, text: str) -> Priced:
        priced = self._prices.get(text)
        if priced is None:
            if not text:
                raise RowError("bad_price", "price_american", "empty on a new or update row")
            if len(self._prices) > _CACHE_MAX:
                self._prices.clear()
            try:
                priced = self._prices[text] = feed_american(text)
            except OddsError as exc:
                raise RowError("bad_price", "price_american", str(exc)) from None
        return priced

