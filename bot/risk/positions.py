"""Positions: the one source of exposure (docs/architecture.md, "Risk" and "Units and names").

Exposure of a bet or order is the most it can lose: back -> stake; lay -> liability
(price - 1) x stake. Two things count:
  - open bets: PENDING, PLACED or CONFIRMED and unsettled (`Ledger.open_bets`; a PENDING bet may
    still be placed, so it counts: docs/architecture.md, Invariants > Fail closed);
  - the unfilled part of open orders: `Ledger.open_orders`, the one definition of an open order
    (not final; a PARTIALLY_FILLED order until an hour past its expiry).
Each is counted per selection, fixture, bookmaker, strategy and in total. A target set of
bookmakers that is empty means "any bookmaker": such an item may land at every book, so it counts
against every book (kept under the `ANY` key and added to each book's figure).

`PositionBook.from_ledger(ledger)` builds the figures from the ledger; `bot risk status`,
`StrategyContext.exposure()/positions()` and `bot report` read them that way. The RiskManager
starts from the same book and keeps it current itself: approvals reserve exposure before an order
row exists, fills turn it into bets, settlements release it. Aggregates are kept incrementally
so a check costs O(target bookmakers), not O(bets).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.ledger.store import OPEN_BET_STATUSES, Ledger
from bot.market.odds import at_risk
from bot.risk.market import MarketSums, Part, bet_part, pending_part, split, worst_case
from bot.types import FINAL_ORDER_STATUSES, BetStatus, Fill, Side, Signal

if TYPE_CHECKING:
    from bot.ledger.models import BetRow, OrderRow

ANY = "*"
ZERO = Decimal(0)
DIMENSIONS = ("selection", "fixture", "bookmaker", "strategy", "total")

OrderLookup = Callable[[str], "OrderRow | None"]  # request_uuid -> the ledger's order row


def worst_case_loss(side: Side | str, stake: Decimal, price: float) -> Decimal:
    """Worst-case loss in stake currency: back -> stake, lay -> (price - 1) x stake (the liability),
    bot.market.odds.at_risk."""
    return at_risk(Side(side) is Side.BACK, stake, price)


def liability_price(signal: Signal) -> float:
    """The price a signal's exposure is counted at: for a lay the worse (higher) of price and
    min_price, its ceiling (bot.types.Signal); a back's exposure does not depend on price."""
    return max(signal.price, signal.min_price)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an exposure item counts. `bookmakers` empty = any bookmaker."""

    strategy: str
    selection: str  # Selection.key
    fixture: str  # str(FixtureKey)
    bookmakers: tuple[str, ...]

    def books(self) -> tuple[str, ...]:
        return self.bookmakers or (ANY,)

    @classmethod
    def of_signal(cls, signal: Signal) -> Scope:
        sel = signal.selection
        return cls(signal.strategy, sel.key, str(sel.fixture), tuple(sorted(signal.bookmakers)))

    @classmethod
    def of_order(cls, order: OrderRow, bookmaker: str | None = None) -> Scope:
        """An order's scope; a bet of it counts at the one `bookmaker` it landed at."""
        books = (bookmaker,) if bookmaker else tuple(sorted(b for b in order.bookmakers.split(",") if b))
        return cls(order.strategy, order.selection, order.fixture, books)

    @classmethod
    def unknown(cls, request_uuid: str, bookmaker: str) -> Scope:
        """A bet whose order the ledger lacks: counted under its request uuid (fail closed)."""
        return cls("?", request_uuid, "?", (bookmaker,))


@dataclass(frozen=True, slots=True)
class Figures:
    """Current exposure in each dimension a new item with a given scope would add to."""

    selection: Decimal
    fixture: Decimal
    bookmaker: Decimal
    bookmaker_name: str
    strategy: Decimal
    total: Decimal

    def amounts(self) -> dict[str, Decimal]:
        return {dim: getattr(self, dim) for dim in DIMENSIONS}


