"""Grading bets from final scores, and loaders for the results files the paper venue settles with.

Grading follows standard bookmaker rules (and ABP's settlement states, reference/abp.md §9):
- moneyline (2-way, incl. overtime): a tie is a PUSH (stake returned);
- 1x2 (3-way, regular time): home / draw / away;
- spread: `MarketKey.line` is the HOME handicap; home covers when home - away + line > 0;
  a whole-number line can PUSH; a quarter line (x.25 / x.75, Asian handicap) is split into
  the two neighbouring half-lines, giving HALF_WON / HALF_LOST;
- total: over wins when the total exceeds the line; quarter lines split likewise.
Markets we cannot grade (props, periods without period scores) return None: the bet stays open.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.types import FixtureKey, Selection, SettlementStatus

S = SettlementStatus
EASTERN = ZoneInfo("America/New_York")
UK = ZoneInfo("Europe/London")


@dataclass(frozen=True, slots=True)
class FixtureResult:
    """Final score of one fixture; `start_time` is the kickoff in UTC."""

    sport: str
    home: str
    away: str
    start_time: datetime
    home_score: int
    away_score: int


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

    Only full-game markets ("game"; "reg" for 1x2) are graded here.
    """
    market, outcome = selection.market, selection.outcome
    home, away = Decimal(result.home_score), Decimal(result.away_score)
    if market.period not in ("game", "reg", "ft"):
        return None
    if market.type == "moneyline":
        if outcome not in ("home", "away"):
            return None
        margin = home - away if outcome == "home" else away - home
        return _single_line(margin)
    if market.type == "1x2":
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
            self._by_teams.setdefault((r.home, r.away), []).append(r)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_teams.values())

    def find(self, fixture: FixtureKey, window: timedelta = timedelta(days=3)) -> FixtureResult | None:
        candidates = self._by_teams.get((fixture.home, fixture.away), [])
        best = min(candidates, key=lambda r: abs(r.start_time - fixture.start_time), default=None)
        if best is None or abs(best.start_time - fixture.start_time) > window:
            return None
        return best


def _open_text(path: Path):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else path.open(newline="")


def load_nfl_results(path: Path, team_names: Path) -> list[FixtureResult]:
    """nflverse games.csv (or our trimmed copy): rows with scores become results.

    Team abbreviations map to The Odds API names through `team_names` (`abbr,full_name`);
    `gameday` + `gametime` are US Eastern kickoff. Rows without scores (unplayed) are skipped.
    """
    with team_names.open(newline="") as f:
        names = {row["abbr"]: row["full_name"] for row in csv.DictReader(f)}
    out = []
    with _open_text(path) as f:
        for row in csv.DictReader(f):
            if not row.get("home_score") or not row.get("away_score"):
                continue
            kickoff = datetime.strptime(f"{row['gameday']} {row['gametime']}", "%Y-%m-%d %H:%M")
            out.append(
                FixtureResult(
                    sport="NFL",
                    home=names.get(row["home_team"], row["home_team"]),
                    away=names.get(row["away_team"], row["away_team"]),
                    start_time=kickoff.replace(tzinfo=EASTERN).astimezone(UTC),
                    home_score=int(row["home_score"]),
                    away_score=int(row["away_score"]),
                )
            )
    return out


def load_football_data_results(path: Path) -> list[FixtureResult]:
    """football-data.co.uk CSV (`Div, Date dd/mm/yyyy, Time` UK local, `HomeTeam, AwayTeam,
    FTHG, FTAG`); `sport` is the division code (E0, SP1, ...)."""
    out = []
    with _open_text(path) as f:
        for row in csv.DictReader(f):
            if not row.get("FTHG") or not row.get("FTAG"):
                continue
            kickoff = datetime.strptime(f"{row['Date']} {row.get('Time') or '15:00'}", "%d/%m/%Y %H:%M")
            out.append(
                FixtureResult(
                    sport=row["Div"],
                    home=row["HomeTeam"],
                    away=row["AwayTeam"],
                    start_time=kickoff.replace(tzinfo=UK).astimezone(UTC),
                    home_score=int(float(row["FTHG"])),
                    away_score=int(float(row["FTAG"])),
                )
            )
    return out
