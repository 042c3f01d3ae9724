"""The in-process paper venue's adapters to the engine (docs/architecture.md, "Simulators"):
`BookQuotes` prices its orders from the engine's OddsBook, `PaperDriver` moves it with the
trading clock and settles its bets (docs/architecture.md, "Invariants > Two clocks": the paper
venue runs on the trading clock, so a replay fills and expires orders at event times)."""

from __future__ import annotations

from typing import Any

from loguru import logger

from bot.ledger.store import Ledger
from bot.market.book import OddsBook, Quote
from bot.sim.paper import PaperVenue
from bot.types import Ladder, Selection, SettlementStatus

log = logger.bind(stage="paper")


class BookQuotes:
    """The paper venue's QuoteSource and DepthSource: what the OddsBook offers now for an order's
    selection (`meta.selection`, so unmapped selections are priced too): back prices, and the
    exchange ladders of quotes that are neither suspended nor stale."""

    def __init__(self, book: OddsBook) -> None:
        self._book = book

    def _quotes(self, order: dict[str, Any]) -> dict[str, Quote]:
        key = (order.get("meta") or {}).get("selection")
        if not key:
            return {}
        selection = self._book.selection(key)
        if selection is None:
            try:
                selection = Selection.parse(key)
            except ValueError:
                return {}
        return self._book.quotes(selection)

    def quotes(self, order: dict[str, Any]) -> dict[str, float]:
        return {bk: q.price for bk, q in self._quotes(order).items() if q.usable and q.price}

    def ladders(self, order: dict[str, Any]) -> dict[str, Ladder]:
        return {bk: q.ladder for bk, q in self._quotes(order).items()
                if q.ladder is not None and not q.suspended and not q.stale}


class PaperDriver:
    """Drives the in-process PaperVenue from the engine (its `PaperControl`): it adopts the
    ledger's earlier orders and bets (as ABP would still hold them), its orders fill or expire
    as the clock moves, and its updates reach the executor in order."""

    def __init__(self, venue: PaperVenue, ledger: Ledger) -> None:
        self._venue = venue
        adopted = venue.restore_open(ledger)  # what can still change, not the whole history
        if adopted:
            log.info("paper venue adopted {} orders of earlier runs from the ledger", adopted)

    async def tick(self) -> None:
        self._venue.advance()
        await self._venue.flush()

    async def settle(self, bet_id: int, status: SettlementStatus) -> None:
        """Settle one bet on the venue and deliver the update.

        Raises:
            KeyError: unknown bet. ValueError: the bet is not CONFIRMED.
        """
        self._venue.settle(bet_id, status)
        await self._venue.flush()
