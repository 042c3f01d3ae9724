"""Exposure accounting: worst-case loss per selection, fixture, bookmaker, strategy and in total.

Exposure of one bet or order = the most it can lose (issue 5, build point 5):
back -> stake; lay -> (price - 1) x stake. Open bets and the unfilled part of in-flight orders
both count. Aggregates are kept incrementally so a check costs O(target bookmakers), not O(bets).

A target set of bookmakers that is empty means "any bookmaker": such an item can land at every
book, so it counts against every book (kept under the `ANY` key and added to each book's figure).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.types import Side

if TYPE_CHECKING:
    from bot.ledger.models import OrderRow

ANY = "*"
ZERO = Decimal(0)


def worst_case_loss(side: Side | str, stake: Decimal, price: float) -> Decimal:
    """Worst-case loss in stake currency: back -> stake, lay -> (price - 1) x stake (the liability).
    The price goes through str() so the product is exact Decimal arithmetic."""
    if Side(side) is Side.BACK:
        return stake
    return (Decimal(str(price)) - 1) * stake


def order_exposure(order: OrderRow) -> Decimal:
    """Worst-case loss of the unfilled part of an order row (stake - filled_stake at order_price)."""
    remaining = max(order.stake - order.filled_stake, ZERO)
    return worst_case_loss(Side.BACK if order.back else Side.LAY, remaining, order.order_price)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an exposure item counts. `bookmakers` empty = any bookmaker."""

    strategy: str
    selection: str  # Selection.key
    fixture: str  # str(FixtureKey)
    bookmakers: tuple[str, ...]

    def books(self) -> tuple[str, ...]:
        return self.bookmakers or (ANY,)


@dataclass(frozen=True, slots=True)
class Figures:
    """Current exposure in each dimension a new item with `scope` would add to."""

    selection: Decimal
    fixture: Decimal
    bookmaker: Decimal
    bookmaker_name: str
    strategy: Decimal
    total: Decimal


class ExposureBook:
    """Items keyed by a caller's id ("r:<signal_id>" reservations, "b:<bet_id>" bets)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Scope, Decimal]] = {}
        self._selection: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._fixture: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._book: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._strategy: defaultdict[str, Decimal] = defaultdict(Decimal)
        self._total = ZERO

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def keys(self) -> Iterable[str]:
        return self._items.keys()

    def amount(self, key: str) -> Decimal:
        item = self._items.get(key)
        return ZERO if item is None else item[1]

    def scope(self, key: str) -> Scope | None:
        item = self._items.get(key)
        return None if item is None else item[0]

    def set(self, key: str, scope: Scope, amount: Decimal) -> None:
        """Put `amount` (>= 0) on `key`, replacing what it held; 0 removes the item."""
        self.remove(key)
        if amount <= 0:
            return
        self._items[key] = (scope, amount)
        self._add(scope, amount)

    def remove(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._add(item[0], -item[1])

    def _add(self, scope: Scope, amount: Decimal) -> None:
        self._selection[scope.selection] += amount
        self._fixture[scope.fixture] += amount
        self._strategy[scope.strategy] += amount
        for book in scope.books():
            self._book[book] += amount
        self._total += amount

    def bookmaker(self, book: str) -> Decimal:
        """Exposure that may land at `book`: items targeting it plus items open to any book."""
        if book == ANY:
            return self._book[ANY]
        return self._book.get(book, ZERO) + self._book.get(ANY, ZERO)

    def figures(self, scope: Scope) -> Figures:
        """Current figures for the buckets `scope` falls in. For the bookmaker dimension the worst
        of its target books (for "any book": the worst book seen so far)."""
        books = scope.bookmakers or tuple(b for b in self._book if b != ANY) or (ANY,)
        worst = max(books, key=self.bookmaker)
        return Figures(
            selection=self._selection.get(scope.selection, ZERO),
            fixture=self._fixture.get(scope.fixture, ZERO),
            bookmaker=self.bookmaker(worst),
            bookmaker_name=worst,
            strategy=self._strategy.get(scope.strategy, ZERO),
            total=self._total,
        )

    def totals(self) -> dict[str, dict[str, Decimal]]:
        """Non-zero aggregates per dimension, for status output."""
        return {
            "selection": {k: v for k, v in self._selection.items() if v},
            "fixture": {k: v for k, v in self._fixture.items() if v},
            "bookmaker": {k: v for k, v in self._book.items() if v},
            "strategy": {k: v for k, v in self._strategy.items() if v},
            "total": {"total": self._total},
        }
