"""The Odds API v4 `/v4/sports/{sport}/odds` responses -> feed events, by diffing snapshots.

A response is a list of events: `{"id", "sport_key", "sport_title", "commence_time",
"home_team", "away_team", "bookmakers": [{"key", "last_update", "markets": [{"key",
"outcomes": [{"name", "price", "point"?}]}]}]}` (the historical endpoint wraps the same list as
`{"timestamp", "data"}`). Each snapshot is the full board, so `OddsApiDiffer.snapshot` emits:
- a `FeedStatus(connected=True, stale=False)` first: the board arrived, unchanged prices hold;
- an `OddsUpdate` for every selection that is new or whose price changed;
- a suspended `OddsUpdate` for a selection that was priced and is missing now;
- a `BookCleared` for a fixture that left the board (finished or withdrawn).

Mapping (the names of bot.types): sport = sport_title ("NFL"), fixture = home_team / away_team /
commence_time; h2h -> moneyline (1x2 when a Draw is offered), spreads -> spread with the HOME
handicap as line, totals -> total; outcomes home / away / draw / over / under.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from bot.feeds.base import FeedStats
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import OddsError, american_to_decimal, decimal_to_american
from bot.types import BookCleared, FeedEvent, FeedStatus, FixtureKey, MarketKey, OddsUpdate, Selection

SOURCE = "oddsapi"
OddsFormat = Literal["american", "decimal", "auto"]
_MARKET_TYPES = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}

Priced = tuple[float, int]  # decimal price, American odds
_Board = dict[str, tuple[FixtureKey, dict[tuple[str, Selection], Priced]]]  # event id -> ...


def parse_price(value: object, odds_format: OddsFormat) -> Priced:
    """An outcome `price` -> (decimal, American). "auto" reads integers with |v| >= 100 as
    American (the historical files) and anything else as decimal.

    Raises:
        OddsError: not a price.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OddsError(f"price must be a number, got {value!r}")
    american = odds_format == "american" or (
        odds_format == "auto" and float(value).is_integer() and abs(value) >= 100
    )
    if american:
        return american_to_decimal(value), round(value)
    return float(value), decimal_to_american(float(value))


class OddsApiDiffer:
    """Turns successive full snapshots into events (see the module docstring). Never raises
    on bad input: bad events, markets and outcomes are logged and counted in `stats`."""

    def __init__(
        self, source: str = SOURCE, odds_format: OddsFormat = "auto", stats: FeedStats | None = None
    ) -> None:
        self.source = source
        self.odds_format = odds_format
        self.stats = stats if stats is not None else FeedStats(source)
        self._board: _Board = {}

    def snapshot(self, events: object, received_at: datetime) -> list[FeedEvent]:
        """Diff one full response (a list of events) against the previous one."""
        self.stats["snapshots"] += 1
        if not isinstance(events, list):
            self.stats.bad("malformed_snapshot", "the response is not a list of events", events)
            return []
        out: list[FeedEvent] = [
            FeedStatus(self.source, received_at, connected=True, stale=False, detail="snapshot")
        ]
        board: _Board = {}
        for event in events:
            try:
                event_id, fixture, prices = self._event(event)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.stats.bad("bad_event", f"{type(exc).__name__}: {exc}", event)
                continue
            old_fixture, old = self._board.get(event_id, (fixture, {}))
            if (old_fixture.home, old_fixture.away) == (fixture.home, fixture.away):
                # The API moves commence_time to the real kickoff; the game keeps the identity
                # it was first seen with, so exposure per fixture is not split in two.
                fixture, prices = old_fixture, _refixture(prices, old_fixture)
            else:  # the event now names other teams: its old selections are gone
                out.append(BookCleared(self.source, received_at, fixture=old_fixture))
                old = {}
            board[event_id] = (fixture, prices)
            ids = {"oddsapi_event_id": event_id}
            for (bookmaker, selection), priced in prices.items():
                if old.get((bookmaker, selection)) != priced:
                    out.append(OddsUpdate(self.source, bookmaker, selection, priced[0], priced[1],
                                          False, received_at, received_at, ids))
            out.extend(
                OddsUpdate(self.source, bookmaker, selection, None, None, True, received_at,
                           received_at, ids)
                for bookmaker, selection in old
                if (bookmaker, selection) not in prices  # dict order: replays are deterministic
            )
        out.extend(
            BookCleared(self.source, received_at, fixture=fixture)
            for event_id, (fixture, _) in self._board.items()
            if event_id not in board
        )
        self._board = board
        self.stats["updates"] += sum(1 for e in out if type(e) is OddsUpdate)
        return out

    def _event(self, event: dict) -> tuple[str, FixtureKey, dict[tuple[str, Selection], Priced]]:
        event_id, home, away = str(event["id"]), event["home_team"], event["away_team"]
        start = datetime.fromisoformat(event["commence_time"])
        if start.tzinfo is None or not (isinstance(home, str) and isinstance(away, str)):
            raise ValueError("commence_time needs a zone; home_team and away_team are strings")
        fixture = FixtureKey(str(event.get("sport_title") or event["sport_key"]), home, away, start)
        prices: dict[tuple[str, Selection], Priced] = {}
        for book in event.get("bookmakers") or ():
            try:
                bookmaker = book["key"]
                for market in book["markets"]:
                    self._market(fixture, bookmaker, market, prices)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.stats.bad("bad_bookmaker", f"{type(exc).__name__}: {exc}", book)
        return event_id, fixture, prices

    def _market(
        self, fixture: FixtureKey, bookmaker: str, market: dict,
        prices: dict[tuple[str, Selection], Priced],
    ) -> None:
        kind = market["key"]
        outcomes: Iterable[dict] = market["outcomes"]
        type_ = _MARKET_TYPES.get(kind, kind)
        if type_ == "moneyline" and any(o.get("name") == "Draw" for o in outcomes):
            type_ = "1x2"
        for o in outcomes:
            try:
                name = o["name"]
                side = (
                    "home" if name == fixture.home else "away" if name == fixture.away
                    else name.lower() if name in ("Draw", "Over", "Under") else name
                )
                line = to_line(o.get("point")) if type_ in ("spread", "total") or "point" in o else None
                if type_ == "spread" and side == "away" and line is not None:
                    line = -line + 0
                selection = Selection(fixture, MarketKey(type_, "game", line), side)
                prices[(bookmaker, selection)] = parse_price(o["price"], self.odds_format)
            except (KeyError, TypeError, ValueError, AttributeError, OddsError, LineError) as exc:
                self.stats.bad("bad_outcome", f"{type(exc).__name__}: {exc}", o)


def _refixture(prices: dict[tuple[str, Selection], Priced], fixture: FixtureKey) -> dict[tuple[str, Selection], Priced]:
    """The same prices keyed by selections of `fixture` (a no-op when it is already theirs)."""
    if all(sel.fixture is fixture or sel.fixture == fixture for _, sel in prices):
        return prices
    return {(bk, Selection(fixture, sel.market, sel.outcome)): p for (bk, sel), p in prices.items()}
