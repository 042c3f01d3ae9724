"""Exchange commission on net market winnings (docs/architecture.md, "Units and names").

An exchange such as Betfair charges commission per market and account, once the market has
settled, on the account's net winnings in it: rate x max(0, net PnL of every bet of the market),
nothing on a net loss. `Commission.charge` gives the amount to charge on one bet's settlement
as it is stored: nothing while another bet of the same market at the same bookmaker is still
open; otherwise the market's commission (on its net PnL before commission, this bet included)
less what its earlier settlements were already charged, so the market pays the rule's amount
once it has settled, even when a bet on it settles after the rest (then the charge corrects it,
down as well as up). The rates are per bookmaker (`paper.commission`); a bookmaker without one
pays none. Live, ABP reports what the bookmaker pays (docs/reference/abp.md §9) and whether an
exchange's `settlementAmount` is net of its commission is not documented: no rate is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from bot.ledger.models import OrderRow
from bot.ledger.store import OPEN_BET_STATUSES, Ledger
from bot.types import SettlementStatus

CENT = Decimal("0.01")
ZERO = Decimal(0)


class Commission:
    """Commission per bookmaker (`rates`: bookmaker -> fraction of net winnings, 0.05 = 5 %),
    worked out from the ledger's bets of the market. Money in the bot currency."""

    def __init__(self, rates: Mapping[str, Decimal], ledger: Ledger) -> None:
        self._rates = {book: Decimal(rate) for book, rate in rates.items() if rate}
        self._ledger = ledger

    def charge(self, order: OrderRow, bet_id: int, bookmaker: str, pnl: Decimal) -> Decimal:
        """The commission to charge on the settlement of bet `bet_id` (of `order`, at
        `bookmaker`) whose PnL before commission is `pnl`; 0 while its market is still open there.
        The bet itself must already be stored settled (`Ledger.upsert_bet`)."""
        rate = self._rates.get(bookmaker)
        if rate is None:
            return ZERO
        market = order.selection.rpartition("|")[0]
        net, charged = pnl, ZERO
        for bet, settled in self._ledger.market_bets(order.fixture, market, bookmaker):
            if bet.bet_id == bet_id:
                continue
            if settled is None:
                if bet.bet_status in OPEN_BET_STATUSES and bet.settlement_status == SettlementStatus.UNSETTLED.value:
                    return ZERO  # the market is still open at this book
                continue  # never stood (rejected, cancelled) or not converted yet
            net += settled.pnl + settled.commission
            charged += settled.commission
        return (rate * max(net, ZERO)).quantize(CENT, ROUND_HALF_EVEN) - charged
