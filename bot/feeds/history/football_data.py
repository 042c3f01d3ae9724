"""football-data.co.uk season files (docs/reference/historical-data.md, "football-data.co.uk"):
one row per match with opening and closing decimal odds of several bookmakers.

Each match gives two boards (source "football_data", complete=False):
- OPENING at `opening_time(kickoff)`: football-data collects opening odds on Friday afternoons
  for weekend games and on Tuesday afternoons for midweek games, so a Fri-Mon kickoff opens at
  the Friday on or before it, a Tue-Thu kickoff at the Tuesday on or before it, 15:00 UK local
  either way, and never later than kickoff - 1 h;
- CLOSING at kickoff - 5 min (football-data's closing odds are the last before kickoff; 5 min
  leaves the strategies a decision window before the match starts).
Boards of every match are sorted by time, boards of equal time merged into one `OddsBatch`.

Fixture: FixtureKey(sport=Div, home=HomeTeam, away=AwayTeam, start=Date (dd/mm/yyyy) + Time UK
local -> UTC, 15:00 when Time is blank), exactly as bot/sim/results.py FOOTBALL_DATA loads the
same file, so bets settle. Markets (period "game"): 1x2 (home/draw/away), total 2.5
(over/under), spread at AHh / AHCh (the HOME handicap, quarter lines kept). Max* / Avg* columns
are market aggregates, not bookmakers: not emitted. An empty cell is no quote (no update); a
market with an unreadable or implausible price or line is skipped, each bad cell counted
("bad_outcome") with file, line and column; a row without Div, Date or a team ("missing_field")
or with a bad date/time ("bad_time") is skipped and counted. `stats` also counts "messages"
(rows read), "frames" (boards emitted) and "updates".
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, TextIO
from zoneinfo import ZoneInfo

from bot.feeds.base import FeedStats
from bot.feeds.history.base import HistoryError
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_decimal
from bot.types import FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

UK = ZoneInfo("Europe/London")
SOURCE = "football_data"
DEFAULT_TIME = "15:00"  # kickoff of rows with a blank Time, as bot/sim/results.py FOOTBALL_DATA
OPEN_CLOCK = (15, 0)  # opening board: 15:00 UK local on the collection day
OPEN_LEAD = timedelta(hours=1)  # ... and never later than kickoff - 1 h
CLOSE_LEAD = timedelta(minutes=5)  # closing board: kickoff - 5 min
REQUIRED = ("Div", "Date", "HomeTeam", "AwayTeam")

# (opening prefix, closing prefix, bookmaker slug); Pinnacle's 1x2 prefix is "PS", its total
# and Asian handicap prefix "P".
BOOKS_1X2 = (("B365", "B365C", "bet365"), ("BW", "BWC", "bwin"), ("IW", "IWC", "interwetten"),
             ("PS", "PSC", "pinnacle"), ("WH", "WHC", "williamhill"), ("VC", "VCC", "vcbet"))
BOOKS_OU_AH = (("B365", "B365C", "bet365"), ("P", "PC", "pinnacle"))
OU_LINE = Decimal("2.5")
MARKET_1X2 = MarketKey("1x2", "game")
MARKET_OU = MarketKey("total", "game", OU_LINE)
_BROKEN = (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error)  # a damaged file


@dataclass(frozen=True, slots=True)
class _Spec:
    """One bookmaker's market on one board: outcome -> column index; `line` the column of the
    Asian handicap line (None: the market's line is fixed)."""

    bookmaker: str
    market: MarketKey | None  # None: spread, its line read from `line`
    outcomes: tuple[tuple[str, int], ...]
    line: int | None = None


def _specs(header: Sequence[str], closing: bool) -> tuple[_Spec, ...]:
    """The markets a header carries for one board; columns absent from the file are left out."""
    col = {name: i for i, name in enumerate(header)}
    out: list[_Spec] = []

    def add(slug: str, market: MarketKey | None, cols: dict[str, str], line: str | None = None) -> None:
        if all(c in col for c in cols.values()) and (line is None or line in col):
            out.append(_Spec(slug, market, tuple((o, col[c]) for o, c in cols.items()),
                             None if line is None else col[line]))

    for opening, close, slug in BOOKS_1X2:
        p = close if closing else opening
        add(slug, MARKET_1X2, {"home": f"{p}H", "draw": f"{p}D", "away": f"{p}A"})
    for opening, close, slug in BOOKS_OU_AH:
        p = close if closing else opening
        add(slug, MARKET_OU, {"over": f"{p}>2.5", "under": f"{p}<2.5"})
        add(slug, None, {"home": f"{p}AHH", "away": f"{p}AHA"}, "AHCh" if closing else "AHh")
    return tuple(out)


def opening_time(kickoff: datetime) -> datetime:
    """The opening board's time (UTC) of a match kicking off at `kickoff` (UTC): 15:00 UK local
    on the Friday (Fri-Mon kickoffs) or Tuesday (Tue-Thu kickoffs) on or before the kickoff's UK
    date, capped at kickoff - 1 h (football-data.co.uk's notes on opening odds)."""
    local = kickoff.astimezone(UK)
    weekday = local.weekday()  # Monday 0 .. Sunday 6
    back = (weekday - 4) % 7 if weekday in (4, 5, 6, 0) else weekday - 1
    day = local.date() - timedelta(days=back)
    opened = datetime(day.year, day.month, day.day, *OPEN_CLOCK, tzinfo=UK).astimezone(UTC)
    return min(opened, kickoff - OPEN_LEAD)


def _open_text(path: Path) -> TextIO:
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rt", newline="", encoding="utf-8-sig") if gz
            else path.open(newline="", encoding="utf-8-sig"))


