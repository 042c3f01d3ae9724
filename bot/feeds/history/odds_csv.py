"""The generic long odds CSV (docs/reference/odds-csv.md, "Odds file"): one row per quote
observation, rows in any order. The reader loads the file, sorts the rows stably by `time` and
emits the rows of one time as one `OddsBatch` (source "odds_csv", complete=False: a row refreshes
only the quote it names; a quote stands until a later row replaces or withdraws it).

Also the row reading the history readers share (`CsvFile`, `parse_utc`, `columns`): gzip told by
the first two bytes, UTF-8 decoded line by line so one undecodable line is one bad row, and a
truncated or corrupt gzip stream raised as `HistoryError` naming the line reached.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import groupby
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import BinaryIO, ClassVar

from bot.feeds.base import FeedStats
from bot.feeds.history.base import HistoryError
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_american, feed_decimal
from bot.types import FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

SPEC = "docs/reference/odds-csv.md"
REQUIRED = ("time", "sport", "start_time", "home", "away", "market", "outcome", "bookmaker")
PRICES = ("price", "price_american")  # at least one of them
OPTIONAL = ("fixture_id", "line", "side")
_OUTCOMES = {
    "moneyline": frozenset({"home", "away"}),
    "1x2": frozenset({"home", "away", "draw"}),
    "spread": frozenset({"home", "away"}),
    "total": frozenset({"over", "under"}),
}
_LINED = frozenset({"spread", "total"})
_CELLS = (*REQUIRED, *PRICES, *OPTIONAL)  # the order `_row` reads a row's cells in
_NEEDED = len(REQUIRED)  # the first cells of _CELLS, which may not be empty
_CACHE_MAX = 65_536  # distinct lines / prices kept parsed


class RowError(ValueError):
    """One bad row: `kind` is its FeedStats key, `column` the offending column's name."""

    def __init__(self, kind: str, column: str, why: str) -> None:
        super().__init__(why)
        self.kind, self.column = kind, column


@lru_cache(maxsize=8192)
def parse_utc(text: str) -> datetime:
    """An ISO 8601 time with a zone ("2025-11-16T17:45:00Z", "...+01:00") as UTC.

    Raises:
        ValueError: not ISO 8601, or no zone (a naive time could be any zone).
    """
    when = datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone")
    return when.astimezone(UTC)


