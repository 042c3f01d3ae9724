"""Risk evaluation cost of the market worst-case cap (bot/risk/market.py, `risk.max_exposure_market`).

Two RiskManagers on fresh SQLite ledgers hold the same open book: `--bets` placed bets, backs and
lays, spread over `--markets` 1x2 markets (loaded from the ledger at start, as after a restart). Each
then evaluates the same stream of back and lay signals on those markets (each approval is
released again, so the book stays the same size), one with the market cap off (the default),
one with it on and never binding. Printed: microseconds per evaluation of each, and their ratio.
Rounds are interleaved and the best of each side counts. Goal: ratio <= 1.2 (the cap costs
O(outcomes of the market), not O(open positions)).

    python bench/risk_market.py [--rounds 5] [--bets 20000] [--markets 500] [--signals 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from loguru import logger

from bot.clock import ReplayClock
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.risk.config import RiskConfig
from bot.risk.manager import RiskManager
from bot.types import FixtureKey, Ladder, MarketKey, OddsUpdate, Selection, Side, Signal

T0 = datetime(2025, 11, 16, 12, 0, tzinfo=UTC)
OUTCOMES = ("home", "draw", "away")
LAY = {"home": 2.4, "draw": 3.4, "away": 4.2}
BACK = {"home": 2.5, "draw": 3.5, "away": 4.0}
BIG = Decimal(10**9)


def _selection(outcome: str, n: int) -> Selection:
    return Selection(FixtureKey("EPL", f"Home{n}", f"Away{n}", T0 + timedelta(days=1)), MarketKey("1x2"), outcome)


def _config(market_cap: Decimal | None) -> RiskConfig:
    return RiskConfig(max_stake=BIG, max_exposure_selection=BIG, max_exposure_fixture=BIG,
                      max_exposure_bookmaker=BIG, max_exposure_strategy=BIG, max_exposure_total=BIG,
                      max_exposure_market=market_cap, max_orders_per_window=10**9, block_while_in_flight=False,
                      duplicate_window_seconds=0, daily_loss_limit=BIG, max_drawdown=BIG)


class _Side:
    """A risk manager on its own ledger, book and clock."""

    def __init__(self, tmp: Path, market_cap: Decimal | None, bets: int, markets: int) -> None:
        self.clock = ReplayClock(T0)
        self.ledger = Ledger(tmp / "bot.db", self.clock)
        book = OddsBook(self.clock)
        for n in range(markets):
            for outcome in OUTCOMES:
                book.apply(OddsUpdate("bench", "bookA", _selection(outcome, n), BACK[outcome], None, False, T0, T0,
                                      ladder=Ladder(back=((BACK[outcome], 1e6),), lay=((LAY[outcome], 1e6),))))
        orders, rows = [], []
        for i in range(bets):  # filled orders with open bets: what a restart loads into the position book
            n, outcome, back = i % markets, OUTCOMES[i % 3], i % 2 == 0
            sel, uuid_ = _selection(outcome, n), f"u{i}"
            price = BACK[outcome] if back else LAY[outcome]
            orders.append(OrderRow(request_uuid=uuid_, signal_id=f"s{i}", strategy="bench", selection=sel.key,
                                   fixture=str(sel.fixture), bookmakers="bookA", back=back, order_price=price,
                                   stake=Decimal(5), filled_stake=Decimal(5), status="FILLED", created_at=T0,
                                   updated_at=T0))
            rows.append(BetRow(bet_id=i + 1, request_uuid=uuid_, bookmaker="bookA", placed_stake=Decimal(5),
                               placed_price=price, bet_status="CONFIRMED", updated_at=T0))
        self.ledger.add_orders(orders)
        for row in rows:
            self.ledger.upsert_bet(row)
        self.risk = RiskManager(_config(market_cap), clock=self.clock, book=book, ledger=self.ledger,
                                requires_mapping=False, state_dir=tmp / "state")
        self.seq = 0

    def signals(self, count: int, markets: int) -> list[Signal]:
        out = []
        for i in range(count):
            self.seq += 1
            outcome, lay = OUTCOMES[i % 3], i % 2 == 1
            price = LAY[outcome] if lay else BACK[outcome]
            out.append(Signal(signal_id=f"x{self.seq}", strategy="bench", selection=_selection(outcome, i % markets),
                              side=Side.LAY if lay else Side.BACK, stake=Decimal(2), price=price, min_price=price,
                              bookmakers=("bookA",), created_at=T0))
        return out


async def _run(side: _Side, signals: int, markets: int) -> float:
    sigs = side.signals(signals, markets)
    start = time.perf_counter()
    for sig in sigs:
        decision = await side.risk.evaluate(sig, None)
        if not decision.approved:
            raise SystemExit(f"bench signal rejected: {decision.reason} {decision.details}")
        side.risk.release(sig.signal_id)
    return (time.perf_counter() - start) / signals * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bets", type=int, default=20_000)
    parser.add_argument("--markets", type=int, default=500)
    parser.add_argument("--signals", type=int, default=2_000)
    args = parser.parse_args()
    logger.remove()
    with tempfile.TemporaryDirectory() as tmp:
        off = _Side(Path(tmp) / "off", None, args.bets, args.markets)
        on = _Side(Path(tmp) / "on", BIG, args.bets, args.markets)
        best_off = best_on = float("inf")
        for _ in range(args.rounds):
            best_off = min(best_off, asyncio.run(_run(off, args.signals, args.markets)))
            best_on = min(best_on, asyncio.run(_run(on, args.signals, args.markets)))
        print(f"open bets {args.bets} on {args.markets} markets; {args.signals} signals per round, best of "
              f"{args.rounds}")
        print(f"market cap off: {best_off:.1f} us per evaluation")
        print(f"market cap on:  {best_on:.1f} us per evaluation")
        print(f"ratio on/off:   {best_on / best_off:.2f} (goal <= 1.2)")
        off.ledger.close()
        on.ledger.close()


if __name__ == "__main__":
    main()
