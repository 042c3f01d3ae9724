"""Grading bets from final scores, and the loader of the results files paper settlement grades
with (docs/architecture.md, "Simulators").

Grading follows standard bookmaker rules (and ABP's settlement states, docs/reference/abp.md §9):
- a fixture whose result status is void, postponed or abandoned voids every bet on it (VOID,
  stake returned), whatever the market (docs/reference/odds-csv.md, "Results file");
- moneyline (2-way, incl. overtime): a tie is a PUSH (stake returned);
- 1x2 (3-way, regular time, outcomes home / draw / away): the one matching the score WINS, the
  other two LOSE;
- spread: `MarketKey.line` is the HOME handicap; home covers when home - away + line > 0;
  a whole-number line can PUSH; a quarter line (x.25 / x.75, Asian handicap) is split into
  the two neighbouring half-lines, giving HALF_WON / HALF_LOST;
- total: over wins when the total exceeds the line; quarter lines split likewise.
Markets we cannot grade (props, periods without period scores) return None: the bet stays open,
or is voided under `settlement.unresolved: void_after_hours` (bot/sim/settlement.py).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.types import FixtureKey, Selection, SettlementStatus

S = SettlementStatus
EASTERN = ZoneInfo("America/New_York")
UK = ZoneInfo("Europe/London")


FINAL = "final"
RESULT_STATUSES = (FINAL, "void", "postponed", "abandoned")
"""A results row's `status` (docs/reference/odds-csv.md, "Results file"); all but `final` void."""


@dataclass(frozen=True, slots=True)
class FixtureResult:
    """Result of one fixture: `start_time` is the kickoff in UTC; the scores are the final score
    (regular time for soccer, as the source defines it), None when `status` is not `final`;
    `status` is one of RESULT_STATUSES; `fixture_id` the results source's own id, if it has one.
    `outcomes` settles markets a score cannot: (market type, outcome, status) per runner, as an
    exchange's final market definition states it (bot/feeds/history/betfair.py, Settlement)."""

    sport: str
    home: str
    away: str
    start_time: datetime
    home_score: int | None
    away_score: int | None
    status: str = FINAL
    fixture_id: str | None = None
    outcomes: tuple[tuple[str, str, SettlementStatus], ...] = ()

    def outcome_status(self, market_type: str, outcome: str) -> SettlementStatus | None:
        """How a back bet on (market type, outcome) settles by `outcomes`; None when not there."""
        for type_, name, status in self.outcomes:
            if name == outcome and type_ == market_type:
                return status
        return None


def _single_line(diff: Decimal) -> S:
    """diff = the bet's side's score margin after the line; > 0 wins."""
    if diff > 0:
        return S.WON
    if diff < 0:
        return S.LOST
    return S.PUSH


_COMBINE = {
    (S.WON, S.WON): S.WON,
    (S.LOST, S.LOST): S.LOST,
    (S.WON, S.PUSH): S.HALF_WON,
    (S.PUSH, S.WON): S.HALF_WON,
    (S.LOST, S.PUSH): S.HALF_LOST,
    (S.PUSH, S.LOST): S.HALF_LOST,
    (S.PUSH, S.PUSH): S.PUSH,
}


def _handicap(margin: Decimal, line: Decimal) -> S:
    """Grade `margin + line` with Asian quarter lines split into two half stakes."""
    if abs(line * 4) % 2 == 1:  # quarter line: x.25 or x.75
        low, high = line - Decimal("0.25"), line + Decimal("0.25")
        return _COMBINE[(_single_line(margin + low), _single_line(margin + high))]
    return _single_line(margin + line)