@dataclass(slots=True)
class _Match:
    fixture: FixtureKey
    cells: list[str]
    line: int  # line number in the file


class FootballDataReader:
    """A football-data.co.uk CSV (optionally .gz), as boards (module docstring). `progress` is
    (boards emitted, boards in the file), the total known once the file is read."""

    name: ClassVar[str] = "football_data"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.stats = FeedStats(f"{self.name}:{self.path.name}")
        self._done = self._total = 0
        self._header: list[str] = []
        self._prices: dict[str, tuple[float, int]] = {}  # a few thousand distinct prices: each parsed once

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        """Div, Date, HomeTeam, AwayTeam and at least one known odds column."""
        if not set(REQUIRED) <= set(header):
            return False
        return bool(_specs(header, False) or _specs(header, True))

    @property
    def progress(self) -> tuple[int, int]:
        return self._done, self._total

    def batches(self) -> Iterator[OddsBatch]:
        """Every match's opening and closing board in time order (module docstring).

        Raises:
            HistoryError: the header lacks a required column or has no known odds column
                (before the first batch); a truncated or corrupt file (after the boards of
                every row read before the damage).
        """
        matches, specs, error = self._read()
        boards: list[tuple[datetime, int, int]] = []  # (time, match, 0 opening / 1 closing)
        for i, m in enumerate(matches):
            kickoff = m.fixture.start_time
            boards.append((opening_time(kickoff), i, 0))
            boards.append((kickoff - CLOSE_LEAD, i, 1))
        boards.sort()
        self._total = len(boards)
        k = 0
        while k < len(boards):
            at, updates = boards[k][0], []
            while k < len(boards) and boards[k][0] == at:
                _, i, kind = boards[k]
                updates.extend(self._board(matches[i], specs[kind], at, closing=kind == 1, opening=specs[0]))
                k += 1
            self._done = k
            self.stats["frames"] += 1
            self.stats["updates"] += len(updates)
            yield OddsBatch(SOURCE, at, tuple(updates))
        if error is not None:
            raise error

    def _read(self) -> tuple[list[_Match], tuple[tuple[_Spec, ...], tuple[_Spec, ...]], HistoryError | None]:
        """The file's matches, the markets of each board kind, and the error that ended the
        reading early (a damaged file), if any."""
        matches: list[_Match] = []
        n = 1
        with _open_text(self.path) as f:
            rows = csv.reader(f)
            try:
                header = next(rows, [])
            except _BROKEN as e:
                raise HistoryError(f"{self.path}: line 1: unreadable header ({e})") from None
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise HistoryError(f"{self.path}: line 1, column {missing[0]}: missing; a football-data.co.uk "
                                   f"file needs {', '.join(REQUIRED)} (header: {','.join(header)[:200]})")
            self._header = header
            specs = (_specs(header, False), _specs(header, True))
            if not (specs[0] or specs[1]):
                raise HistoryError(f"{self.path}: line 1: no known odds column (e.g. B365H, PSCH, P>2.5)")
            cols = {c: header.index(c) for c in (*REQUIRED, "Time") if c in header}
            width = len(header)
            fixtures: dict[tuple[str, str, str, datetime], FixtureKey] = {}
            try:
                for n, row in enumerate(rows, 2):
                    self.stats["messages"] += 1
                    row = [c.strip() for c in row]
                    if len(row) < width:
                        row += [""] * (width - len(row))
                    fixture = self._fixture(row, cols, n, fixtures)
                    if fixture is not None:
                        matches.append(_Match(fixture, row, n))
            except _BROKEN as e:
                return matches, specs, HistoryError(f"{self.path}: line {n + 1}: file ends or breaks here ({e})")
        return matches, specs, None

    def _fixture(self, row: list[str], cols: dict[str, int], n: int,
                 fixtures: dict[tuple[str, str, str, datetime], FixtureKey]) -> FixtureKey | None:
        div, date, home, away = (row[cols[c]] for c in REQUIRED)
        for column, value in zip(REQUIRED, (div, date, home, away), strict=True):
            if not value:
                self.stats.bad("missing_field", f"{self.path}: line {n}, column {column}: empty", row, sparse=True)
                return None
        clock = (row[cols["Time"]] if "Time" in cols else "") or DEFAULT_TIME
        try:
            kickoff = datetime.strptime(f"{date} {clock}", "%d/%m/%Y %H:%M").replace(tzinfo=UK).astimezone(UTC)
        except ValueError:
            column = "Date" if not _is_date(date) else "Time"
            self.stats.bad("bad_time", f"{self.path}: line {n}, column {column}: {date} {clock} is not "
                           "dd/mm/yyyy HH:MM", row, sparse=True)
            return None
        key = (div, home, away, kickoff)
        found = fixtures.get(key)
        if found is None:
            found = fixtures[key] = FixtureKey(div, home, away, kickoff)
        return found

    def _board(self, match: _Match, specs: tuple[_Spec, ...], at: datetime, *, closing: bool,
               opening: tuple[_Spec, ...]) -> list[OddsUpdate]:
        """One match's updates on one board. At the close, a bookmaker whose Asian handicap line
        moved has its opening line's market withdrawn (suspended updates)."""
        cells, fixture, out = match.cells, match.fixture, []
        for spec in specs:
            market = self._market(match, spec)
            if market is None:
                continue
            prices = []
            for outcome, i in spec.outcomes:
                text = cells[i]
                quote = self._prices.get(text)
                if quote is None:
                    try:
                        quote = self._prices[text] = feed_decimal(float(text))
                    except (ValueError, OddsError) as e:
                        self.stats.bad("bad_outcome", f"{self.path}: line {match.line}, column {self._column(i)}: "
                                       f"{e}", cells, sparse=True)
                        continue
                prices.append((outcome, *quote))
            if len(prices) < len(spec.outcomes):  # a market is quoted whole or not at all
                continue
            for outcome, price, american in prices:
                out.append(OddsUpdate(SOURCE, spec.bookmaker, Selection(fixture, market, outcome), price,
                                      american, False, at, at))
            if closing and spec.market is None:
                out.extend(self._withdraw_opening_line(match, spec, market, opening, at))
        return out

    def _market(self, match: _Match, spec: _Spec) -> MarketKey | None:
        """The spec's market key on this row; None when the row has no quote for it (every price
        cell empty) or it cannot be read (counted)."""
        cells = match.cells
        filled = [bool(cells[i]) for _, i in spec.outcomes]
        if not any(filled):
            return None
        if not all(filled):
            i = spec.outcomes[filled.index(False)][1]
            self.stats.bad("missing_field", f"{self.path}: line {match.line}, column {self._column(i)}: empty "
                           "while the market's other prices are set", cells, sparse=True)
            return None
        if spec.market is not None:
            return spec.market
        assert spec.line is not None  # a spread spec always names its line column
        try:
            line = to_line(cells[spec.line] or None)
        except LineError as e:
            self.stats.bad("bad_outcome", f"{self.path}: line {match.line}, column {self._column(spec.line)}: {e}",
                           cells, sparse=True)
            return None
        if line is None:
            self.stats.bad("missing_field", f"{self.path}: line {match.line}, column {self._column(spec.line)}: "
                           "empty handicap with prices set", cells, sparse=True)
            return None
        return MarketKey("spread", "game", line)

    def _withdraw_opening_line(self, match: _Match, spec: _Spec, market: MarketKey,
                               opening: tuple[_Spec, ...], at: datetime) -> list[OddsUpdate]:
        for before in opening:
            if before.bookmaker == spec.bookmaker and before.market is None:
                old = self._market_quiet(match, before)
                if old is not None and old != market:
                    return [OddsUpdate(SOURCE, spec.bookmaker, Selection(match.fixture, old, o), None, None, True, at, at)
                            for o, _ in before.outcomes]
        return []

    def _market_quiet(self, match: _Match, spec: _Spec) -> MarketKey | None:
        """The opening spread market as it was emitted (bad input was counted then)."""
        cells = match.cells
        if not all(cells[i] for _, i in spec.outcomes) or spec.line is None:
            return None
        try:
            for _, i in spec.outcomes:
                feed_decimal(float(cells[i]))
            line = to_line(cells[spec.line] or None)
        except (ValueError, OddsError):  # LineError is a ValueError
            return None
        return None if line is None else MarketKey("spread", "game", line)

    def _column(self, index: int) -> str:
        return self._header[index] if index < len(self._header) else f"#{index + 1}"


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return False
    return True
