"""Bet365 MG/MA/PA records (as the Olympus API returns them) -> the bot's quotes, and one poll's
boards -> one complete `OddsBatch` (docs/reference/olympus.md §4, §5).

Records (docs/reference/olympus.md §4): a flat sequence; each record has a type (`EV`
event, `MG` market group, `MA` market column, `PA` participant = one priced selection) and string
fields named by two capital letters. A `PA` belongs to the nearest `MA` above it, that to the
nearest `MG` above it; an `EV` starts a new event (a race coupon holds several). Both encodings
are read: JSON (a list of objects with `"type"`, possibly wrapped in an envelope object) and the
native text form (`|MG;ID=G1096;NA=Money Line;|MA;...|PA;...;|`).

Mapping to bot.types (docs/architecture.md, Pipeline; bot/feeds/normalise.py):
- fixture: `EV.TB` breadcrumb `Sport,#pd#¬Competition,#pd#¬Title,#pd#`: sport = the competition
  ("NFL"), title "Away @ Home" (US style) or "Home v Away" / "Home vs Away"; a title with neither
  (a race) is home = title, away = "field". The kickoff is the configured event's `start_time`,
  else `EV.BC` (UTC `YYYYMMDDhhmmss`; our local server's field, docs/reference/olympus.md §6:
  the reference names no start field). An event without a kickoff cannot be keyed
  and is dropped as a bad record.
- market: the `MA` header when it names a market (a "Game Lines" group of Spread / Total / Money
  Line columns), else the `MG` name: Money Line -> moneyline (1x2 when a Draw/Tie is priced), Full
  Time Result -> 1x2, Spread / Handicap / Run Line / Asian Handicap -> spread (line = the HOME
  handicap), Game Totals / Total / Goals Over/Under -> total; any other name is kept lower-cased
  (props: "player passing yards").
- outcome: the team named by `PA.NA` -> home / away, Draw / Tie / X -> draw, Over / Under (from
  `NA`, the `MA` header or an `O`/`U` prefix of `HA`) -> over / under, columns "1" / "X" / "2" ->
  home / draw / away; props keep the participant's name ("Jalen Hurts over").
- line: `HA`, else `HD`, else the number in `NA` ("Over 10.5"); a quarter line ("2.0, 2.5") is
  its mean (2.25), as the bet string's `ln=` states it (docs/reference/olympus.md §5).
- price: `OD` fractional, decimal = 1 + n / d (docs/reference/olympus.md §5); a missing,
  empty or `0/0` price, or `SU=1` on the record, its column or its group, is a suspended quote.

Bad input (docs/architecture.md, Invariants > Nothing lost, nothing silent): a record that
cannot be read (unknown price text, a zero denominator, an implausible price or line, a team
name that is neither side's, a `PA` outside any market) is logged, counted as "bad_record" and
dropped alone; its event is then `partial`: prices the event had before that are missing now are
kept but not confirmed (listed in the batch's `unconfirmed`), never withdrawn on a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from bot.feeds.base import FeedStats
from bot.feeds.normalise import LineError, to_line
from bot.market.odds import PRICE_MAX, PRICE_MIN, OddsError, decimal_to_american
from bot.types import BookCleared, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

SOURCE = "olympus"
Priced = tuple[float, int]  # decimal price, American odds
Record = dict[str, str]

_ENVELOPE_KEYS = ("records", "data", "markets", "result", "results", "props", "coupon")
_MARKETS = {
    "money line": "moneyline", "moneyline": "moneyline", "to win": "moneyline", "match winner": "moneyline",
    "full time result": "1x2", "match result": "1x2", "1x2": "1x2", "match betting": "1x2",
    "spread": "spread", "point spread": "spread", "handicap": "spread", "run line": "spread",
    "puck line": "spread", "asian handicap": "spread", "handicap result": "spread",
    "total": "total", "totals": "total", "game totals": "total", "total points": "total",
    "goals over/under": "total", "match goals": "total", "total goals": "total", "game total": "total",
}
_TITLE_AT = re.compile(r"^(?P<away>.+?) @ (?P<home>.+)$")
_TITLE_V = re.compile(r"^(?P<home>.+?) (?:v|vs|vs\.) (?P<away>.+)$")
_FRACTION = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_OVER_UNDER = {"over": "over", "under": "under", "o": "over", "u": "under"}
_DRAW = frozenset({"draw", "tie", "x"})
_MAX_TEXT = 2_000_000  # characters of a text-encoded page: beyond this it is not a page


class MalformedResponse(ValueError):
    """A response body that holds no readable record list."""


def fractional_price(od: object) -> Priced | None:
    """A Bet365 `OD` (fractional, "7/5") -> (decimal price, American odds); None for a quote that
    is not bettable (missing, empty, "0/0"; docs/reference/olympus.md §5). "EVS" is 1/1.

    Raises:
        OddsError: not a fraction of whole numbers, a zero denominator, or a price outside the
            plausibility bounds of bot.market.odds.
    """
    if od is None:
        return None
    if not isinstance(od, str):
        raise OddsError(f"OD must be fractional text, got {od!r}")
    text = od.strip()
    if text in ("", "0/0"):
        return None
    if text.upper() in ("EVS", "EVENS"):
        text = "1/1"
    match = _FRACTION.match(text)
    if match is None:
        raise OddsError(f"OD must be a fraction such as 7/5, got {od[:40]!r}")
    numerator, denominator = int(match[1]), int(match[2])
    if denominator == 0:
        raise OddsError(f"OD has a zero denominator: {od!r}")
    price = 1.0 + numerator / denominator
    if not PRICE_MIN <= price <= PRICE_MAX:
        raise OddsError(f"OD {od!r} is decimal {price:.6g}, outside [{PRICE_MIN}, {PRICE_MAX}]")
    return price, decimal_to_american(price)


def parse_line(text: str | None) -> Decimal | None:
    """A Bet365 line (`HA` / `HD`: "+1.5", "10.5", "O 47.5", a quarter line "2.0, 2.5" or "-0.5,-1.0")
    as a canonical Decimal (a quarter line is its mean); None when absent.

    Raises:
        LineError: not a number (or pair of numbers) within +-LINE_MAX.
    """
    if text is None or not text.strip():
        return None
    body = text.strip()
    if body[:1] in ("O", "U") and body[1:2] == " ":
        body = body[2:]
    parts = [p.strip() for p in body.split(",")]
    if len(parts) > 2 or not all(parts):
        raise LineError(f"line must be one or two numbers, got {text[:40]!r}")
    values = [to_line(p) for p in parts]
    if any(v is None for v in values):
        raise LineError(f"line must be a number, got {text[:40]!r}")
    total = sum((v for v in values if v is not None), Decimal(0))
    return to_line(str(total / len(values)))


def parse_text(text: str) -> list[Record]:
    """The native wire form (`|MG;ID=G1;NA=Money Line;|PA;...;|`) as records.

    Raises:
        MalformedResponse: a record without a type, or a field that is not KEY=VALUE.
    """
    if len(text) > _MAX_TEXT:
        raise MalformedResponse(f"text page of {len(text)} characters")
    records: list[Record] = []
    for chunk in text.split("|"):
        chunk = chunk.strip()
        if not chunk:
            continue
        kind, _, rest = chunk.partition(";")
        if not re.fullmatch(r"[A-Z]{2}", kind):
            raise MalformedResponse(f"record type must be two capitals, got {kind[:20]!r}")
        record: Record = {"type": kind}
        for item in rest.split(";"):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise MalformedResponse(f"field must be KEY=VALUE, got {item[:40]!r}")
            record[key] = value
        records.append(record)
    return records


def parse_records(body: object) -> list[object]:
    """The record list of a response body: a JSON list of records, a text page, or either inside
    an envelope object (docs/reference/olympus.md §4: "the Olympus response may wrap
    either in an envelope"). Items are returned as they are; `decode` checks each.

    Raises:
        MalformedResponse: no record list can be found.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        stripped = body.lstrip()
        if stripped[:1] in ("[", "{"):
            try:
                return parse_records(orjson.loads(stripped))
            except orjson.JSONDecodeError:
                raise MalformedResponse("body is neither JSON nor a text page") from None
        return list(parse_text(body))
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in _ENVELOPE_KEYS:
            if key in body:
                return parse_records(body[key])
    raise MalformedResponse(f"no record list in a {type(body).__name__}")


@dataclass
class EventBoard:
    """One event's quotes from one poll (None = suspended), and whether records were dropped."""

    key: str  # the event's identity within the feed (its pd, or pd + EV ID in a coupon)
    fixture: FixtureKey
    quotes: dict[Selection, Priced | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    partial: bool = False


@dataclass
class _Market:
    name: str
    suspended: bool


def _fixture(ev: Record, sport: str | None, start_time: datetime | None) -> FixtureKey:
    crumbs = [c.rpartition(",")[0] if "," in c else c for c in ev.get("TB", "").split("¬")]
    title = crumbs[-1].strip() if crumbs and crumbs[-1].strip() else (ev.get("NA") or "").strip()
    if not title:
        raise ValueError("EV has neither a TB breadcrumb title nor NA")
    if (m := _TITLE_AT.match(title)) is not None or (m := _TITLE_V.match(title)) is not None:
        home, away = m["home"].strip(), m["away"].strip()
    else:
        home, away = title, "field"
    label = sport or (crumbs[1].strip() if len(crumbs) >= 3 else crumbs[0].strip()) or "unknown"
    if start_time is None:
        bc = (ev.get("BC") or "").strip()
        if not bc:
            raise ValueError("no kickoff: configure the event's start_time (the EV has no BC)")
        start_time = datetime.strptime(bc, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return FixtureKey(label, home, away, start_time)


def _market_type(group: str, column: str) -> tuple[str, bool]:
    """(market type, known) from the column header when it names a market, else the group."""
    for name in (column, group):
        known = _MARKETS.get(name.strip().lower())
        if known is not None:
            return known, True
    return group.strip().lower() or "unknown", False


def _side(name: str, fixture: FixtureKey) -> str | None:
    lowered = name.strip().lower()
    if lowered == fixture.home.lower():
        return "home"
    if lowered == fixture.away.lower():
        return "away"
    if lowered in _DRAW:
        return "draw"
    return None


def _over_under(pa: Record, column: str) -> str | None:
    for text in (pa.get("NA", ""), column, pa.get("HA", "")):
        word = text.strip().split(" ", 1)[0].lower()
        if word in _OVER_UNDER and (word in ("over", "under") or " " in text.strip()):
            return _OVER_UNDER[word]
    return None


def _selection(pa: Record, fixture: FixtureKey, group: str, column: str) -> Selection:
    """The Selection of one PA (see the module docstring).

    Raises:
        ValueError (LineError included): the PA cannot be placed in its market.
    """
    type_, known = _market_type(group, column)
    name = (pa.get("NA") or "").strip()
    line = parse_line(pa.get("HA")) if pa.get("HA") else parse_line(pa.get("HD"))
    if type_ == "total":
        side = _over_under(pa, column)
        if side is None:
            raise ValueError(f"total {name!r}: neither over nor under")
        if line is None:
            numbers = _NUMBER.findall(name)
            line = to_line(numbers[-1]) if numbers else None
        if line is None:
            raise ValueError(f"total {name!r}: no line")
        return Selection(fixture, MarketKey("total", "game", line), side)
    if type_ in ("moneyline", "1x2", "spread"):
        side = _side(name, fixture) if name else None
        if side is None and column.strip() in ("1", "X", "2"):
            side = {"1": "home", "X": "draw", "2": "away"}[column.strip()]
        if side is None:
            raise ValueError(f"{type_} {name[:60]!r}: neither {fixture.home!r} nor {fixture.away!r}")
        if type_ == "spread":
            if line is None or side == "draw":
                raise ValueError(f"spread {name!r}: needs a team and a line")
            if side == "away":
                line = -line + 0
            return Selection(fixture, MarketKey("spread", "game", line), side)
        if side == "draw":
            type_ = "1x2"
        return Selection(fixture, MarketKey(type_, "game", None), side)
    # props and other markets: the feed's own name (bot.types.MarketKey), the participant's name
    if not name and not column.strip():
        raise ValueError(f"{group!r}: a PA without a name")
    ou = _over_under(pa, column)
    target = name or column.strip()
    if ou is not None and target.lower() in ("over", "under"):
        outcome = ou
    else:
        outcome = f"{target} {ou}" if ou else target
    del known
    return Selection(fixture, MarketKey(type_, "game", line), outcome)


def decode(
    items: list[object], key: str, stats: FeedStats, *, sport: str | None = None,
    start_time: datetime | None = None,
) -> list[EventBoard]:
    """The events of one response (see the module docstring); bad records are counted in `stats`
    ("bad_record") and dropped, marking their event partial. Records before the first `EV` have
    no fixture and are dropped likewise.

    Raises:
        MalformedResponse: the response holds no readable event.
    """
    boards: list[EventBoard] = []
    board: EventBoard | None = None
    group: _Market | None = None
    column: _Market | None = None
    skipped_event = False  # an EV that could not be read: its records are dropped with it
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            stats.bad("bad_record", f"{key}: a record must be an object with a type", item, sparse=True)
            if board is not None:
                board.partial = True
            continue
        record = {k: v for k, v in item.items() if isinstance(v, str)}
        if len(record) != len(item):
            stats.bad("bad_record", f"{key}: record fields must be strings", item, sparse=True)
            if board is not None:
                board.partial = True
            continue
        kind = record["type"]
        if kind == "EV":
            try:
                fixture = _fixture(record, sport, start_time)
            except ValueError as exc:
                stats.bad("bad_record", f"{key}: EV: {exc}", item, sparse=True)
                board, skipped_event = None, True
                continue
            event_key = key if not boards and board is None else f"{key}#{record.get('ID', len(boards))}"
            board = EventBoard(event_key, fixture, ids={"olympus_pd": key})
            if record.get("FI"):
                board.ids["bet365_fi"] = record["FI"]
            boards.append(board)
            group = column = None
            continue
        if board is None:
            if kind in ("MG", "MA", "PA") and not skipped_event:
                stats.bad("bad_record", f"{key}: {kind} before any EV", item, sparse=True)
            continue
        if kind == "MG":
            group, column = _Market(record.get("NA", ""), record.get("SU") == "1"), None
        elif kind == "MA":
            column = _Market(record.get("NA", ""), record.get("SU") == "1")
        elif kind == "PA":
            if group is None:
                stats.bad("bad_record", f"{key}: PA outside any MG", item, sparse=True)
                board.partial = True
                continue
            try:
                selection = _selection(record, board.fixture, group.name, column.name if column else "")
                priced = fractional_price(record.get("OD"))
            except (ValueError, ArithmeticError) as exc:  # OddsError and LineError are ValueErrors
                stats.bad("bad_record", f"{key}: PA: {exc}", item, sparse=True)
                board.partial = True
                continue
            suspended = record.get("SU") == "1" or group.suspended or (column is not None and column.suspended)
            board.quotes[selection] = None if suspended else priced
    if not boards:
        raise MalformedResponse("no readable EV record")
    return boards


class OlympusBoard:
    """The feed's whole board across polls: turns one poll's event boards into ONE complete
    `OddsBatch` (docs/architecture.md, Pipeline; bot.types.OddsBatch).

    Every quote of a readable event is (re-)stated in each batch, so the book confirms it; a
    selection priced before and missing now is withdrawn (a suspended update), unless its event is
    partial (a record was dropped: it may be that one). An event whose request failed or whose
    response could not be read (`failed` keys) keeps its previous quotes, unconfirmed; an event no
    longer polled at all is cleared (`BookCleared`).
    """

    def __init__(self, bookmaker: str = "bet365", source: str = SOURCE) -> None:
        self.bookmaker, self.source = bookmaker, source
        self._board: dict[str, tuple[FixtureKey, dict[Selection, Priced | None]]] = {}

    def batch(self, boards: list[EventBoard], failed: set[str], received_at: datetime) -> OddsBatch:
        """One poll: `boards` read, `failed` the keys of events whose request or response failed
        (their previous state stands, unconfirmed)."""
        updates: list[OddsUpdate] = []
        unconfirmed: list[tuple[FixtureKey, str | None]] = []
        cleared: list[BookCleared] = []
        new: dict[str, tuple[FixtureKey, dict[Selection, Priced | None]]] = {}
        for board in boards:
            old_fixture, old = self._board.get(board.key, (board.fixture, {}))
            if old_fixture != board.fixture and board.key in self._board:
                cleared.append(BookCleared(self.source, received_at, bookmaker=self.bookmaker, fixture=old_fixture))
                old = {}
            quotes = dict(board.quotes)
            for selection, priced in quotes.items():
                price, american = (None, None) if priced is None else priced
                updates.append(OddsUpdate(self.source, self.bookmaker, selection, price, american, priced is None,
                                          received_at, received_at, board.ids))
            for selection, priced in old.items():
                if selection in quotes:
                    continue
                if board.partial:  # perhaps the dropped record: kept, unconfirmed
                    quotes[selection] = priced
                    continue
                if priced is not None:
                    updates.append(OddsUpdate(self.source, self.bookmaker, selection, None, None, True,
                                              received_at, received_at, board.ids))
            if board.partial:
                unconfirmed.append((board.fixture, self.bookmaker))
            new[board.key] = (board.fixture, quotes)
        for key, (fixture, quotes) in self._board.items():
            if key in new:
                continue
            if key in failed or any(key.startswith(f"{f}#") for f in failed):
                new[key] = (fixture, quotes)
                unconfirmed.append((fixture, self.bookmaker))
            else:
                cleared.append(BookCleared(self.source, received_at, bookmaker=self.bookmaker, fixture=fixture))
        self._board = new
        return OddsBatch(self.source, received_at, tuple(updates), tuple(cleared), complete=True,
                         unconfirmed=tuple(unconfirmed))
