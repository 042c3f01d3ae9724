"""Normalisation shared by the feed decoders: lines as Decimal, BoltOdds market names and
periods, outcome names (bot.types.MarketKey: markets moneyline / spread / total, the spread line
is the HOME handicap; outcomes home / away / draw / over / under).

Lines are range-checked here, the one home of that bound (docs/architecture.md, "Invariants >
Nothing lost, nothing silent"): a line (handicap, total or prop threshold) must be finite with
|line| <= LINE_MAX (10 000). Real lines stay far below it (the largest in our BoltOdds capture is a
409.5-yard prop; season-long yardage props reach a few thousand; docs/reference/boltodds.md §5);
anything beyond (1e30, "inf") is poison, and bounding it also keeps every line exact within
Decimal's default 28-digit context."""

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


LINE_MAX = Decimal(10_000)  # |line| <= LINE_MAX (see the module docstring)
_MAX_LINE_TEXT = 64  # characters: no real line is longer; bounds Decimal's parsing work


class LineError(ValueError):
    """A line (handicap or total) that is not a finite number within +-LINE_MAX."""


def check_line(line: Decimal) -> Decimal:
    """`line` itself when it is finite with |line| <= LINE_MAX.

    Raises:
        LineError: not finite (NaN, sNaN, Infinity) or beyond the bound.
    """
    if not line.is_finite():
        raise LineError(f"line must be finite, got {line}")
    if abs(line) > LINE_MAX:
        raise LineError(f"line must lie within +-{LINE_MAX}, got {line:.6g}")
    return line


def to_line(value: object) -> Decimal | None:
    """A feed's line (number or numeric string) as a canonical Decimal: integral lines without
    a fraction ("47", not "47.0"), no negative zero, so equal lines give equal keys.

    Raises:
        LineError: not a finite number within +-LINE_MAX.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LineError(f"line must be a number, got {value!r}")
    if isinstance(value, int) and abs(value) > LINE_MAX:  # before str(): ints may be 10**5000
        raise LineError(f"line must lie within +-{LINE_MAX}, got an integer of {value.bit_length()} bits")
    text = str(value).strip()
    if len(text) > _MAX_LINE_TEXT:
        raise LineError(f"line must be a number within +-{LINE_MAX}, got {text[:20]}...")
    try:
        line = check_line(Decimal(text))
    except InvalidOperation:
        raise LineError(f"line must be a number, got {value!r}") from None
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