@dataclass(slots=True)
class OrderPosition:
    """Exposure held for an approved signal until its order ends. `filled` counts fills seen;
    `final_filled` is the filled stake the final order status reported (None while in flight);
    `approved_at` is None for an order restored from the ledger (already bound to its row)."""

    signal_id: str
    scope: Scope
    side: Side
    price: float  # liability price for lays
    stake: Decimal
    approved_at: datetime | None
    filled: Decimal = ZERO
    final_filled: Decimal | None = None
    request_uuid: str | None = None

    @property
    def in_flight(self) -> bool:
        return self.final_filled is None

    def remaining(self) -> Decimal:
        if self.final_filled is None:
            return max(self.stake - self.filled, ZERO)
        return max(self.final_filled - self.filled, ZERO)  # reported filled, Fill not seen yet

    @property
    def target(self) -> tuple[str, str, Side, tuple[str, ...]]:
        """Strategy, selection key, side and bookmakers (`target_of` a signal)."""
        return (self.scope.strategy, self.scope.selection, self.side, self.scope.bookmakers)

    def same_target(self, signal: Signal) -> bool:
        """Same strategy, selection, side and bookmakers as `signal`."""
        return self.target == target_of(signal)


def target_of(signal: Signal) -> tuple[str, str, Side, tuple[str, ...]]:
    """What DUPLICATE_SIGNAL compares: strategy, selection key, side, sorted bookmakers."""
    return (signal.strategy, signal.selection.key, signal.side, tuple(sorted(signal.bookmakers)))


@dataclass(frozen=True, slots=True)
class BetPosition:
    """An open bet: `scope.bookmakers` is the one book it was placed at."""

    bet_id: int
    scope: Scope
    side: Side
    stake: Decimal
    price: float
    signal_id: str | None

    @property
    def exposure(self) -> Decimal:
        return worst_case_loss(self.side, self.stake, self.price)


@dataclass(frozen=True, slots=True)
class ExposureSummary:
    """The figures every status output shows, from the same book."""

    total: Decimal
    by_strategy: dict[str, Decimal]
    open_orders: int
    open_bets: int
    by_market: dict[str, Decimal]  # worst-case loss per market, backs and lays netted (`market_totals`)

    def to_json(self) -> dict[str, Any]:
        """Money as exact strings."""
        return {"total": str(self.total), "by_strategy": {k: str(v) for k, v in sorted(self.by_strategy.items())},
                "by_market": {k: str(v) for k, v in sorted(self.by_market.items())}}


