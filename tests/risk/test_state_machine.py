"""Hypothesis state machine over RiskManager (docs/architecture.md, "Risk"): random streams of back
and lay signals (some evaluated concurrently), fills, declines, cancels, settlements (a market at a
time, its open orders ended first, as a market closes), clock moves, halts and resumes,
emergencies and restarts. After every step:
- an independent model of open bets + in-flight orders (written here, from what the "venue" did)
  never exceeds any cap, and equals the manager's own figures; that includes each market's worst
  case over its winners (brute force here), backs and lays netted, against `max_exposure_market`;
- trading-state and breaker transitions are edges of their state machines;
- nothing is approved while HALTED, for a book whose breaker is open, or beyond one half-open probe.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.risk.config import BreakerConfig, RiskConfig
from bot.risk.control import ResumeRefused
from bot.types import OrderStatus, Side
from tests.risk.factories import Env, make_signal, selection

CAPS = {"selection": Decimal(30), "fixture": Decimal(50), "bookmaker": Decimal(60),
        "strategy": Decimal(80), "total": Decimal(100)}
MARKET_CAP = Decimal(25)
BOOKS = ("bookA", "bookB")
SELECTIONS = [selection(o, n) for n in range(4) for o in ("home", "away")]
PRICES = {s.key: p for s, p in zip(SELECTIONS, (1.9, 2.1, 3.0, 1.5, 2.5, 1.6, 1.25, 5.0), strict=True)}
CONFIG = RiskConfig(
    min_stake=Decimal(1), max_stake=Decimal(40),
    max_exposure_selection=CAPS["selection"], max_exposure_fixture=CAPS["fixture"], max_exposure_market=MARKET_CAP,
    max_exposure_bookmaker=CAPS["bookmaker"], max_exposure_strategy=CAPS["strategy"],
    max_exposure_total=CAPS["total"], daily_loss_limit=Decimal(60), max_drawdown=Decimal(90),
    block_while_in_flight=False, max_orders_per_window=1000,
    bookmaker_breaker=BreakerConfig(max_consecutive_failures=3, min_samples=4, error_rate=0.7, cooldown_seconds=30),
    global_breaker=BreakerConfig(max_consecutive_failures=6, min_samples=50, cooldown_seconds=30),
)
TRADING_EDGES = {("ACTIVE", "REDUCING"), ("REDUCING", "ACTIVE"), ("ACTIVE", "HALTED"), ("REDUCING", "HALTED"),
                 ("HALTED", "ACTIVE")}
BREAKER_EDGES = {("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED"), ("HALF_OPEN", "OPEN")}


def worst(side: Side, stake: Decimal, price: float) -> Decimal:
    return stake if side is Side.BACK else (Decimal(str(price)) - 1) * stake


def _market_of(sel_key: str) -> str:
    return sel_key.rpartition("|")[0]


def _pnl_if(side: Side, stake: Decimal, price: float, wins: bool) -> Decimal:
    """A bet's PnL when its outcome wins or loses."""
    back = stake * (Decimal(str(price)) - 1) if wins else -stake
    return back if side is Side.BACK else -back


@dataclass
class Order:
    uuid: str
    sel_key: str
    fixture: str
    book: str
    strategy: str
    side: Side
    price: float
    stake: Decimal
    filled: Decimal = Decimal(0)
    final: bool = False


@dataclass
class Bet:
    order: Order
    stake: Decimal


class RiskMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="riskfsm"))
        self.loop = asyncio.new_event_loop()
        self.env = Env(self.tmp, config=CONFIG)
        self.orders: dict[str, Order] = {}
        self.bets: dict[int, Bet] = {}
        self.trading = "ACTIVE"
        self.breakers: dict[str, str] = {}
        self.resuming = False
        self._requote()

    def teardown(self) -> None:
        self.env.ledger.close()
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _requote(self) -> None:
        for sel in SELECTIONS:
            for book in BOOKS:
                self.env.quote(sel, book, PRICES[sel.key], lay=PRICES[sel.key])  # exchanges: lays fill

    # -- signals --------------------------------------------------------------------------

    @rule(batch=st.lists(st.tuples(st.integers(0, len(SELECTIONS) - 1), st.sampled_from(BOOKS), st.sampled_from(["s1", "s2"]),
                                   st.sampled_from([Side.BACK, Side.LAY]), st.integers(1, 30)),
                         min_size=1, max_size=5))
    def evaluate_concurrently(self, batch: list[tuple[int, str, str, Side, int]]) -> None:
        risk = self.env.risk
        before_state = risk.control.state
        before = {name: dict(b) for name, b in risk.snapshot()["breakers"].items()}
        signals = [make_signal(SELECTIONS[i], self.env.clock.now(), strategy=strat, stake=str(stake),
                               price=PRICES[SELECTIONS[i].key], side=side, bookmakers=(book,))
                   for i, book, strat, side, stake in batch]

        async def run():
            return await asyncio.gather(*(risk.evaluate(s, None) for s in signals))

        decisions = self.loop.run_until_complete(run())
        approved = [d for d in decisions if d.approved]
        for d in decisions:
            event(f"decision {d.verdict.value} {d.reason or ''}")  # --hypothesis-show-statistics
        if before_state == "HALTED":
            assert approved == []
        half_open_approvals: dict[str, int] = defaultdict(int)
        for d in approved:
            book = d.signal.bookmakers[0]
            for name in ("global", book):
                b = before.get(name)
                if b is None:
                    continue
                assert b["state"] != "OPEN", f"approved while breaker {name} OPEN"
                if b["state"] == "HALF_OPEN":
                    assert b["probe_in_flight"] is None
                    half_open_approvals[name] += 1
            request_uuid = self.env.submit(d)
            self.orders[request_uuid] = Order(
                request_uuid, d.signal.selection.key, str(d.signal.selection.fixture), book, d.signal.strategy,
                d.signal.side, d.signal.price, d.stake)
        assert all(n <= 1 for n in half_open_approvals.values())

    @rule(i=st.integers(0, len(SELECTIONS) - 1), book=st.sampled_from(BOOKS), stake=st.integers(1, 30))
    def evaluate_one(self, i: int, book: str, stake: int) -> None:
        self.evaluate_concurrently([(i, book, "s1", Side.BACK, stake)])

    # -- venue ----------------------------------------------------------------------------

    def _open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.final]

    @precondition(lambda self: self._open_orders())
    @rule(data=st.data(), fraction=st.sampled_from([Decimal("0.3"), Decimal("0.5"), Decimal(1)]))
    def fill(self, data: st.DataObject, fraction: Decimal) -> None:
        order = data.draw(st.sampled_from(self._open_orders()))
        amount = max(((order.stake - order.filled) * fraction).quantize(Decimal("0.01")), Decimal("0.01"))
        amount = min(amount, order.stake - order.filled)
        order.filled += amount
        self.env.ledger.update_order(order.uuid, filled_stake=order.filled)
        bet_id = self.env.fill(order.uuid, order.book, amount, order.price)
        self.bets[bet_id] = Bet(order, amount)
        if order.filled == order.stake:
            order.final = True
            self.env.order_update(order.uuid, OrderStatus.FILLED, order.filled)

    @precondition(lambda self: self._open_orders())
    @rule(data=st.data(), status=st.sampled_from([OrderStatus.DECLINED, OrderStatus.CANCELLED,
                                                  OrderStatus.EXPIRED, OrderStatus.FAILED]))
    def end_order(self, data: st.DataObject, status: OrderStatus) -> None:
        order = data.draw(st.sampled_from(self._open_orders()))
        if status in (OrderStatus.DECLINED, OrderStatus.FAILED) and order.filled:
            status = OrderStatus.CANCELLED  # a declined order has no fills
        order.final = True
        self.env.order_update(order.uuid, status, order.filled)

    @precondition(lambda self: self.bets)
    @rule(data=st.data(), won=st.booleans())
    def settle(self, data: st.DataObject, won: bool) -> None:
        """The market of a drawn bet closes: its open orders end, then all its bets settle, the
        drawn bet's outcome winning or not."""
        drawn = self.bets[data.draw(st.sampled_from(sorted(self.bets)))].order
        market = _market_of(drawn.sel_key)
        winner = drawn.sel_key.rpartition("|")[2] if won else ("away" if drawn.sel_key.endswith("home") else "home")
        for o in self._open_orders():
            if _market_of(o.sel_key) == market:
                o.final = True
                self.env.order_update(o.uuid, OrderStatus.EXPIRED if not o.filled else OrderStatus.CANCELLED,
                                      o.filled)
        for bet_id in [b for b, bet in self.bets.items() if _market_of(bet.order.sel_key) == market]:
            bet = self.bets.pop(bet_id)
            o = bet.order
            outcome_won = o.sel_key.rpartition("|")[2] == winner
            if o.side is Side.BACK:
                pnl = bet.stake * (Decimal(str(o.price)) - 1) if outcome_won else -bet.stake
            else:
                pnl = bet.stake if not outcome_won else -worst(Side.LAY, bet.stake, o.price)
            self.env.settle(bet_id, o.uuid, bet.stake, pnl, o.strategy)

    # -- time and control -----------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 10, 31, 3600, 86400]))
    def advance(self, seconds: int) -> None:
        self.env.clock.advance(self.env.clock.now() + timedelta(seconds=seconds))
        self._requote()

    @rule(action=st.sampled_from(["resume", "resume", "reduce", "halt", "emergency on", "emergency off"]))
    def operator(self, action: str) -> None:
        risk = self.env.risk
        if action == "resume":
            self.resuming = True
            try:
                risk.control.resume()
            except ResumeRefused:
                assert risk.control.state == self.trading == "HALTED"
        elif action == "reduce":
            risk.control.reduce("operator")
        elif action == "halt":
            risk.control.halt("operator")
        else:
            risk.control.set_emergency(action == "emergency on", "venue")

    @rule()
    def restart(self) -> None:
        before = self.env.risk.exposure()
        state = self.env.risk.control.state
        self.env.risk = self.env.new_risk()
        assert self.env.risk.exposure() == before
        assert self.env.risk.control.state == state
        self.breakers = {}  # breakers are in-memory: a restart starts them CLOSED

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def caps_hold_and_match_the_model(self) -> None:
        model: dict[str, defaultdict[str, Decimal]] = {d: defaultdict(Decimal) for d in CAPS}

        def add(o: Order, amount: Decimal) -> None:
            for dim, key in (("selection", o.sel_key), ("fixture", o.fixture), ("bookmaker", o.book),
                             ("strategy", o.strategy), ("total", "total")):
                model[dim][key] += amount

        for o in self._open_orders():
            add(o, worst(o.side, o.stake - o.filled, o.price))
        for bet in self.bets.values():
            add(bet.order, worst(bet.order.side, bet.stake, bet.order.price))
        for dim, cap in CAPS.items():
            assert all(v <= cap for v in model[dim].values()), (dim, dict(model[dim]))
        ours = {d: {k: v for k, v in vals.items() if v} for d, vals in model.items()}
        ours["total"] = {"total": model["total"]["total"]}
        assert self.env.risk.exposure() == ours

    @invariant()
    def market_worst_case_holds_and_matches_the_model(self) -> None:
        """Per market (moneyline: home or away wins) the worst PnL over winners, bets as they
        stand and each open order's unfilled part either filled or not, whichever is worse."""
        markets: defaultdict[str, list[tuple[Order, Decimal, bool]]] = defaultdict(list)
        for o in self._open_orders():
            markets[_market_of(o.sel_key)].append((o, o.stake - o.filled, False))
        for bet in self.bets.values():
            markets[_market_of(bet.order.sel_key)].append((bet.order, bet.stake, True))
        model = {}
        for market, items in markets.items():
            worst_loss = Decimal(0)
            for winner in ("home", "away"):
                pnl = Decimal(0)
                for o, stake, placed in items:
                    each = _pnl_if(o.side, stake, o.price, o.sel_key.endswith(f"|{winner}"))
                    pnl += each if placed else min(each, Decimal(0))  # unfilled: only where it hurts
                worst_loss = max(worst_loss, -pnl)
            assert worst_loss <= MARKET_CAP, (market, worst_loss)
            if worst_loss:
                model[market] = worst_loss
        assert self.env.risk.market_exposure() == model

    @invariant()
    def in_flight_lookup_matches_the_model(self) -> None:
        """DUPLICATE_SIGNAL's in-flight lookup (an index kept in step with the orders) names an
        order in flight for exactly the targets the model holds an open order for."""
        positions = self.env.risk._positions
        open_targets = {(o.strategy, o.sel_key, o.side, (o.book,)) for o in self._open_orders()}
        for sel in SELECTIONS:
            for book in BOOKS:
                for strategy in ("s1", "s2"):
                    for side in (Side.BACK, Side.LAY):
                        signal = make_signal(sel, self.env.clock.now(), strategy=strategy, side=side,
                                             bookmakers=(book,), price=PRICES[sel.key])
                        found = positions.in_flight_like(signal)
                        assert (found is not None) == ((strategy, sel.key, side, (book,)) in open_targets)
                        if found is not None:
                            order = positions.order(found)
                            assert order is not None and order.in_flight and order.same_target(signal)

    @invariant()
    def trading_state_follows_its_machine(self) -> None:
        now = self.env.risk.control.state.value
        if now != self.trading:
            assert (self.trading, now) in TRADING_EDGES, (self.trading, now)
            if self.trading == "HALTED":
                assert self.resuming, "left HALTED without an operator resume"
        self.trading = now
        self.resuming = False

    @invariant()
    def breakers_follow_their_machine(self) -> None:
        for name, snap in self.env.risk.snapshot()["breakers"].items():
            prev = self.breakers.get(name, "CLOSED")
            if snap["state"] != prev:
                assert (prev, snap["state"]) in BREAKER_EDGES, (name, prev, snap["state"])
            self.breakers[name] = snap["state"]


TestRiskStateMachine = RiskMachine.TestCase
TestRiskStateMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