def grade(selection: Selection, result: FixtureResult) -> S | None:
    """Settlement status of a BACK bet on `selection` given the final score; None if ungradable.

    A fixture whose status is not `final` (void, postponed, abandoned) voids every market. Only
    full-game markets ("game"; "reg" / "ft" for 1x2) are graded from the score.
    """
    if result.status != FINAL:
        return S.VOID
    market, outcome = selection.market, selection.outcome
    if result.outcomes:  # settled per outcome (an exchange market's final definition)
        settled = result.outcome_status(market.type, outcome)
        if settled is not None or result.home_score is None:
            return settled
    if market.period not in ("game", "reg", "ft") or result.home_score is None or result.away_score is None:
        return None
    home, away = Decimal(result.home_score), Decimal(result.away_score)
    if market.type == "moneyline":
        if outcome not in ("home", "away"):
            return None
        margin = home - away if outcome == "home" else away - home
        return _single_line(margin)
    if market.type == "1x2":
        if outcome not in ("home", "draw", "away"):
            return None
        actual = "home" if home > away else "away" if away > home else "draw"
        return S.WON if outcome == actual else S.LOST
    if market.type == "spread" and market.line is not None:
        if outcome == "home":
            return _handicap(home - away, market.line)
        if outcome == "away":
            return _handicap(away - home, -market.line)
        return None
    if market.type == "total" and market.line is not None:
        total = home + away
        if outcome == "over":
            return _handicap(total, -market.line)
        if outcome == "under":
            return _handicap(-total, market.line)
    return None


def lay_status(back_status: S) -> S:
    """The status of a LAY bet is the mirror of the back bet's."""
    mirror = {S.WON: S.LOST, S.LOST: S.WON, S.HALF_WON: S.HALF_LOST, S.HALF_LOST: S.HALF_WON}
    return mirror.get(back_status, back_status)


class Results:
    """Final scores indexed for lookup by fixture (teams must match; kickoff within 3 days,
    because a feed's start time can differ from the schedule's)."""

    def __init__(self, results: Iterable[FixtureResult]) -> None:
        self._by_teams: dict[tuple[str, str], list[FixtureResult]] = {}
        for r in results:
            found = self._by_teams.setdefault((r.home, r.away), [])
            same = next((i for i, f in enumerate(found) if r.outcomes and f.outcomes and f.start_time == r.start_time
                         and (f.sport, f.status) == (r.sport, r.status)), None)
            if same is None:
                found.append(r)
            else:  # more markets of one fixture (a race's WIN and PLACE files): one result with all outcomes
                found[same] = replace(found[same], outcomes=found[same].outcomes + r.outcomes)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_teams.values())

    def find(self, fixture: FixtureKey, window: timedelta = timedelta(days=3)) -> FixtureResult | None:
        candidates = self._by_teams.get((fixture.home, fixture.away), [])
        best = min(candidates, key=lambda r: abs(r.start_time - fixture.start_time), default=None)
        if best is None or abs(best.start_time - fixture.start_time) > window:
            return None
        return best

    def gradable(self, selection: Selection) -> bool:
        """True when the fixture has a result and `grade` can settle this market from it."""
        result = self.find(selection.fixture)
        return result is not None and grade(selection, result) is not None


@dataclass(frozen=True, slots=True)
class ResultsFormat:
    """Where one results CSV format keeps a fixture's teams, kickoff and final score."""

    name: str
    home: str
    away: str
    home_score: str
    away_score: str
    date: str
    time: str  # "" when `date` holds the whole kickoff
    kickoff_format: str  # strptime format of "<date> <time>" (of `date` alone when `time` is "")
    tz: ZoneInfo  # the time zone kickoffs are written in
    sport: str = ""  # every row's sport, unless `sport_column` holds it per row
    sport_column: str | None = None
    default_time: str | None = None  # kickoff time of rows that leave it blank
    team_names: str | None = None  # `abbr,full_name` CSV beside the results or in bot/data


NFLVERSE = ResultsFormat(
    "nflverse games.csv", home="home_team", away="away_team", home_score="home_score",
    away_score="away_score", date="gameday", time="gametime", kickoff_format="%Y-%m-%d %H:%M",
    tz=EASTERN, sport="NFL", team_names="nfl_team_names.csv",
)
"""nflverse games.csv (or our trimmed copy): US Eastern kickoff; team abbreviations become The
Odds API names through `nfl_team_names.csv`."""

FOOTBALL_DATA = ResultsFormat(
    "football-data.co.uk", home="HomeTeam", away="AwayTeam", home_score="FTHG", away_score="FTAG",
    date="Date", time="Time", kickoff_format="%d/%m/%Y %H:%M", tz=UK, sport_column="Div",
    default_time="15:00",
)
"""football-data.co.uk season CSV: UK local kickoff; `sport` is the division code (E0, SP1, ...)."""

