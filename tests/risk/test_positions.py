"""PositionBook from a ledger: what counts when the ledger is incomplete (fail closed)."""

from __future__ import annotations

from decimal import Decimal

from bot.ledger.models import BetRow
from bot.risk.positions import PositionBook
from bot.types import Side
from tests.risk.factories import Env


def test_a_bet_without_its_order_still_counts_as_a_back_bet(env: Env) -> None:
    env.ledger.upsert_bet(BetRow(bet_id=9, request_uuid="lost-order", bookmaker="bookB", placed_stake=Decimal(7),
                                 placed_price=3.0, bet_status="PLACED"))
    book = PositionBook.from_ledger(env.ledger)
    assert book.summary().total == Decimal(7) and book.summary().by_strategy == {"?": Decimal(7)}
    [bet] = book.bets()
    assert (bet.scope.selection, bet.scope.bookmakers, bet.side) == ("lost-order", ("bookB",), Side.BACK)
    assert env.new_risk().exposure()["bookmaker"] == {"bookB": Decimal(7)}  # the risk manager counts it too
