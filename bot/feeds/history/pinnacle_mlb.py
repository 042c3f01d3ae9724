"""Pinnacle's MLB 2016 line history (docs/reference/historical-data.md, "Pinnacle MLB 2016"):
`mlb2016_pinnacle_lines.csv(.gz)`, every change of Pinnacle's quote of a game, read with the
games file `mlb2016_games.csv` (teams and corrected kickoff) beside it.

Lines file columns: GameID, EnteredDateTimeUTC (ISO 8601, UTC), SpreadTeam1 (the AWAY team's run
line, e.g. 1.5 when the home side is the -1.5 favourite), SpreadUS1 / SpreadUS2 (away / home run
line prices), MoneyUS1 / MoneyUS2 (away / home moneyline), TotalPoints, TotalUSOver,
TotalUSUnder; American odds. Each row is the game's WHOLE quote at that moment.

One `OddsBatch` per row at EnteredDateTimeUTC (source and bookmaker "pinnacle", complete=False),
rows sorted by time across games (the file is ordered by game). Markets (period "game"):
moneyline home/away, spread at the HOME handicap (-SpreadTeam1) home/away, total over/under.
A row replaces the game's quote: a market the previous row quoted and this one does not (a moved
line, an emptied market) is withdrawn with suspended updates for its outcomes.
Fixture: FixtureKey("MLB", HomeTeam, AwayTeam, EventDateTimeUTC) from the games file, as
bot/sim/results.py MLB_GAMES loads it; feed_ids {"pinnacle_game_id": GameID}.
Rows at or after the game's start (in-play prices and postponed games, about 12 % of rows) are
kept and counted ("after_start"); strategies ignore in-play prices.
Bad input: a market with an empty or unreadable price or line is left out of the row's quote
(so withdrawn) and each bad cell counted ("bad_outcome", "missing_field"); a row with a bad time
("bad_time") or a GameID the games file lacks ("unknown_fixture") is skipped and counted. A row
quoting nothing withdraws every market of the game (an empty board if none was quoted). `stats`
also counts "messages" (rows read), "frames" (boards emitted) and "updates".
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import ClassVar, TextIO

from bot.feeds.base import FeedStats
from bot.feeds.history.base import HistoryError
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, feed_american
from bot.types import FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

SOURCE = BOOKMAKER = "pinnacle"
SPORT = "MLB"
GAMES_FILE = "mlb2016_games.csv"
LINES_COLUMNS = ("GameID", "EnteredDateTimeUTC", "SpreadTeam1", "SpreadUS1", "SpreadUS2", "MoneyUS1",
                 "MoneyUS2", "TotalPoints", "TotalUSOver", "TotalUSUnder")
GAMES_COLUMNS = ("GameID", "EventDateTimeUTC", "AwayTeam", "HomeTeam")
MONEYLINE = MarketKey("moneyline", "game")
_MARKETS: tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...] = (
    # (market type, column of its line (0: none), ((outcome, column of its price), ...)), columns
    # indexing LINES_COLUMNS
    ("moneyline", 0, (("away", 5), ("home", 6))),
    ("spread", 2, (("away", 3), ("home", 4))),
    ("total", 7, (("over", 8), ("under", 9))),
)
_BROKEN = (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error)  # a damaged file


def _open_text(path: Path) -> TextIO:
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rt", newline="", encoding="utf-8-sig") if gz
            else path.open(newline="", encoding="utf-8-sig"))


def _utc(text: str) -> datetime:
    """An ISO 8601 UTC time such as 2016-04-03T02:44:31Z. Raises ValueError otherwise."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return at.astimezone(UTC)


class _Game:
    __slots__ = ("fixture", "ids", "quoted", "selections")

    def __init__(self, fixture: FixtureKey, game_id: str) -> None:
        self.fixture = fixture
        self.ids = {"pinnacle_game_id": game_id}
        self.quoted: dict[MarketKey, tuple[str, ...]] = {}  # the previous row's markets
        self.selections: dict[tuple[MarketKey, str], Selection] = {}

    def selection(self, market: MarketKey, outcome: str) -> Selection:
        key = (market, outcome)
        found = self.selections.get(key)
        if found is None:
            found = self.selections[key] = Selection(self.fixture, market, outcome)
        return found


