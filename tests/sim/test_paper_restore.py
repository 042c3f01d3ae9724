"""A restarted paper venue adopts from the ledger only what can still change (bot/sim/paper.py
`PaperVenue.restore`): orders not final and orders with an open bet, each with all its bets; a
finished order (final, every bet settled) is not held, and new ids start above every id the
ledger holds, so no finished order's id is handed out again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.clock import ReplayClock
from bot.execution.config import PaperConfig
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.sim.adapters import PaperDriver
from bot.sim.paper import PaperVenue

T0 = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)
SELECTION = "NFL|Buffalo Bills vs Tampa Bay Buccaneers|2025-11-16T18:00Z|moneyline/game|home"


class FixedQuotes:
    def quotes(self, order: dict) -> dict[str, float]:
        return {"fanduel": 2.0}


def _order(n: int, status: str, expires: datetime | None = None) -> OrderRow:
    return OrderRow(request_uuid=f"u{n}", order_id=n, signal_id=f"s{n}", strategy="value", selection=SELECTION,
                    order_price=2.0, stake=Decimal(10), filled_stake=Decimal(10), status=status,
                    expires_at=expires, created_at=T0, updated_at=T0)


def _bet(n: int, settlement: str = "UNSETTLED") -> BetRow:
    return BetRow(bet_id=100 + n, order_id=n, request_uuid=f"u{n}", bookmaker="fanduel", placed_stake=Decimal(10),
                  placed_price=2.0, bet_status="CONFIRMED", settlement_status=settlement, placed_at=T0, updated_at=T0)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "bot.db", clock=ReplayClock(T0))
    ledger.add_orders([_order(n, "FILLED") for n in range(1, 6)])  # finished history ...
    for n in range(1, 6):
        ledger.upsert_bet(_bet(n, "LOST"))  # ... every bet settled
    ledger.add_orders([_order(6, "FILLED"), _order(7, "PENDING", T0 + timedelta(seconds=5)),
                       _order(8, "PENDING", T0 - timedelta(seconds=1))])
    ledger.upsert_bet(_bet(6))  # filled, its bet still open
    return ledger


@pytest.mark.parametrize("how", ["driver", "restore_open"])
def test_only_orders_that_can_still_change_are_adopted(ledger: Ledger, how: str) -> None:
    clock = ReplayClock(T0)
    venue = PaperVenue(clock, FixedQuotes(), PaperConfig())
    if how == "driver":
        PaperDriver(venue, ledger)  # the engine's path: fed every order and bet
    else:
        assert venue.restore_open(ledger) == 3

    assert [o["requestUuid"] for o in venue.all_orders()] == ["u6", "u7", "u8"]
    assert [b["betId"] for b in venue.all_bets()] == [106]
    assert venue.bets(order_ids=[6])[0]["settlementStatus"] == "UNSETTLED"

    venue.advance()  # the expired PENDING order expires; the other fills at 2.0
    assert {o["requestUuid"]: o["orderStatus"] for o in venue.all_orders()} == {
        "u6": "FILLED", "u7": "FILLED", "u8": "EXPIRED"}
    status, body = venue.place({"orders": [{"requestUuid": "new", "orderPrice": 2.0, "orderStake": 5,
                                            "userRef": "value", "testOrder": False,
                                            "meta": {"selection": SELECTION}}]})
    assert status == 200
    assert body["acceptedOrders"][0]["orderId"] == 9  # above every ledger order id
    assert min(b["betId"] for b in venue.all_bets() if b["requestUuid"] in ("new", "u7")) > 106
    ledger.close()