MLB_GAMES = ResultsFormat(
    "Pinnacle MLB 2016 mlb2016_games.csv", home="HomeTeam", away="AwayTeam", home_score="FinalScoreHome",
    away_score="FinalScoreAway", date="EventDateTimeUTC", time="", kickoff_format="%Y-%m-%dT%H:%M:%SZ",
    tz=ZoneInfo("UTC"), sport="MLB",
)
"""mlb2016_games.csv beside Pinnacle's MLB 2016 lines: kickoff in UTC (the corrected
EventDateTimeUTC); team names as bot/feeds/history/pinnacle_mlb.py emits them."""

FORMATS = (NFLVERSE, FOOTBALL_DATA, MLB_GAMES)
BUNDLED_DATA = Path(__file__).parents[1] / "data"


GENERIC = "generic results CSV (docs/reference/odds-csv.md)"
_GENERIC_KEY = ("sport", "home", "away", "start_time")
"""The generic format's fixture columns; `fixture_id` alone joins through the odds file's ids."""


def _open_text(path: Path) -> TextIO:
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else path.open(newline="")


def _is_generic(columns: set[str]) -> bool:
    return {"home_score", "away_score"} <= columns and ("fixture_id" in columns or set(_GENERIC_KEY) <= columns)


def _format_of(header: Sequence[str], path: Path) -> ResultsFormat | None:
    """The named format of a results header; None for the generic results CSV."""
    columns = set(header)
    if _is_generic(columns):
        return None
    for fmt in FORMATS:
        if {fmt.home, fmt.away, fmt.home_score, fmt.away_score, fmt.date} <= columns:
            return fmt
    known = ", ".join([*(f.name for f in FORMATS), GENERIC])
    raise ValueError(f"{path}: not a results file this bot reads (known: {known}); header: {', '.join(header)}")


def _team_names(fmt: ResultsFormat, path: Path) -> dict[str, str]:
    if fmt.team_names is None:
        return {}
    beside = path.with_name(fmt.team_names)
    with (beside if beside.is_file() else BUNDLED_DATA / fmt.team_names).open(newline="") as f:
        return {row["abbr"]: row["full_name"] for row in csv.DictReader(f)}


def _result(fmt: ResultsFormat, row: dict[str, str], names: dict[str, str]) -> FixtureResult:
    text = f"{row[fmt.date]} {row.get(fmt.time) or fmt.default_time}" if fmt.time else row[fmt.date]
    kickoff = datetime.strptime(text, fmt.kickoff_format)
    return FixtureResult(
        sport=row[fmt.sport_column] if fmt.sport_column else fmt.sport,
        home=names.get(row[fmt.home], row[fmt.home]),
        away=names.get(row[fmt.away], row[fmt.away]),
        start_time=kickoff.replace(tzinfo=fmt.tz).astimezone(UTC),
        home_score=int(float(row[fmt.home_score])),  # "2" and "2.0" alike
        away_score=int(float(row[fmt.away_score])),
    )


def _generic_result(
    row: dict[str, str], where: str, fixture_ids: Mapping[str, FixtureKey]
) -> FixtureResult | None:
    """One row of the generic results CSV (docs/reference/odds-csv.md, "Results file"); None
    for a `final` row without both scores (not played yet). `where` is "<path>: line <n>"."""
    cell = {k: (v or "").strip() for k, v in row.items() if k is not None}
    status = (cell.get("status") or FINAL).lower()
    if status not in RESULT_STATUSES:
        raise ValueError(f"{where}: status {status!r} is not one of {', '.join(RESULT_STATUSES)}")
    fixture_id = cell.get("fixture_id") or None
    if all(cell.get(c) for c in _GENERIC_KEY):
        try:
            kickoff = datetime.fromisoformat(cell["start_time"])
        except ValueError:
            raise ValueError(f"{where}: start_time {cell['start_time']!r} is not ISO 8601") from None
        if kickoff.tzinfo is None:
            raise ValueError(f"{where}: start_time {cell['start_time']!r} has no time zone (e.g. 2025-11-16T18:00:00Z)")
        key = FixtureKey(cell["sport"], cell["home"], cell["away"], kickoff.astimezone(UTC))
    elif fixture_id is not None and fixture_id in fixture_ids:
        key = fixture_ids[fixture_id]
    else:
        known = f"; fixture_id {fixture_id!r} is not in the odds file" if fixture_id else ""
        raise ValueError(f"{where}: needs {', '.join(_GENERIC_KEY)}{known}")
    home_score = away_score = None
    if status == FINAL:
        if not (cell.get("home_score") and cell.get("away_score")):
            return None
        try:
            home_score, away_score = int(float(cell["home_score"])), int(float(cell["away_score"]))
        except ValueError:
            raise ValueError(f"{where}: scores {cell['home_score']!r}-{cell['away_score']!r} are not numbers") from None
    return FixtureResult(key.sport, key.home, key.away, key.start_time, home_score, away_score, status, fixture_id)


