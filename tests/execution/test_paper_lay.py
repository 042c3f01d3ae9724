"""PaperVenue lays (bot/sim/paper.py): a lay fills only against an exchange's available-to-lay
levels at or below its orderPrice, lowest first, partially from the levels' sizes, a size taken
staying taken until the book sends a new ladder; the rest works until expiry; a book without a
ladder declines it; a settled lay returns its liability plus the backer's stake when it wins.
A back at an exchange fills from its back levels the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.execution.config import ExecutionConfig, PaperConfig
from bot.execution.executor import Executor
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.sim.adapters import BookQuotes
from bot.sim.paper import PaperVenue, settlement_amount
from bot.types import (
    Fill,
    FixtureKey,
    Ladder,
    MarketKey,
    OddsUpdate,
    OrderIntent,
    Selection,
    Settlement,
    SettlementStatus,
    Side,
    Signal,
)
from tests.execution.helpers import Events

T0 = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
SEL = Selection(FixtureKey("EPL", "Arsenal", "Chelsea", T0 + timedelta(hours=2)), MarketKey("1x2"), "home")


class Exchange:
    """Quote and depth source for tests: back prices and ladders per book, changeable between calls."""

    def __init__(self, prices: dict[str, float], ladders: dict[str, Ladder]) -> None:
        self.prices = prices
        self.depth = ladders

    def quotes(self, order: dict) -> dict[str, float]:
        return dict(self.prices)

    def ladders(self, order: dict) -> dict[str, Ladder]:
        return dict(self.depth)


def lay(stake: str, price: float, **kw: object) -> dict:
    return {"requestUuid": str(uuid.uuid4()), "fixtureId": None, "outcomeId": None, "playerId": 0,
            "orderPrice": price, "orderStake": float(stake), "userRef": "t", "testOrder": False, "back": False,
            "expiresAt": (T0 + timedelta(seconds=30)).isoformat(), "meta": {"selection": SEL.key}, **kw}


def venue(source: object) -> tuple[PaperVenue, ReplayClock]:
    clock = ReplayClock(T0)
    return PaperVenue(clock, source, PaperConfig(default_max_stake=1000, default_min_stake=1)), clock  # type: ignore[arg-type]


def _bets(order: dict) -> list[tuple[float, float]]:
    return [(b["placedPrice"], b["placedStake"]) for b in order["bets"]]


def test_a_lay_fills_partially_from_the_ladder_sizes_and_works_until_expiry() -> None:
    book = Exchange({"betfair-ex": 1.95}, {"betfair-ex": Ladder(back=((1.95, 500.0),),
                                                                 lay=((2.0, 30.0), (2.1, 50.0), (2.3, 100.0)))})
    v, clock = venue(book)
    status, out = v.place({"orders": [lay("100", 2.2)]})
    first = out["acceptedOrders"][0]
    assert status == 200
    # 30 at 2.0 and 50 at 2.1; 2.3 is above the lay's ceiling of 2.2
    assert (first["orderStatus"], first["filledStake"], _bets(first)) == ("PARTIALLY_FILLED", 80.0,
                                                                          [(2.0, 30.0), (2.1, 50.0)])
    # a second lay finds those levels taken until the book changes
    _, out2 = v.place({"orders": [lay("10", 2.2)]})
    second = out2["acceptedOrders"][0]
    assert (second["orderStatus"], second["filledStake"]) == ("PENDING", 0.0)
    book.depth = {"betfair-ex": Ladder(lay=((2.1, 15.0), (2.2, 40.0)))}  # a new ladder from the feed
    clock.advance(T0 + timedelta(seconds=10))
    v.advance()  # the first order works on first: its 20 left takes 15 at 2.1 and 5 at 2.2
    first, second = (v.orders(request_uuids=[o["requestUuid"]])[0] for o in (first, second))
    assert (first["orderStatus"], first["filledStake"]) == ("FILLED", 100.0)
    assert _bets(first)[2:] == [(2.1, 15.0), (2.2, 5.0)]
    assert (second["orderStatus"], _bets(second)) == ("FILLED", [(2.2, 10.0)])  # 35 left at 2.2


def test_an_unmatched_lay_expires() -> None:
    v, clock = venue(Exchange({"betfair-ex": 1.95}, {"betfair-ex": Ladder(lay=((2.5, 100.0),))}))
    _, out = v.place({"orders": [lay("10", 2.2)]})
    assert out["acceptedOrders"][0]["orderStatus"] == "PENDING"  # 2.5 is above the ceiling
    clock.advance(T0 + timedelta(seconds=31))
    v.advance()
    assert v.orders(request_uuids=[out["acceptedOrders"][0]["requestUuid"]])[0]["orderStatus"] == "EXPIRED"


def test_a_sportsbook_declines_a_lay_and_takes_a_back() -> None:
    v, _ = venue(Exchange({"pinnacle": 2.1}, {}))
    status, out = v.place({"orders": [lay("10", 2.2)]})
    assert status == 400
    assert out["declinedOrders"][0]["declineReason"].startswith("Invalid odds: no lay price")
    status, out = v.place({"orders": [lay("10", 2.0, back=True)]})
    assert (status, out["acceptedOrders"][0]["orderStatus"]) == (200, "FILLED")


def test_the_odds_book_adapter_lays_against_a_fresh_exchange_quote_only() -> None:
    clock = ReplayClock(T0)
    odds = OddsBook(clock)
    odds.apply(OddsUpdate("betfair", "betfair-ex", SEL, 1.95, None, False, T0, T0,
                          ladder=Ladder(back=((1.95, 10.0),), lay=((2.0, 12.0),))))
    odds.apply(OddsUpdate("feed", "pinnacle", SEL, 2.05, None, False, T0, T0))
    v = PaperVenue(clock, BookQuotes(odds), PaperConfig(default_max_stake=1000, default_min_stake=1))
    _, out = v.place({"orders": [lay("20", 2.0)]})
    assert _bets(out["acceptedOrders"][0]) == [(2.0, 12.0)]
    assert out["acceptedOrders"][0]["bets"][0]["bookmaker"] == "betfair-ex"


def test_a_back_at_an_exchange_fills_from_the_back_levels_beside_a_sportsbook() -> None:
    book = Exchange({"betfair-ex": 2.0, "pinnacle": 1.97},
                    {"betfair-ex": Ladder(back=((2.0, 15.0), (1.9, 100.0)), lay=((2.02, 50.0),))})
    v, _ = venue(book)
    _, out = v.place({"orders": [lay("20", 1.95, back=True)]})
    first = out["acceptedOrders"][0]
    # 15 at the exchange's 2.0, the rest at the sportsbook; 1.9 is below the floor
    assert [(b["bookmaker"], b["placedPrice"], b["placedStake"]) for b in first["bets"]] == [
        ("betfair-ex", 2.0, 15.0), ("pinnacle", 1.97, 5.0)]
    _, out = v.place({"orders": [lay("10", 1.95, back=True)]})
    assert [(b["bookmaker"], b["placedStake"]) for b in out["acceptedOrders"][0]["bets"]] == [("pinnacle", 10.0)]


def test_lay_settlement_amounts_by_hand() -> None:
    # lay 30 at 2.0: liability 30; lay 50 at 2.1: liability 55
    assert settlement_amount(Decimal(30), 2.0, SettlementStatus.WON, back=False) == Decimal("60.00")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.WON, back=False) == Decimal("105.00")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.LOST, back=False) == Decimal("0.00")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.VOID, back=False) == Decimal("55.00")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.HALF_WON, back=False) == Decimal("80.00")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.HALF_LOST, back=False) == Decimal("27.50")
    assert settlement_amount(Decimal(50), 2.1, SettlementStatus.WON) == Decimal("105.00")  # a back: 50 x 2.1


async def test_a_lay_signal_goes_out_with_its_ceiling_fills_and_settles_on_its_liability(tmp_path: Path) -> None:
    clock = ReplayClock(T0)
    venue = PaperVenue(clock, Exchange({"betfair-ex": 1.95}, {"betfair-ex": Ladder(
        lay=((2.0, 30.0), (2.1, 50.0), (2.3, 100.0)))}), PaperConfig(default_max_stake=1000))  # type: ignore[arg-type]
    ledger = Ledger(tmp_path / "bot.db", clock=clock)
    events = Events()
    ex = Executor(venue, ledger, clock, ExecutionConfig(), events)
    await ex.start()
    sig = Signal(signal_id="lay-1", strategy="ex", selection=SEL, side=Side.LAY, stake=Decimal(100), price=2.0,
                 min_price=2.2, bookmakers=("betfair-ex",), created_at=T0)
    (uuid_,) = await ex.submit([OrderIntent(sig, Decimal(100), None)])
    row = ledger.get_order(uuid_)
    assert row is not None
    body = ex.order_body(row)
    assert (body["back"], body["orderPrice"]) == (False, 2.2)  # the lay's ceiling is ABP's orderPrice
    assert (row.status, row.filled_stake) == ("PARTIALLY_FILLED", Decimal(80))
    first, second = sorted(events.of(Fill), key=lambda f: f.bet_id)
    assert [(f.price, f.stake) for f in (first, second)] == [(2.0, Decimal(30)), (2.1, Decimal(50))]
    venue.settle(first.bet_id, SettlementStatus.LOST)  # the selection won: the layer pays 30 x (2.0 - 1)
    venue.settle(second.bet_id, SettlementStatus.WON)  # 55 held comes back with the backer's 50
    await venue.flush()
    assert [(s.amount, s.pnl) for s in events.of(Settlement)] == [(Decimal("0.00"), Decimal("-30.00")),
                                                                  (Decimal("105.00"), Decimal("50.00"))]
    assert ledger.settled_pnl() == Decimal(20)
    await ex.stop(cancel_pending=True)
    ledger.close()
