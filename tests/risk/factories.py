"""Builders shared by the risk and strategy tests: real OddsBook, ReplayClock and a SQLite
Ledger in tmp_path, plus a tiny "venue" that writes what the executor would (order rows, bets,
settlements) so the risk manager's ledger lookups run for real."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from bot.clock import ReplayClock
from bot.execution.bookmakers import BookmakerRoute
from bot.ledger.models import BetRow, OrderRow, SettlementRow
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.risk.config import RiskConfig
from bot.risk.manager import RiskManager
from bot.types import (
    BetStatus,
    Decision,
    Fill,
    FixtureKey,
    Ladder,
    MarketKey,
    OddsUpdate,
    OrderStatus,
    OrderUpdate,
    Selection,
    Settlement,
    SettlementStatus,
    Side,
    Signal,
)

T0 = datetime(2025, 11, 16, 17, 0, tzinfo=UTC)
MONEYLINE = MarketKey("moneyline")


def fixture_key(n: int = 0, sport: str = "NFL") -> FixtureKey:
    return FixtureKey(sport, f"Home{n}", f"Away{n}", T0 + timedelta(days=1))


def selection(outcome: str = "home", n: int = 0, market: MarketKey = MONEYLINE) -> Selection:
    return Selection(fixture_key(n), market, outcome)


def odds(sel: Selection, bookmaker: str, price: float | None, at: datetime, suspended: bool = False,
         source: str = "test", ladder: Ladder | None = None) -> OddsUpdate:
    return OddsUpdate(source, bookmaker, sel, price, None, suspended or price is None, at, at, ladder=ladder)


def make_signal(sel: Selection, at: datetime, *, strategy: str = "s1", stake: str | Decimal = "10",
                price: float = 2.0, side: Side = Side.BACK, bookmakers: tuple[str, ...] = ("bookA",),
                group: str | None = None, expires_at: datetime | None = None,
                min_price: float | None = None) -> Signal:
    return Signal(
        signal_id=uuid.uuid4().hex, strategy=strategy, selection=sel, side=side, stake=Decimal(stake),
        price=price, min_price=price if min_price is None else min_price, bookmakers=bookmakers,
        created_at=at, group=group, expires_at=expires_at,
    )


@dataclass
class Env:
    """Clock, book, ledger and a risk manager wired like the engine does."""

    tmp: Path
    clock: ReplayClock = field(default_factory=lambda: ReplayClock(T0))
    config: RiskConfig = field(default_factory=RiskConfig)
    requires_mapping: bool = False
    route: BookmakerRoute | None = None

    def __post_init__(self) -> None:
        self.state_dir = self.tmp / "state"
        self.book = OddsBook(self.clock)
        self.ledger = Ledger(self.state_dir / "bot.db", self.clock)
        self.risk = self.new_risk()
        self._bet_ids = 0

    def config_file(self, **risk: object) -> Path:
        """A config.yaml naming this env's state dir (what `bot risk -c` reads), risk keys merged in."""
        path = self.tmp / "config.yaml"
        risk_keys = {"day_timezone": self.config.day_timezone, **risk}
        path.write_text(yaml.safe_dump({"state_dir": str(self.state_dir), "risk": risk_keys}))
        return path

    def new_risk(self) -> RiskManager:
        return RiskManager(self.config, clock=self.clock, book=self.book, ledger=self.ledger,
                           requires_mapping=self.requires_mapping, state_dir=self.state_dir, route=self.route)

    def quote(self, sel: Selection, bookmaker: str = "bookA", price: float | None = 2.0,
              suspended: bool = False, lay: float | None = None) -> None:
        """A quote; `lay` makes it an exchange's, with that best lay price (size 1000)."""
        ladder = None if lay is None else Ladder(back=() if price is None else ((price, 1000.0),),
                                                 lay=((lay, 1000.0),))
        self.book.apply(odds(sel, bookmaker, price, self.clock.now(), suspended, ladder=ladder))

    # -- what the executor and venue would write -----------------------------------------

    def submit(self, decision: Decision, status: OrderStatus = OrderStatus.SENT) -> str:
        sig = decision.signal
        request_uuid = str(uuid.uuid4())
        self.ledger.add_orders([OrderRow(
            request_uuid=request_uuid, signal_id=sig.signal_id, strategy=sig.strategy,
            selection=sig.selection.key, sport=sig.selection.fixture.sport,
            fixture=str(sig.selection.fixture), bookmakers=",".join(sig.bookmakers),
            back=sig.side is Side.BACK, order_price=sig.min_price,  # a back's floor, a lay's ceiling
            stake=decision.stake, status=status.value,
        )])
        return request_uuid

    def order_update(self, request_uuid: str, status: OrderStatus, filled: Decimal = Decimal(0)) -> None:
        self.ledger.update_order(request_uuid, status=status.value, filled_stake=filled)
        self.risk.on_execution_event(OrderUpdate(request_uuid, status, filled, self.clock.now()))

    def fill(self, request_uuid: str, bookmaker: str, stake: Decimal, price: float,
             status: BetStatus = BetStatus.PLACED) -> int:
        self._bet_ids += 1
        bet_id = self._bet_ids
        self.ledger.upsert_bet(BetRow(bet_id=bet_id, request_uuid=request_uuid, bookmaker=bookmaker,
                                      placed_stake=stake, placed_price=price, bet_status=status.value))
        self.risk.on_execution_event(Fill(bet_id, request_uuid, bookmaker, stake, price, status, self.clock.now()))
        return bet_id

    def settle(self, bet_id: int, request_uuid: str, stake: Decimal, pnl: Decimal, strategy: str = "s1") -> None:
        status = SettlementStatus.WON if pnl > 0 else SettlementStatus.LOST
        amount = stake + pnl
        self.ledger.upsert_bet(BetRow(bet_id=bet_id, request_uuid=request_uuid, bookmaker="bookA",
                                      placed_stake=stake, placed_price=2.0, bet_status=BetStatus.PLACED.value,
                                      settlement_status=status.value, settlement_amount=amount))
        self.ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid=request_uuid, strategy=strategy,
                                                 status=status.value, stake=stake, amount=amount, pnl=pnl,
                                                 at=self.clock.now()))
        self.risk.on_execution_event(Settlement(bet_id, request_uuid, status, amount, pnl, self.clock.now()))
