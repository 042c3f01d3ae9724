"""Normalisation shared by the feed decoders: lines as Decimal, BoltOdds market names and
periods, outcome names (bot.types.MarketKey: markets moneyline / spread / total, the spread line
is the HOME handicap; outcomes home / away / draw / over / under)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.types import MarketKey

EASTERN = ZoneInfo("America/New_York")

_PERIOD_PREFIX = re.compile(
    r"^(?:(?P<n>1st|2nd|3rd|4th) (?P<unit>Half|Quarter)|(?P<short>[1-4][HQ])|(?P<set>S\d+(?: G\d+)?)) (?P<rest>.+)$"
)
_ORDINAL = {"1st": "1", "2nd": "2", "3rd": "3", "4th": "4"}
_TYPES = {"moneyline": "moneyline", "spread": "spread", "total": "total", "total points": "total",
          "team total": "team_total"}
_DRAW = frozenset({"draw", "tie", "x"})


class LineError(ValueError):
    """A line (handicap or total) that is not a finite number."""


def to_line(value: object) -> Decimal | None:
    """A feed's line (number or numeric string) as a canonical Decimal: integral lines without
    a fraction ("47", not "47.0"), no negative zero, so equal lines give equal keys.

    Raises:
        LineError: not a finite number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LineError(f"line must be a number, got {value!r}")
    try:
        line = Decimal(str(value).strip())
    except InvalidOperation:
        raise LineError(f"line must be a number, got {value!r}") from None
    if not line.is_finite():
        raise LineError(f"line must be finite, got {value!r}")
    if line == line.to_integral_value():
        return line.quantize(Decimal(1)) + 0  # + 0 turns -0 into 0
    return line.normalize() + 0


@lru_cache(maxsize=4096)
def market_name(name: str) -> tuple[str, str]:
    """BoltOdds `outcome_name` -> (market type, period) (docs/reference/boltodds.md §7):
    "Moneyline" -> ("moneyline", "game"), "1st Half Spread" -> ("spread", "1h"),
    "2Q Total" -> ("total", "2q"), "S1 G2 Moneyline" -> ("moneyline", "s1g2"),
    "Receiving Yards" -> ("receiving yards", "game")."""
    period = "game"
    match = _PERIOD_PREFIX.match(name)
    if match is not None:
        if match["n"]:
            period = f"{_ORDINAL[match['n']]}{match['unit'][0].lower()}"
        elif match["short"]:
            period = match["short"].lower()
        else:
            period = match["set"].lower().replace(" ", "")
        name = match["rest"]
    lowered = name.lower()
    return _TYPES.get(lowered, lowered), period


def outcome_name(target: str | None, over_under: str | None, home: str, away: str) -> str:
    """Normalised outcome: "home" / "away" for the teams, "draw", "over" / "under" for game
    totals, "home over" / "Player over" for team totals and props, else the target name."""
    side = "" if not over_under else {"O": "over", "U": "under"}.get(over_under[:1].upper(), "")
    if target == home:
        name = "home"
    elif target == away:
        name = "away"
    elif not target:
        return side or "unknown"
    elif target.lower() in _DRAW:
        name = "draw"
    else:
        name = target
    return f"{name} {side}" if side else name


def market_key(
    name: str, line: object, target: str | None, home: str, away: str
) -> MarketKey:
    """The MarketKey of one BoltOdds outcome; a spread line is restated as the HOME handicap.

    Raises:
        LineError: the line is not a number.
    """
    type_, period = market_name(name)
    value = to_line(line)
    if type_ == "spread" and value is not None and target == away:
        value = -value + 0
    return MarketKey(type_, period, value)


@lru_cache(maxsize=4096)
def eastern_start(when: str) -> datetime:
    """BoltOdds `info.when` ("2025-09-08, 08:15 PM", US Eastern; docs/reference/boltodds.md §6) as UTC.

    Raises:
        ValueError: not in that format.
    """
    local = datetime.strptime(when, "%Y-%m-%d, %I:%M %p").replace(tzinfo=EASTERN)
    return local.astimezone(UTC)