def columns(path: Path, header: Sequence[str], required: Iterable[str], one_of: Sequence[str] = (),
            optional: Iterable[str] = (), expected: str = "") -> dict[str, int]:
    """Column name (lower case) -> index in `header` (cells stripped and lower-cased; the first
    of duplicate names wins), for the required, `one_of` and optional columns present.

    Raises:
        HistoryError: a required column is missing, or none of `one_of` is present; the message
            names the file, line 1, the missing column(s) and `expected` (what and where documented).
    """
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        index.setdefault(cell.strip().lower(), i)
    required = list(required)
    missing = [c for c in required if c not in index]
    if one_of and not any(c in index for c in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        raise HistoryError(f"{path}: line 1: missing column(s) {', '.join(missing)}; expected {expected}")
    return {c: index[c] for c in (*required, *one_of, *optional) if c in index}


class CsvFile:
    """A (possibly gzip-compressed) UTF-8 CSV file, read row by row without loading it.

    `rows()` yields (line number, cells, problem) for every non-blank row, the header included
    (line 1). `problem` is None for a readable row, else why the row cannot be read (a line that
    is not UTF-8, a field beyond csv's size limit): the caller skips and counts it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
        except OSError as exc:
            raise HistoryError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        self._raw: BinaryIO | None = None
        self._position = 0
        self._undecodable = False

    def tell(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for gzip)."""
        if self._raw is not None and not self._raw.closed:
            self._position = self._raw.tell()
        return self._position

    def _lines(self, binary: Iterable[bytes]) -> Iterator[str]:
        first = True
        for raw in binary:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:  # kept (as surrogates) so csv stays in step; the row is bad
                self._undecodable = True
                line = raw.decode("utf-8", "surrogateescape")
            if first:
                line, first = line.removeprefix("\ufeff"), False
            yield line

    def rows(self) -> Iterator[tuple[int, list[str], str | None]]:
        """Raises HistoryError: the file cannot be opened, or its gzip stream is truncated or
        corrupt (the message names the line reached; the rows before it were yielded)."""
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot be read: {exc.strerror or exc}") from None
        with raw:
            self._raw = raw
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            binary: Iterable[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            reader = csv.reader(self._lines(binary))
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:  # this row only: the reader goes on with the next line
                    yield reader.line_num, [], f"malformed CSV ({exc})"
                    continue
                except (OSError, EOFError, zlib.error) as exc:
                    raise HistoryError(
                        f"{self.path}: line {reader.line_num + 1}: the file is damaged and cannot be read on "
                        f"({type(exc).__name__}: {exc}); the boards before that line were read") from None
                problem = "not UTF-8" if self._undecodable else None
                self._undecodable = False
                if row or problem:
                    yield reader.line_num, row, problem
        self._position = self.size


class OddsCsvReader:
    """Reads one generic odds CSV (docs/reference/odds-csv.md). Options: `source`, the name the
    updates carry (default "odds_csv"). `progress` is (rows emitted, good rows), (0, 0) before
    the file is loaded. Bad rows are skipped and counted by kind (docs/reference/odds-csv.md,
    "Bad rows")."""

    name: ClassVar[str] = "odds_csv"

    def __init__(self, path: Path, source: str = "odds_csv") -> None:
        self.path, self.source = Path(path), source
        self.stats = FeedStats(source)
        self._done = self._total = 0
        self._fixtures: dict[FixtureKey, FixtureKey] = {}
        self._selections: dict[tuple[str, str, str, str, str, Decimal | None, str], Selection] = {}
        self._ids: dict[str, dict[str, str]] = {}
        self._lines: dict[str, Decimal] = {}
        self._prices: dict[tuple[str, str], tuple[float | None, int | None]] = {}

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        names = {c.strip().lower() for c in header}
        return {"time", "start_time", "home", "away", "market", "outcome", "bookmaker"} <= names and bool(
            names & set(PRICES))

    @property
    def progress(self) -> tuple[int, int]:
        return self._done, self._total

    def batches(self) -> Iterator[OddsBatch]:
        """The file's boards in time order. Raises HistoryError: wrong header (before any
        board); damaged gzip (after the boards of the rows read before the damage)."""
        updates, damage = self._load()
        updates.sort(key=attrgetter("received_at"))  # stable: equal times keep the file's order
        self._total = len(updates)
        for at, group in groupby(updates, key=attrgetter("received_at")):
            board = tuple(group)
            self._done += len(board)
            self.stats["snapshots"] += 1
            self.stats["updates"] += len(board)
            yield OddsBatch(self.source, at, board)
        if damage is not None:
            raise damage

    def _load(self) -> tuple[list[OddsUpdate], HistoryError | None]:
        file = CsvFile(self.path)
        rows = file.rows()
        first = next(rows, None)
        expected = f"{', '.join(REQUIRED)} and {' or '.join(PRICES)} ({SPEC})"
        if first is None:
            raise HistoryError(f"{self.path}: line 1: the file is empty; expected a header of {expected}")
        header = first[1]
        col = columns(self.path, header, REQUIRED, PRICES, OPTIONAL, expected)
        width = len(header) + 1  # rows are cut or padded to this; the last cell stands for absent columns
        pick = itemgetter(*(col.get(name, width - 1) for name in _CELLS))
        pad = [""] * width
        updates: list[OddsUpdate] = []
        try:
            for n, row, problem in rows:
                try:
                    if problem is not None:
                        raise RowError("malformed_row", "-", problem)
                    update = self._row([c.strip() for c in pick((row + pad)[:width])])
                except RowError as exc:
                    self.stats.bad(exc.kind, f"{self.path}: line {n}, column {exc.column}: {exc}", row, sparse=True)
                    continue
                updates.append(update)
        except HistoryError as exc:
            return updates, exc
        return updates, None

    def _row(self, cells: list[str]) -> OddsUpdate:
        """One row's update, from its cells in the order of _CELLS.

        Raises:
            RowError: the row is bad, or skipped on purpose (a lay quote); its kind and column named.
        """
        time, sport, start, home, away, market, outcome, bookmaker, price, american, fixture_id, line_text, side = cells
        if side and side.lower() != "back":
            if side.lower() == "lay":
                raise RowError("lay_not_supported", "side", "lay quotes are not read yet")
            raise RowError("bad_side", "side", f"{side!r} is neither back nor lay")
        if "" in cells[:_NEEDED]:
            raise RowError("missing_cell", _CELLS[cells.index("")], "empty")
        at = row_time(time, "time")
        market = market.lower()
        outcomes = _OUTCOMES.get(market)
        if outcomes is None:
            raise RowError("unknown_market", "market", f"{market!r} is not one of {', '.join(_OUTCOMES)}")
        outcome = outcome.lower()
        if outcome not in outcomes:
            raise RowError("bad_outcome", "outcome", f"{outcome!r} is not an outcome of {market}")
        line = self._line(line_text, market) if market in _LINED else None
        if market == "spread" and outcome == "away" and line is not None:
            line = -line + 0  # the key holds the HOME handicap (bot.types.MarketKey)
        priced = self._price(price, american)
        key = (sport, home, away, start, market, line, outcome)
        selection = self._selections.get(key)
        if selection is None:
            fixture = FixtureKey(sport, home, away, row_time(start, "start_time"))
            fixture = self._fixtures.setdefault(fixture, fixture)  # one object per fixture
            selection = self._selections[key] = Selection(fixture, MarketKey(market, "game", line), outcome)
        ids = self._ids.get(fixture_id)
        if ids is None:  # one dict per fixture id, shared: a season is held in memory until sorted
            ids = self._ids[fixture_id] = {"fixture_id": fixture_id} if fixture_id else {}
        return OddsUpdate(self.source, bookmaker, selection, priced[0], priced[1], priced[0] is None, at, at, ids)

    def _line(self, text: str, market: str) -> Decimal:
        line = self._lines.get(text)
        if line is None:
            if not text:
                raise RowError("bad_line", "line", f"a {market} row needs a line")
            try:
                line = to_line(text) or Decimal(0)  # never None for a string; 0 stays 0
            except LineError as exc:
                raise RowError("bad_line", "line", str(exc)) from None
            if len(self._lines) < _CACHE_MAX:
                self._lines[text] = line
        return line

    def _price(self, price: str, american: str) -> tuple[float | None, int | None]:
        """(decimal, American) of the row; (None, None) when both price cells are empty (a
        withdrawal). `price` wins over `price_american` when both are given."""
        key = (price, american)
        priced = self._prices.get(key)
        if priced is None:
            priced = _price(price, american)
            if len(self._prices) < _CACHE_MAX:
                self._prices[key] = priced
        return priced


def row_time(text: str, column: str) -> datetime:
    """A row's UTC time from `column`. Raises RowError("bad_time") naming the column."""
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise RowError("bad_time", column, str(exc)) from None


def _price(price: str, american: str) -> tuple[float | None, int | None]:
    if price:
        try:
            return feed_decimal(float(price))
        except ValueError as exc:  # float() of a non-number, or OddsError (out of bounds)
            raise RowError("bad_price", "price", f"{exc}" if isinstance(exc, OddsError)
                           else f"decimal odds must be a number, got {price!r}") from None
    if american:
        try:
            return feed_american(american)
        except OddsError as exc:
            raise RowError("bad_price", "price_american", str(exc)) from None
    return None, None
