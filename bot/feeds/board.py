"""The board record: one `OddsBatch` as the `raw` text of a recording record whose source is
"board" (the record's shape and fields: bot/feeds/recording.py, module docstring). `bot data
convert` writes one per board of a historical file; `ReplayFeed` replays each as one batch.

`encode_batch` and `decode_board` are exact inverses for what the book reads: every quote's
selection (lines as Decimal text, so 2.25 and -0.25 survive exactly), bookmaker, decimal price
(orjson writes the shortest text that reads back as the same float), American odds, feed ids,
feed time and source, an exchange quote's ladder (its back and lay levels with their sizes,
last traded price and traded volume; `bot.types.Ladder`), plus the batch's `complete`, `cleared`
and `unconfirmed`. A suspended update is written without its price; a quote without a ladder is
withdrawn exactly when its price is null, while a laddered one says whether it is suspended
(an exchange runner with a lay alone has no back price and is not suspended).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from bot.feeds.normalise import LINE_MAX
from bot.market.odds import AMERICAN_MAX, PRICE_MAX, PRICE_MIN
from bot.types import BookCleared, FixtureKey, Ladder, MarketKey, OddsBatch, OddsUpdate, Selection

BOARD_SOURCE = "board"  # the record `source` of a board record
VERSION = 1
# a quote row: these 12 cells always; feed time and source only when they differ from the board's
# time and the batch's source (trailing, so the common row stays short)
_CELLS = ("sport", "start", "home", "away", "market", "period", "line", "outcome", "bookmaker", "price",
          "american", "feed_ids")
_ROW_MIN = len(_CELLS)


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def _fixture_cells(f: FixtureKey) -> list[object]:
    return [f.sport, _iso(f.start_time), f.home, f.away]


def encode_batch(batch: OddsBatch) -> str:
    """`batch` as the `raw` text of a board record (JSON): `{"v": 1, "source", "complete",
    "quotes": [[sport, start ISO, home, away, market type, period, line text | null, outcome,
    bookmaker, decimal price | null, american | null, feed_ids | null (, feed_time ISO | null
    (, source))], ...]}`, plus `"cleared": [[source, at ISO, bookmaker | null, sport | null,
    [sport, start, home, away] | null], ...]` and `"unconfirmed": [[[sport, start, home, away],
    bookmaker | null], ...]` and `"ladders": [[quote index, suspended, [[back price, size], ...],
    [[lay price, size], ...], last traded price | null, traded volume | null], ...]` (the quotes
    with a `Ladder`) when not empty. The board time is the record's `ts` (`batch.received_at`),
    not in the text."""
    at, source = batch.received_at, batch.source
    quotes: list[list[object]] = []
    ladders: list[list[object]] = []
    append = quotes.append
    for n, u in enumerate(batch.updates):
        sel = u.selection
        fx, mk = sel.fixture, sel.market
        price = None if u.suspended else u.price
        row: list[object] = [fx.sport, _iso(fx.start_time), fx.home, fx.away, mk.type, mk.period,
                             None if mk.line is None else str(mk.line), sel.outcome, u.bookmaker, price,
                             u.american, dict(u.feed_ids) or None]
        if u.source != source:
            row += [None if u.feed_time == at else _iso(u.feed_time), u.source]
        elif u.feed_time != at:
            row.append(_iso(u.feed_time))
        append(row)
        if u.ladder is not None:
            ladder = u.ladder
            ladders.append([n, u.suspended, ladder.back, ladder.lay, ladder.last_traded, ladder.traded_volume])
    body: dict[str, Any] = {"v": VERSION, "source": source, "complete": batch.complete, "quotes": quotes}
    if batch.cleared:
        body["cleared"] = [[c.source, _iso(c.at), c.bookmaker, c.sport,
                            None if c.fixture is None else _fixture_cells(c.fixture)] for c in batch.cleared]
    if batch.unconfirmed:
        body["unconfirmed"] = [[_fixture_cells(f), b] for f, b in batch.unconfirmed]
    if ladders:
        body["ladders"] = ladders
    return orjson.dumps(body).decode()


def decode_board(raw: str, ts: datetime) -> OddsBatch:
    """The `OddsBatch` a board record's `raw` text holds, at board time `ts` (the record's
    timezone-aware UTC `ts`: every update's `received_at`, and its `feed_time` unless the row
    states one). A replay decodes with one `BoardDecoder`, which shares its objects across boards.

    Raises:
        ValueError: the text is not a board (not JSON, a wrong shape or type, an unknown
            version, a price outside [PRICE_MIN, PRICE_MAX], a line that is not a finite number
            within +-LINE_MAX, a naive time); the message is one line saying why and, for a
            quote, which row.
    """
    return BoardDecoder().decode(raw, ts)


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} must be a list, got {type(value).__name__}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _opt_str(value: object, what: str) -> str | None:
    return None if value is None else _str(value, what)


class BoardDecoder:
    """Decodes boards (`decode`, as `decode_board`), sharing fixture, selection and time objects
    between the rows and the boards of a replay, as the live decoders do: a row whose first eight
    cells were seen before skips their parsing and checks (its selection was built, so checked,
    from equal cells). The caches are bounded: cleared when they reach CACHE_MAX entries."""

    CACHE_MAX = 200_000

    def __init__(self) -> None:
        self._times: dict[str, datetime] = {}
        self._fixtures: dict[tuple[str, str, str, str], FixtureKey] = {}
        self._selections: dict[tuple[object, ...], Selection] = {}

    def decode(self, raw: str, ts: datetime) -> OddsBatch:
        """See `decode_board`. Raises ValueError (one line)."""
        try:
            return self._decode(raw, ts)
        except (TypeError, KeyError, IndexError, AttributeError) as exc:  # a wrong type, or a shape no check foresaw
            raise ValueError(str(exc)) from None

    def _decode(self, raw: str, ts: datetime) -> OddsBatch:
        if ts.tzinfo is None:
            raise ValueError(f"board time has no UTC offset: {ts.isoformat()}")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"board is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise TypeError(f"board must be a JSON object, got {type(body).__name__}")
        if body.get("v") != VERSION:
            raise ValueError(f"board version must be {VERSION}, got {body.get('v')!r}")
        source = _str(body.get("source"), "source")
        complete = body.get("complete")
        if not isinstance(complete, bool):
            raise TypeError(f"complete must be true or false, got {complete!r}")
        if len(self._selections) > self.CACHE_MAX or len(self._times) > self.CACHE_MAX:
            self._times.clear()
            self._fixtures.clear()
            self._selections.clear()
        quote = self._quote
        updates = tuple(quote(row, n, source, ts) for n, row in enumerate(_list(body.get("quotes"), "quotes")))
        if "ladders" in body:
            updates = _with_ladders(updates, _list(body["ladders"], "ladders"))
        cleared = tuple(self._cleared(row, n) for n, row in enumerate(_list(body.get("cleared", []), "cleared")))
        unconfirmed = tuple(self._unconfirmed(row, n)
                            for n, row in enumerate(_list(body.get("unconfirmed", []), "unconfirmed")))
        return OddsBatch(source, ts, updates, cleared, complete, unconfirmed)

    def _time(self, value: object, what: str) -> datetime:
        found = self._times.get(value) if isinstance(value, str) else None
        if found is not None:
            return found
        if not isinstance(value, str):
            raise TypeError(f"{what} must be an ISO 8601 string, got {value!r}")
        ts = datetime.fromisoformat(value)  # ValueError on a bad time
        if ts.tzinfo is None:
            raise ValueError(f"{what} has no UTC offset: {value!r}")
        self._times[value] = ts = ts.astimezone(UTC)
        return ts

    def _fixture(self, cells: object) -> FixtureKey:
        if not isinstance(cells, list) or len(cells) != 4:
            raise ValueError(f"a fixture must be [sport, start, home, away], got {cells!r}")
        sport, start, home, away = (_str(c, what) for c, what in zip(cells, ("sport", "start", "home", "away"),
                                                                     strict=True))
        key = (sport, start, home, away)
        found = self._fixtures.get(key)
        if found is None:
            found = self._fixtures[key] = FixtureKey(sport, home, away, self._time(start, "start"))
        return found

    def _selection(self, row: list[Any]) -> Selection:
        key = tuple(row[:8])
        try:
            found = self._selections.get(key)
        except TypeError:  # a list or dict where a text belongs: the checks below name it
            found = None
        if found is None:
            found = Selection(self._fixture(row[:4]),
                              MarketKey(_str(row[4], "market"), _str(row[5], "period"), _line(row[6])),
                              _str(row[7], "outcome"))
            self._selections[key] = found  # every cell of `key` is now checked text or None: hashable
        return found

    def _quote(self, row: object, n: int, source: str, ts: datetime) -> OddsUpdate:
        try:
            if type(row) is not list or not _ROW_MIN <= len(row) <= _ROW_MIN + 2:
                raise ValueError(f"must be a list of {_ROW_MIN} to {_ROW_MIN + 2} cells")
            price, american, feed_ids, bookmaker = row[9], row[10], row[11], row[8]
            if price is not None and not (type(price) is float and PRICE_MIN <= price <= PRICE_MAX):
                price = _price(price)
            if american is not None and not (type(american) is int and 100 <= abs(american) <= AMERICAN_MAX):
                american = _american(american)
            if feed_ids is None:
                feed_ids = {}
            elif type(feed_ids) is not dict or not all(type(v) is str for v in feed_ids.values()):
                raise ValueError(f"feed_ids must be an object of strings or null, got {feed_ids!r}")
            if type(bookmaker) is not str or not bookmaker:
                raise ValueError(f"bookmaker must be a non-empty string, got {bookmaker!r}")
            feed_time = ts
            if len(row) > _ROW_MIN:
                if row[12] is not None:
                    feed_time = self._time(row[12], "feed_time")
                if len(row) > _ROW_MIN + 1:
                    source = _str(row[13], "source")
            return OddsUpdate(source, bookmaker, self._selection(row), price, american, price is None, feed_time,
                              ts, feed_ids)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"quote {n}: {exc}") from None

    def _cleared(self, row: object, n: int) -> BookCleared:
        if not isinstance(row, list) or len(row) != 5:
            raise ValueError(f"cleared {n}: must be [source, at, bookmaker, sport, fixture]")
        try:
            fixture = None if row[4] is None else self._fixture(row[4])
            return BookCleared(_str(row[0], "source"), self._time(row[1], "at"), _opt_str(row[2], "bookmaker"),
                               _opt_str(row[3], "sport"), fixture)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cleared {n}: {exc}") from None

    def _unconfirmed(self, row: object, n: int) -> tuple[FixtureKey, str | None]:
        if not isinstance(row, list) or len(row) != 2:
            raise ValueError(f"unconfirmed {n}: must be [fixture, bookmaker]")
        try:
            return self._fixture(row[0]), _opt_str(row[1], "bookmaker")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"unconfirmed {n}: {exc}") from None


def _with_ladders(updates: tuple[OddsUpdate, ...], rows: list[Any]) -> tuple[OddsUpdate, ...]:
    """`updates` with the ladders of a board's "ladders" rows set (`encode_batch`)."""
    out = list(updates)
    for k, row in enumerate(rows):
        try:
            if type(row) is not list or len(row) != 6:
                raise ValueError("must be [quote index, suspended, back levels, lay levels, last traded, volume]")
            n, suspended, back, lay, last_traded, volume = row
            if type(n) is not int or not 0 <= n < len(out) or out[n].ladder is not None:
                raise ValueError(f"quote index must name a quote once, got {n!r}")
            if type(suspended) is not bool:
                raise ValueError(f"suspended must be true or false, got {suspended!r}")
            if suspended and out[n].price is not None:
                raise ValueError("a suspended quote has no price")
            ladder = Ladder(_levels(back, "back"), _levels(lay, "lay"), _price(last_traded), _size(volume, "volume"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ladder {k}: {exc}") from None
        u = out[n]
        out[n] = OddsUpdate(u.source, u.bookmaker, u.selection, u.price, u.american, suspended, u.feed_time,
                            u.received_at, u.feed_ids, u.instrument, ladder)
    return tuple(out)


def _levels(value: object, what: str) -> tuple[tuple[float, float], ...]:
    if type(value) is not list:
        raise ValueError(f"{what} levels must be a list of [price, size], got {value!r}")
    levels = []
    for level in value:
        if type(level) is not list or len(level) != 2:
            raise ValueError(f"a {what} level must be [price, size], got {level!r}")
        price, size = _price(level[0]), _size(level[1], what)
        if price is None or size is None:
            raise ValueError(f"a {what} level must have a price and a size, got {level!r}")
        levels.append((price, size))
    return tuple(levels)


def _size(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} size must be a finite amount >= 0, got {value!r}")
    return float(value)


def _line(value: object) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"line must be a number as text or null, got {value!r}")
    try:
        line = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"line must be a number, got {value!r}") from None
    if not line.is_finite() or abs(line) > LINE_MAX:
        raise ValueError(f"line must be finite within +-{LINE_MAX}, got {value!r}")
    return line


def _price(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not PRICE_MIN <= value <= PRICE_MAX:
        raise ValueError(f"price must be decimal odds in [{PRICE_MIN}, {PRICE_MAX}] or null, got {value!r}")
    return float(value)


def _american(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= abs(value) <= AMERICAN_MAX:
        raise ValueError(f"american must be an integer with 100 <= |odds| <= {AMERICAN_MAX} or null, got {value!r}")
    return value