class PinnacleMlbReader:
    """Pinnacle MLB 2016 lines (module docstring). `games` is the games file; None looks for
    `mlb2016_games.csv` (or .csv.gz) beside `path`. `progress` is (rows emitted, rows read)."""

    name: ClassVar[str] = "pinnacle_mlb"

    def __init__(self, path: Path, games: Path | None = None) -> None:
        self.path = Path(path)
        self.games = games
        self.stats = FeedStats(f"{self.name}:{self.path.name}")
        self._done = self._total = 0
        # the file repeats a handful of prices and lines: each is parsed once
        self._prices: dict[str, tuple[float, int]] = {}
        self._markets: dict[tuple[str, str], MarketKey] = {}

    @classmethod
    def sniff(cls, header: list[str]) -> bool:
        """GameID, EnteredDateTimeUTC, MoneyUS1 and MoneyUS2 (Pinnacle's line-change columns)."""
        return {"GameID", "EnteredDateTimeUTC", "MoneyUS1", "MoneyUS2"} <= set(header)

    @property
    def progress(self) -> tuple[int, int]:
        return self._done, self._total

    def batches(self) -> Iterator[OddsBatch]:
        """One board per row, in time order (module docstring).

        Raises:
            HistoryError: no games file, or a header lacking a column (before the first batch);
                a truncated or corrupt lines file (after the boards of every row read before it).
        """
        games = self._load_games()
        rows, error = self._read(games)
        rows.sort(key=itemgetter(0))  # stable: rows of one time keep the file's order
        self._total = len(rows)
        for k, (at, game, cells, n) in enumerate(rows):
            if at >= game.fixture.start_time:
                self.stats["after_start"] += 1
            updates = self._quote(game, cells, n, at)
            self._done = k + 1
            self.stats["frames"] += 1
            self.stats["updates"] += len(updates)
            yield OddsBatch(SOURCE, at, tuple(updates))
        if error is not None:
            raise error

    def _games_path(self) -> Path:
        if self.games is not None:
            if not self.games.is_file():
                raise HistoryError(f"{self.games}: games file not found (needed for {self.path.name}'s teams "
                                   "and kickoffs)")
            return self.games
        for name in (GAMES_FILE, f"{GAMES_FILE}.gz"):
            beside = self.path.with_name(name)
            if beside.is_file():
                return beside
        raise HistoryError(f"{self.path}: needs the games file {GAMES_FILE} ({', '.join(GAMES_COLUMNS)}) "
                           "beside it, or the reader's `games` option")

    def _load_games(self) -> dict[str, _Game]:
        """GameID -> game. Raises HistoryError on a missing file or column, or a damaged file."""
        path = self._games_path()
        games: dict[str, _Game] = {}
        n = 1
        try:
            with _open_text(path) as f:
                rows = csv.reader(f)
                header = next(rows, [])
                col = self._columns(path, header, GAMES_COLUMNS)
                for n, row in enumerate(rows, 2):
                    cells = [row[i].strip() if i < len(row) else "" for i in col]
                    game_id, start, away, home = cells
                    try:
                        kickoff = _utc(start)
                    except ValueError as e:
                        self.stats.bad("bad_time", f"{path}: line {n}, column EventDateTimeUTC: {e}", row, sparse=True)
                        continue
                    if not (game_id and away and home):
                        self.stats.bad("missing_field", f"{path}: line {n}: GameID, AwayTeam or HomeTeam empty",
                                       row, sparse=True)
                        continue
                    games[game_id] = _Game(FixtureKey(SPORT, home, away, kickoff), game_id)
        except _BROKEN as e:
            raise HistoryError(f"{path}: line {n + 1}: file ends or breaks here ({e})") from None
        return games

    @staticmethod
    def _columns(path: Path, header: list[str], needed: tuple[str, ...]) -> list[int]:
        missing = [c for c in needed if c not in header]
        if missing:
            raise HistoryError(f"{path}: line 1, column {missing[0]}: missing; needs {', '.join(needed)} "
                               f"(header: {','.join(header)[:200]})")
        return [header.index(c) for c in needed]

    def _read(self, games: dict[str, _Game]) -> tuple[list[tuple[datetime, _Game, list[str], int]], HistoryError | None]:
        """The lines file's good rows as (time, game, cells in LINES_COLUMNS order, line number),
        and the error that ended the reading early (a damaged file), if any."""
        out: list[tuple[datetime, _Game, list[str], int]] = []
        n = 1
        with _open_text(self.path) as f:
            rows = csv.reader(f)
            try:
                header = next(rows, [])
            except _BROKEN as e:
                raise HistoryError(f"{self.path}: line 1: unreadable header ({e})") from None
            col = self._columns(self.path, header, LINES_COLUMNS)
            try:
                for n, row in enumerate(rows, 2):
                    self.stats["messages"] += 1
                    cells = [row[i].strip() if i < len(row) else "" for i in col]
                    game = games.get(cells[0])
                    if game is None:
                        self.stats.bad("unknown_fixture", f"{self.path}: line {n}, column GameID: {cells[0]!r} "
                                       "is not in the games file", row, sparse=True)
                        continue
                    try:
                        at = _utc(cells[1])
                    except ValueError as e:
                        self.stats.bad("bad_time", f"{self.path}: line {n}, column EnteredDateTimeUTC: {e}",
                                       row, sparse=True)
                        continue
                    out.append((at, game, cells, n))
            except _BROKEN as e:
                return out, HistoryError(f"{self.path}: line {n + 1}: file ends or breaks here ({e})")
        return out, None

    def _quote(self, game: _Game, cells: list[str], n: int, at: datetime) -> list[OddsUpdate]:
        """The row's updates: its markets' prices, then withdrawals of the previous row's markets
        it no longer quotes."""
        quoted: dict[MarketKey, tuple[str, ...]] = {}
        updates: list[OddsUpdate] = []
        for kind, line_col, outcomes in _MARKETS:
            if not (line_col and cells[line_col]) and not any(cells[i] for _, i in outcomes):
                continue  # not quoted in this row
            market = self._line_market(kind, line_col, n, cells) if line_col else MONEYLINE
            if market is None:
                continue
            prices = [self._price(n, i, cells) for _, i in outcomes]
            if None in prices:
                continue
            for (outcome, _), p in zip(outcomes, prices, strict=True):
                assert p is not None
                updates.append(OddsUpdate(SOURCE, BOOKMAKER, game.selection(market, outcome), p[0], p[1], False,
                                          at, at, game.ids))
            quoted[market] = tuple(o for o, _ in outcomes)
        for market, names in game.quoted.items():
            if market not in quoted:
                updates.extend(OddsUpdate(SOURCE, BOOKMAKER, game.selection(market, o), None, None, True, at, at,
                                          game.ids) for o in names)
        game.quoted = quoted
        return updates

    def _line_market(self, kind: str, column: int, n: int, cells: list[str]) -> MarketKey | None:
        """The spread (home handicap = -SpreadTeam1) or total market of a row; None when its
        line is empty or unreadable (counted)."""
        text = cells[column]
        found = self._markets.get((kind, text))
        if found is not None:
            return found
        try:
            line = to_line(text or None)
        except LineError as e:
            self.stats.bad("bad_outcome", f"{self.path}: line {n}, column {LINES_COLUMNS[column]}: {e}", cells,
                           sparse=True)
            return None
        if line is None:
            self.stats.bad("missing_field", f"{self.path}: line {n}, column {LINES_COLUMNS[column]}: empty line "
                           "with prices set", cells, sparse=True)
            return None
        if kind == "spread":
            line = -line + 0  # the away side's run line, turned to the home side's; + 0: no -0
        found = self._markets[(kind, text)] = MarketKey(kind, "game", line)
        return found

    def _price(self, n: int, column: int, cells: list[str]) -> tuple[float, int] | None:
        """(decimal, American) of a price cell; None when it is empty or unreadable (counted)."""
        text = cells[column]
        found = self._prices.get(text)
        if found is not None:
            return found
        if not text:
            self.stats.bad("missing_field", f"{self.path}: line {n}, column {LINES_COLUMNS[column]}: empty price",
                           cells, sparse=True)
            return None
        try:
            found = self._prices[text] = feed_american(text)
        except OddsError as e:
            self.stats.bad("bad_outcome", f"{self.path}: line {n}, column {LINES_COLUMNS[column]}: {e}", cells,
                           sparse=True)
            return None
        return found