class _Aggregates:
    """Amounts keyed by item ("o:<signal_id>" orders, "b:<bet_id>" bets), summed per dimension,
    and each item's share of its market (bot/risk/market.py) summed per market."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Scope, Decimal, Part]] = {}
        self.selection: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.fixture: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.book: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.strategy: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.market: dict[str, MarketSums] = {}
        self.total = ZERO

    def set(self, key: str, scope: Scope, amount: Decimal, part: Part) -> None:
        """Put `amount` (>= 0) and market share `part` on `key`, replacing what it held; an
        amount of 0 removes the item."""
        self.remove(key)
        if amount > 0:
            self._items[key] = (scope, amount, part)
            self._add(scope, amount, part, 1)

    def remove(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._add(*item, -1)

    def _add(self, scope: Scope, amount: Decimal, part: Part, sign: int) -> None:
        amount = sign * amount
        self.selection[scope.selection] += amount
        self.fixture[scope.fixture] += amount
        self.strategy[scope.strategy] += amount
        for book in scope.books():
            self.book[book] += amount
        self.total += amount
        market, _, outcome = split(scope.selection)
        sums = self.market.get(market)
        if sums is None:
            sums = self.market[market] = MarketSums()
        sums.add(outcome, part, sign)
        if sums.empty:
            del self.market[market]

    def bookmaker(self, book: str) -> Decimal:
        """Exposure that may land at `book`: items targeting it plus items open to any book."""
        if book == ANY:
            return self.book[ANY]
        return self.book.get(book, ZERO) + self.book.get(ANY, ZERO)


class PositionBook:
    """Open orders (unfilled part) and open bets, and their exposure. Build it with
    `from_ledger`; the RiskManager then keeps it current with the methods below."""

    def __init__(self) -> None:
        self._sums = _Aggregates()
        self._orders: dict[str, OrderPosition] = {}  # by signal_id
        # target -> signal ids of its orders in flight, in step with `_orders` (`_track`): the
        # duplicate check asks per signal, and a scan of every order grew with the orders open
        self._in_flight: dict[tuple[str, str, Side, tuple[str, ...]], dict[str, None]] = {}
        self._uuid_signal: dict[str, str] = {}  # request_uuid -> signal_id
        self._bets: dict[int, BetPosition] = {}

    @classmethod
    def from_ledger(cls, ledger: Ledger) -> PositionBook:
        """The ledger's open orders and open bets (see the module docstring)."""
        bets = ledger.open_bets()
        return cls.from_rows(bets, ledger.orders_by_uuid({b.request_uuid for b in bets}), ledger.open_orders())

    @classmethod
    def from_rows(cls, open_bets: Iterable[BetRow], bet_orders: Mapping[str, OrderRow],
                  open_orders: Iterable[OrderRow]) -> PositionBook:
        """Open bets (with their orders by request_uuid) and open orders as ledger rows."""
        book = cls()
        # Bets first: an order row's filled_stake already counts them, so adding a bet must not
        # shrink its order's reservation again (put_bet does that only for a known order).
        for bet in open_bets:
            book.put_bet(_bet_of_order(bet_orders.get(bet.request_uuid), bet.bet_id, bet.request_uuid, bet.bookmaker,
                                       bet.placed_stake, bet.placed_price))
        for order in open_orders:
            book.add_order(order)
        return book

    def add_order(self, order: OrderRow) -> None:
        """Count an open order row: its unfilled part, at its price."""
        self.link(order.request_uuid, order.signal_id)
        self._sync(OrderPosition(
            signal_id=order.signal_id, scope=Scope.of_order(order), side=Side.BACK if order.back else Side.LAY,
            price=order.order_price, stake=order.stake, approved_at=None, filled=order.filled_stake,
            request_uuid=order.request_uuid,
        ))

    # -- reading ---------------------------------------------------------------------------

    def figures(self, scope: Scope) -> Figures:
        """Current figures for the buckets `scope` falls in. For the bookmaker dimension the worst
        of its target books (for "any book": the worst book seen so far)."""
        s = self._sums
        books = scope.bookmakers or tuple(b for b in s.book if b != ANY) or (ANY,)
        worst = max(books, key=s.bookmaker)
        return Figures(
            selection=s.selection.get(scope.selection, ZERO),
            fixture=s.fixture.get(scope.fixture, ZERO),
            bookmaker=s.bookmaker(worst),
            bookmaker_name=worst,
            strategy=s.strategy.get(scope.strategy, ZERO),
            total=s.total,
        )

    def market_worst_case(self, selection: str, adding: tuple[Side, Decimal, float] | None = None) -> Decimal:
        """Worst-case loss (stake currency) over the outcomes of the market of `selection` (a
        `Selection.key`), from the net book of open bets and the unfilled part of orders and
        approvals (bot/risk/market.py); with `adding` (side, stake, liability price) counted as
        one more unfilled order on `selection`. O(outcomes of the market)."""
        market, market_type, outcome = split(selection)
        extra = None if adding is None else (outcome, pending_part(*adding))
        return worst_case(self._sums.market.get(market), market_type, extra)

    def totals(self) -> dict[str, dict[str, Decimal]]:
        """Non-zero aggregates per dimension."""
        s = self._sums
        return {
            "selection": {k: v for k, v in s.selection.items() if v},
            "fixture": {k: v for k, v in s.fixture.items() if v},
            "bookmaker": {k: v for k, v in s.book.items() if v},
            "strategy": {k: v for k, v in s.strategy.items() if v},
            "total": {"total": s.total},
        }

    def market_totals(self) -> dict[str, Decimal]:
        """Non-zero worst-case loss per market (fixture|market type/period@line), see
        `market_worst_case`."""
        out = {}
        for market, sums in self._sums.market.items():
            figure = worst_case(sums, split(f"{market}|")[1])
            if figure:
                out[market] = figure
        return out

    def summary(self) -> ExposureSummary:
        totals = self.totals()
        return ExposureSummary(totals["total"]["total"], totals["strategy"], len(self._orders), len(self._bets),
                               self.market_totals())

    def bookmaker_exposure(self, book: str) -> Decimal:
        """Exposure that may land at `book` (items targeting it plus items open to any book)."""
        return self._sums.bookmaker(book)

    def books(self) -> tuple[str, ...]:
        """Bookmakers named by an open item (not the "any book" key)."""
        return tuple(b for b in self._sums.book if b != ANY)

    def strategy_exposure(self, strategy: str) -> Decimal:
        return self._sums.strategy.get(strategy, ZERO)

    def bets(self, strategy: str | None = None) -> list[BetPosition]:
        """Open bets, oldest bet id first; only `strategy`'s when given."""
        return [b for _, b in sorted(self._bets.items()) if strategy is None or b.scope.strategy == strategy]

    def orders(self) -> list[OrderPosition]:
        return list(self._orders.values())

    def order(self, signal_id: str | None) -> OrderPosition | None:
        return None if signal_id is None else self._orders.get(signal_id)

    def held(self, selection: str, side: Side) -> Decimal:
        """Stake of open bets on `selection` at `side` (a position a reducing signal may offset)."""
        return sum((b.stake for b in self._bets.values() if b.scope.selection == selection and b.side is side), ZERO)

    def in_flight_like(self, signal: Signal) -> str | None:
        """signal_id of an order in flight for the same target as `signal`, if any."""
        ids = self._in_flight.get(target_of(signal))
        return next(iter(ids)) if ids else None

    def signal_of(self, request_uuid: str, lookup: OrderLookup) -> str | None:
        """The signal an order is for (asking `lookup` once per unknown order); binds the
        signal's reservation to the order."""
        sid = self._uuid_signal.get(request_uuid)
        if sid is None:
            order = lookup(request_uuid)
            if order is None:
                return None
            sid = order.signal_id
        self.link(request_uuid, sid)
        return sid

    # -- changes (RiskManager) -------------------------------------------------------------

    def reserve(self, signal: Signal, stake: Decimal, at: datetime) -> None:
        """Hold the exposure of an approved signal until its order ends."""
        self._sync(OrderPosition(signal.signal_id, Scope.of_signal(signal), signal.side, liability_price(signal),
                                 stake, at))

    def release(self, signal_id: str) -> OrderPosition | None:
        """Drop an order's reservation (not sent, or swept); returns it if it was held."""
        self._sums.remove(f"o:{signal_id}")
        order = self._orders.pop(signal_id, None)
        if order is not None:
            self._track(order, held=False)
        return order

    def link(self, request_uuid: str, signal_id: str) -> None:
        """Remember which signal an order is for; binds the reservation to its order row."""
        self._uuid_signal[request_uuid] = signal_id
        order = self._orders.get(signal_id)
        if order is not None:
            order.request_uuid = request_uuid

    def order_ended(self, signal_id: str, filled_stake: Decimal) -> None:
        """The order reached a final status with `filled_stake` placed: only fills still to be
        seen keep exposure on it."""
        order = self._orders.get(signal_id)
        if order is not None:
            order.final_filled = filled_stake
            self._sync(order)

    def put_bet(self, bet: BetPosition) -> BetPosition | None:
        """Add or replace an open bet; the reservation of its signal shrinks by the stake
        newly placed. Returns the bet it replaced."""
        previous = self._bets.get(bet.bet_id)
        self._bets[bet.bet_id] = bet
        self._sums.set(f"b:{bet.bet_id}", bet.scope, bet.exposure, bet_part(bet.side, bet.stake, bet.price))
        order = self.order(bet.signal_id)
        if order is not None:
            order.filled += bet.stake - (previous.stake if previous else ZERO)
            self._sync(order)
        return previous

    def apply_fill(self, fill: Fill, lookup: OrderLookup) -> bool:
        """A bet placed, changed, voided or rejected. Returns True when it opened a new bet."""
        if BetStatus(fill.status).value not in OPEN_BET_STATUSES:
            self.void_bet(fill.bet_id)
            return False
        sid = self.signal_of(fill.request_uuid, lookup)
        order = self.order(sid)
        if order is not None:
            scope = replace(order.scope, bookmakers=(fill.bookmaker,))
            bet = BetPosition(fill.bet_id, scope, order.side, fill.stake, fill.price, sid)
        else:  # no reservation: approved before a restart, or already ended
            bet = _bet_of_order(lookup(fill.request_uuid), fill.bet_id, fill.request_uuid, fill.bookmaker,
                                fill.stake, fill.price)
        return self.put_bet(bet) is None

    def void_bet(self, bet_id: int) -> BetPosition | None:
        """A placed bet went void or was rejected: its stake goes back to the reservation."""
        bet = self.close_bet(bet_id)
        order = self.order(bet.signal_id) if bet else None
        if bet is not None and order is not None:
            order.filled -= bet.stake
            self._sync(order)
        return bet

    def close_bet(self, bet_id: int) -> BetPosition | None:
        """A bet settled (or went void): its exposure is released."""
        self._sums.remove(f"b:{bet_id}")
        return self._bets.pop(bet_id, None)

    def sweep(self, horizon: datetime, orders_of: Callable[[str], list[OrderRow]]) -> list[OrderPosition]:
        """Bind approvals made at or before `horizon` to their order rows (`orders_of(strategy)`);
        release and return those that never became an order."""
        released = []
        rows: dict[str, dict[str, OrderRow]] = {}
        for res in [o for o in self._orders.values()
                    if o.request_uuid is None and o.approved_at is not None and o.approved_at <= horizon]:
            strategy = res.scope.strategy
            if strategy not in rows:
                rows[strategy] = {o.signal_id: o for o in orders_of(strategy)}
            row = rows[strategy].get(res.signal_id)
            if row is None:
                self.release(res.signal_id)
                released.append(res)
                continue
            self.link(row.request_uuid, res.signal_id)
            if row.status in FINAL_ORDER_STATUSES:
                self.order_ended(res.signal_id, row.filled_stake)
        return released

    def _sync(self, order: OrderPosition) -> None:
        key = f"o:{order.signal_id}"
        remaining = order.remaining()
        previous = self._orders.get(order.signal_id)
        if previous is not None and previous is not order:  # a restored row replacing a reservation
            self._track(previous, held=False)
        if remaining <= 0 and not order.in_flight:
            self._sums.remove(key)
            self._orders.pop(order.signal_id, None)
            self._track(order, held=False)
            return
        self._orders[order.signal_id] = order
        self._track(order, held=True)
        self._sums.set(key, order.scope, worst_case_loss(order.side, remaining, order.price),
                       pending_part(order.side, remaining, order.price))


    def _track(self, order: OrderPosition, *, held: bool) -> None:
        """Keep `_in_flight` in step: `order` is in `_orders` (`held`) or was just taken out."""
        target = order.target
        ids = self._in_flight.get(target)
        if held and order.in_flight:
            if ids is None:
                ids = self._in_flight[target] = {}
            ids[order.signal_id] = None
        elif ids is not None:
            ids.pop(order.signal_id, None)
            if not ids:
                del self._in_flight[target]


def _bet_of_order(order: OrderRow | None, bet_id: int, request_uuid: str, bookmaker: str, stake: Decimal,
                  price: float) -> BetPosition:
    """A bet counted from its ledger order; without one, as a back bet under its request uuid."""
    if order is None:
        logger.error("bet {} has no order {} in the ledger; counted as a back bet", bet_id, request_uuid)
        return BetPosition(bet_id, Scope.unknown(request_uuid, bookmaker), Side.BACK, stake, price, None)
    side = Side.BACK if order.back else Side.LAY
    return BetPosition(bet_id, Scope.of_order(order, bookmaker), side, stake, price, order.signal_id)
