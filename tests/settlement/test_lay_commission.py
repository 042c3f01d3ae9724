"""Lays settled from the bundled real NFL results through the real paper venue and executor,
with exchange commission on net market winnings (bot/execution/commission.py): every figure
below is worked out by hand from the results file (Bills 44-32 Buccaneers, Dolphins 16-13
Commanders, bot/data/nfl_results_2025-11-16.csv)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.ledger.models import BetRow, OrderRow
from bot.sim.results import Results, load_results
from bot.sim.settlement import PaperSettler
from bot.types import FixtureKey, MarketKey, Selection
from tests.settlement.conftest import paper_ledger

DATA = Path(__file__).parents[2] / "bot" / "data"
BILLS = FixtureKey("NFL", "Buffalo Bills", "Tampa Bay Buccaneers", datetime(2025, 11, 16, 18, 2, tzinfo=UTC))
DOLPHINS = FixtureKey("NFL", "Miami Dolphins", "Washington Commanders", datetime(2025, 11, 16, 14, 30, tzinfo=UTC))
ALL_OVER = datetime(2025, 11, 16, 22, 0, tzinfo=UTC)  # 4 h after the later kickoff
EXCHANGE = "betfair-ex"


def _rows(bet_id: int, fixture: FixtureKey, outcome: str, back: bool, stake: str, price: float,
          book: str = EXCHANGE) -> tuple[OrderRow, BetRow]:
    at = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)
    uuid = f"u{bet_id}"
    order = OrderRow(request_uuid=uuid, order_id=bet_id, signal_id=f"s{bet_id}", strategy="ex",
                     selection=Selection(fixture, MarketKey("moneyline"), outcome).key, fixture=str(fixture),
                     back=back, order_price=price, stake=Decimal(stake), filled_stake=Decimal(stake),
                     status="FILLED", created_at=at, updated_at=at)
    bet = BetRow(bet_id=bet_id, order_id=bet_id, request_uuid=uuid, bookmaker=book, placed_stake=Decimal(stake),
                 placed_price=price, bet_status="CONFIRMED", placed_at=at, updated_at=at)
    return order, bet


ROWS = [
    _rows(1, BILLS, "away", False, "20", 3.0),  # lay the Buccaneers (lost): WON, +20; returns 40 + 20
    _rows(2, BILLS, "home", True, "10", 1.5),  # back the Bills: WON, +5
    _rows(3, BILLS, "home", False, "10", 1.6),  # lay the Bills (won): LOST, -6 (its liability)
    _rows(4, BILLS, "home", True, "10", 2.0, book="fanduel"),  # a sportsbook: no commission, +10
    _rows(5, DOLPHINS, "home", False, "10", 1.8),  # lay the Dolphins (won): LOST -8
    # lay the Commanders (lost): WON; its liability 4.38 x 0.53 = 2.3214 is held as 2.32, so it
    # returns 6.70 and wins exactly the backer's 4.38; the market nets -3.62: no commission
    _rows(6, DOLPHINS, "away", False, "4.38", 1.53),
]


async def test_lays_settle_and_the_market_pays_commission_once_on_its_net_winnings(tmp_path: Path) -> None:
    clock = ReplayClock(datetime(2025, 11, 16, 12, 0, tzinfo=UTC))
    async with paper_ledger(tmp_path / "bot.db", clock, ROWS, commission={EXCHANGE: Decimal("0.05")}) as (
            ledger, driver):
        settler = PaperSettler(Results(load_results(DATA / "nfl_results_2025-11-16.csv")), ledger, driver, clock)
        clock.advance(ALL_OVER)
        assert await settler.settle_due() == 0
        got = {s.bet_id: (s.status, s.amount, s.pnl, s.commission) for s in ledger.settlements()}
        # Bills moneyline at the exchange nets 20 + 5 - 6 = 19: 5 % = 0.95, charged on the bet that
        # settles it (the last of the three)
        assert got == {
            1: ("WON", Decimal("60.00"), Decimal("20.00"), Decimal(0)),
            2: ("WON", Decimal("15.00"), Decimal("5.00"), Decimal(0)),
            3: ("LOST", Decimal("0.00"), Decimal("-6.95"), Decimal("0.95")),
            4: ("WON", Decimal("20.00"), Decimal("10.00"), Decimal(0)),
            5: ("LOST", Decimal("0.00"), Decimal("-8.00"), Decimal(0)),
            6: ("WON", Decimal("6.70"), Decimal("4.38"), Decimal(0)),
        }
        assert str(got[6][2]) == "4.38"  # in cents, not 4.3786 nor 4.3800
        assert ledger.settled_pnl() == Decimal("24.43")  # 19 - 0.95 + 10 - 8 + 4.38