def load_results(path: Path, fixture_ids: Mapping[str, FixtureKey] | None = None) -> list[FixtureResult]:
    """The fixtures of a results CSV (optionally .gz), its format told by its header: the generic
    results CSV (docs/reference/odds-csv.md, "Results file") or one of `FORMATS`.

    Rows without both scores and not voided (not played yet) are skipped. A generic row's status
    (final, void, postponed, abandoned) is kept; a generic row with only `fixture_id` is joined
    through `fixture_ids` (the odds file's fixture_id -> fixture). Teams of a named format are
    renamed to the feeds' names through its `team_names` file, beside `path` or bundled in bot/data.

    A Betfair Exchange Stream file (told by its content) gives its closed markets' results per
    outcome (`betfair_results`), so it serves as odds and results.

    Raises:
        ValueError: the header matches no known format, a row's kickoff, score, status or
            fixture does not parse, or the file is truncated or corrupt (the message names the
            file and line).
    """
    from bot.feeds.history.betfair import is_betfair_stream

    if is_betfair_stream(path):
        return betfair_results(path)
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        try:
            fmt = _format_of(reader.fieldnames or [], path)
            if fmt is None:
                found = (_generic_result(row, f"{path}: line {n}", fixture_ids or {})
                         for n, row in enumerate(reader, 2))
                return [r for r in found if r is not None]
            names = _team_names(fmt, path)
            return [_result(fmt, row, names) for row in reader if row.get(fmt.home_score) and row.get(fmt.away_score)]
        except (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError) as exc:  # truncated or corrupt
            raise ValueError(f"{path}: line {reader.line_num + 1}: file ends or breaks here ({exc})") from None


def betfair_results(path: Path) -> list[FixtureResult]:
    """The results of a Betfair Exchange Stream file's closed markets (bot/feeds/history/betfair.py,
    Settlement), from a pass over its market definitions: one result per fixture (a race's WIN and
    PLACE markets are one fixture), with the per-outcome statuses of its final definitions
    (WINNER -> WON, LOSER -> LOST, REMOVED -> VOID; others do not settle).

    Raises:
        ValueError: the file cannot be read on (the message names the file and line).
    """
    from loguru import logger

    from bot.feeds.history.base import HistoryError
    from bot.feeds.history.betfair import SETTLED, BetfairStreamReader

    reader = BetfairStreamReader(path)
    try:
        settlements = reader.read_settlements()
    except HistoryError as exc:
        raise ValueError(str(exc)) from None
    if reader.stats.bad_total:
        logger.warning("{}: results read with bad input skipped: {}", path, dict(reader.stats))
    by_fixture: dict[FixtureKey, list[tuple[str, str, SettlementStatus]]] = {}
    for settled in settlements:
        outcomes = by_fixture.setdefault(settled.fixture, [])
        outcomes += [(settled.market.type, r.outcome, SETTLED[r.status]) for r in settled.runners if r.status in SETTLED]
    return [FixtureResult(f.sport, f.home, f.away, f.start_time, None, None, outcomes=tuple(outcomes))
            for f, outcomes in by_fixture.items()]


def is_results_header(header: Sequence[str]) -> bool:
    """True when a CSV header is one of the results formats `load_results` reads."""
    try:
        _format_of(header, Path("-"))
    except ValueError:
        return False
    return True
